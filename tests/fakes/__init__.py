"""Fakes of outside services for tests, each over real HTTP/websocket on 127.0.0.1."""
