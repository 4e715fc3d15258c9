"""Local receivers for the demo and the tests: a webhook HTTP server and an SMTP mailbox.

Both are real servers on 127.0.0.1 and record exactly what arrived, so a test can assert
what a notification target would have received. The webhook sink can be told to fail
(HTTP 500, or ``fail_status``) for a number of requests or until further notice.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    path: str
    body: Any
    raw: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class WebhookSink:
    """Records every POST; answers ``fail_status`` while ``fail_next`` > 0 or ``fail_always``
    (with ``fail_headers``, e.g. a Retry-After)."""

    on_receive: Callable[[Received], None] | None = None
    fail_next: int = 0
    fail_always: bool = False
    fail_status: int = 500
    fail_headers: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    port: int = 0
    _runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.attempts += 1
        if self.fail_always or self.fail_next > 0:
            self.fail_next = max(0, self.fail_next - 1)
            return web.Response(status=self.fail_status, text="sink failing on purpose", headers=self.fail_headers)
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        rec = Received(path=request.path, body=body, raw=raw, headers=dict(request.headers))
        self.received.append(rec)
        if self.on_receive:
            self.on_receive(rec)
        return web.Response(text="ok")

    async def start(self, port: int = 0) -> WebhookSink:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = port or free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    subject: str
    text: str
    message: email.message.EmailMessage


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        if self.box.delay:  # a slow server: the message counts only if the client is still there to hear 250
            await asyncio.sleep(self.box.delay)
            transport = getattr(server, "transport", None)
            if transport is None or transport.is_closing():
                return "421 the client went away"
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        part = msg.get_body(preferencelist=("plain", "html")) if msg.is_multipart() else msg
        text = part.get_content() if part is not None else ""
        mail = Mail(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            subject=str(msg.get("Subject", "")),
            text=text,
            message=msg,  # type: ignore[arg-type]
        )
        self.box.mails.append(mail)
        if self.box.on_receive:
            self.box.on_receive(mail)
        return "250 Message accepted for delivery"


@dataclass
class Mailbox:
    """An SMTP server (aiosmtpd, its own thread) that keeps every message it accepts."""

    on_receive: Callable[[Mail], None] | None = None
    mails: list[Mail] = field(default_factory=list)
    port: int = 0
    delay: float = 0.0  # seconds each message takes to be accepted (a slow server)
    _controller: Any = None

    def start(self, port: int = 0) -> Mailbox:
        from aiosmtpd.controller import Controller

        self.port = port or free_port()
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller:
            self._controller.stop()

    def url(self, to: str = "oncall@example.com", sender: str = "watcher@example.com") -> str:
        return f"mailto://127.0.0.1:{self.port}?from={sender}&to={to}&secure=no"


class BackgroundLoop:
    """An asyncio loop in a daemon thread, for servers that must outlive a blocking call."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="watcher-bg", daemon=True)
        self._thread.start()

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
