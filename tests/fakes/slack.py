"""A fake Slack for tests: the Web API methods watcher calls, and a Socket Mode websocket.

Real HTTP (aiohttp) on 127.0.0.1; ``slack-sdk`` is pointed at it with ``base_url``. Every API call
is recorded (:attr:`FakeSlack.calls`), messages are kept as Slack keeps them (edited in place by
``chat.update``, replies by ``thread_ts``), and a method can be told to answer 429 with
Retry-After (:meth:`FakeSlack.fail_next`). ``apps.connections.open`` hands out the URL of the
fake's own websocket, where :meth:`FakeSlack.push_block_actions` sends an ``interactive``
envelope and :attr:`FakeSlack.acks` records what the client answered. Clicks' ``response_url``
points back here too (:attr:`FakeSlack.responses`).

Tokens are checked like Slack does: the bot token for ``chat.*``/``auth.test``, the app-level
token for ``apps.connections.open``; anything else answers ``invalid_auth``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from watcher.sinks import free_port


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    token: str
    at: float  # time.monotonic() when it arrived
    status: int = 200


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    metadata: dict[str, Any] | None = None
    reply_broadcast: bool = False
    edits: int = 0


@dataclass
class _Failure:
    method: str
    status: int
    error: str
    retry_after: float | None
    times: int


@dataclass
class FakeSlack:
    bot_token: str = "xoxb-fake-bot-token-0123456789"
    app_token: str = "xapp-fake-app-token-0123456789"
    #: channel names (as configured, "#ops") → ids
    channels: dict[str, str] = field(default_factory=lambda: {"#ops": "C0OPS00001", "#leads": "C0LEADS001"})
    calls: list[Call] = field(default_factory=list)
    messages: dict[tuple[str, str], Message] = field(default_factory=dict)
    acks: list[dict[str, Any]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None
    _failures: list[_Failure] = field(default_factory=list)
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _ts: itertools.count = field(default_factory=lambda: itertools.count(1))
    _changed: asyncio.Event | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> FakeSlack:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/socket", self._socket)
        app.router.add_post("/respond/{id}", self._respond)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = self.port or free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._changed = asyncio.Event()
        return self

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"http://127.0.0.1:{self.port}/respond/{name}"

    # -- what a test asks of it --------------------------------------------------------------

    def fail_next(self, method: str, *, status: int = 429, error: str = "ratelimited",
                  retry_after: float | None = 1, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer ``status`` (429 with Retry-After by default)."""
        self._failures.append(_Failure(method, status, error, retry_after, times))

    def api_calls(self, method: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.status == 200 and (method is None or c.method == method)]

    def top_level(self) -> list[Message]:
        return [m for m in self.messages.values() if m.thread_ts is None]

    def replies(self, channel: str, ts: str) -> list[Message]:
        return [m for m in self.messages.values() if m.channel == channel and m.thread_ts == ts]

    async def wait_for(self, condition: Any, timeout: float = 10.0) -> None:
        """Until ``condition()`` holds (checked on every change the fake sees)."""
        assert self._changed is not None
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("fake Slack: condition not met in time")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))
            except TimeoutError:
                pass

    async def wait_connected(self, timeout: float = 10.0) -> None:
        await self.wait_for(lambda: any(not ws.closed for ws in self._sockets), timeout)

    async def push(self, envelope: dict[str, Any]) -> None:
        """Send an envelope to every connected Socket Mode client."""
        data = json.dumps(envelope)
        for ws in list(self._sockets):
            if not ws.closed:
                await ws.send_str(data)

    async def push_block_actions(self, payload: dict[str, Any]) -> str:
        """Send a ``block_actions`` payload as Slack does over Socket Mode; returns its envelope id."""
        envelope_id = str(uuid.uuid4())
        await self.push({"envelope_id": envelope_id, "type": "interactive", "accepts_response_payload": False,
                         "payload": payload})  # fmt: skip
        return envelope_id

    # -- handlers ----------------------------------------------------------------------------

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        raw = await request.read()
        if raw:
            if request.content_type == "application/json":
                params.update(json.loads(raw))
            else:
                params.update(parse_qsl(raw.decode()))
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        call = Call(method=method, params=params, token=token, at=time.monotonic())
        self.calls.append(call)
        try:
            for failure in self._failures:
                if failure.method == method and failure.times > 0:
                    failure.times -= 1
                    call.status = failure.status
                    headers = {"Retry-After": f"{failure.retry_after:g}"} if failure.retry_after is not None else {}
                    return web.json_response({"ok": False, "error": failure.error}, status=failure.status,
                                             headers=headers)  # fmt: skip
            wanted = self.app_token if method == "apps.connections.open" else self.bot_token
            if token != wanted:
                return web.json_response({"ok": False, "error": "invalid_auth"})
            handler = getattr(self, "_m_" + method.replace(".", "_"), None)
            if handler is None:
                return web.json_response({"ok": False, "error": "unknown_method"}, status=404)
            return web.json_response(handler(params))
        finally:
            self._notify()

    def _channel_id(self, name: str) -> str | None:
        if name in self.channels.values():
            return name
        return self.channels.get(name) or self.channels.get("#" + name.lstrip("#"))

    def _m_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "team": "Fake Team", "user": "watcher", "team_id": "T0FAKE", "user_id": "U0WATCHER"}

    def _m_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802 (Slack's name)
        channel = self._channel_id(str(params.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        thread_ts = params.get("thread_ts")
        if thread_ts is not None and (channel, thread_ts) not in self.messages:
            return {"ok": False, "error": "thread_not_found"}
        ts = f"{1_760_000_000 + next(self._ts)}.000100"
        blocks = params.get("blocks") or []
        msg = Message(channel=channel, ts=ts, text=str(params.get("text", "")),
                      blocks=json.loads(blocks) if isinstance(blocks, str) else blocks,
                      thread_ts=thread_ts, metadata=params.get("metadata"),
                      reply_broadcast=bool(params.get("reply_broadcast")))  # fmt: skip
        self.messages[(channel, ts)] = msg
        return {"ok": True, "channel": channel, "ts": ts, "message": {"text": msg.text, "ts": ts}}

    def _m_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel", ""))
        if channel not in self.channels.values():
            return {"ok": False, "error": "channel_not_found"}  # chat.update takes ids only
        msg = self.messages.get((channel, str(params.get("ts", ""))))
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        blocks = params.get("blocks") or []
        msg.text = str(params.get("text", ""))
        msg.blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
        msg.edits += 1
        return {"ok": True, "channel": channel, "ts": msg.ts, "text": msg.text}

    def _m_apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket?ticket={uuid.uuid4()}"}

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1,
                                      "connection_info": {"app_id": "A0FAKE"}}))  # fmt: skip
        self._notify()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self.acks.append(json.loads(msg.data))
                    self._notify()
        finally:
            self._notify()
        return ws

    async def _respond(self, request: web.Request) -> web.Response:
        self.responses.append({"id": request.match_info["id"], "body": await request.json()})
        self._notify()
        return web.Response(text="ok")


def block_actions(action_id: str, value: str, *, user_id: str = "U0ANA0001", username: str = "ana",
                  action_ts: str = "1760000100.000200", response_url: str = "",
                  channel: str = "C0OPS00001", message_ts: str = "1760000001.000100") -> dict[str, Any]:
    """A ``block_actions`` payload as Slack sends it when someone clicks one of the card's buttons."""
    return {
        "type": "block_actions",
        "team": {"id": "T0FAKE", "domain": "fake"},
        "user": {"id": user_id, "username": username, "name": username, "team_id": "T0FAKE"},
        "api_app_id": "A0FAKE",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": "123.456.abc",
        "channel": {"id": channel, "name": "ops"},
        "response_url": response_url,
        "actions": [{"type": "button", "action_id": action_id, "block_id": "watcher_actions",
                     "text": {"type": "plain_text", "text": "Acknowledge"}, "value": value,
                     "action_ts": action_ts}],  # fmt: skip
    }
