"""The status page's web server: an aiohttp app on 127.0.0.1, its view follower, and live updates.

:class:`StatusPage` owns a :class:`~watcher.ui.view.TopicView`, the :class:`~watcher.ui.follow.Follower`
that keeps it current, the Jinja2 environment (autoescape on: job text from the cloud is
hostile) and the aiohttp app; :class:`UiService` wraps it as a ``mode.Service`` so a worker
starts it with its side services (:func:`watcher.app.runner.side_services`).

Live updates: ``/live`` is a Server-Sent Events stream that says "changed" (at most once a
second) when the view has taken new records; ``static/ui.js`` (our own 70 lines, no build
step, no CDN: htmx would do the same with 14 kB and its own attributes) then fetches the page
again and swaps the regions marked ``data-live``.

Kafka: the page is given the worker's :class:`~watcher.app.kafka.KafkaConnection` (the one
``watcher run`` made from ``[broker]``, TLS and SASL included); its follower and its buttons open
every client through it, so it works wherever the worker does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape
from mode import Service

from watcher.app.kafka import KafkaConnection
from watcher.config import Config
from watcher.ui.follow import Follower
from watcher.ui.security import Guard
from watcher.ui.view import TopicView, topics

log = logging.getLogger("watcher.ui")

HERE = Path(__file__).resolve().parent


def environment() -> Environment:
    from watcher.ui import present

    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)  # fmt: skip
    env.globals.update(ago=present.ago, stamp=present.stamp)
    return env


class StatusPage:
    """The pages for one deployment, served from ``host:port`` (port 0: any free port), reading and
    writing its topics through ``conn``."""

    def __init__(self, config: Config, conn: KafkaConnection, *, host: str | None = None, port: int | None = None,
                 token: str | None = None, view: TopicView | None = None, follow: bool = True) -> None:  # fmt: skip
        from watcher.ui.pages import Pages

        self.config, self.conn = config, conn
        self.host = host if host is not None else config.ui.host
        self.port = port if port is not None else config.ui.port
        self.view = view if view is not None else TopicView()
        self.guard = Guard(token)
        self.env = environment()
        self.follower = Follower(self.view, conn, topics(config.broker.topic_prefix, config.app.id))
        self.follow = follow
        self.closing = asyncio.Event()
        self.pages = Pages(self)
        self._runner: web.AppRunner | None = None
        self._task: asyncio.Task[None] | None = None
        self.url = ""

    @property
    def caught_up(self) -> bool:
        """The view has read every topic to where it stood at the start (or is fed directly)."""
        return self.follower.caught_up.is_set() or not self.follow

    def __repr__(self) -> str:
        return f"StatusPage({self.url or 'not started'}, {self.guard!r})"

    def app(self) -> web.Application:
        http = web.Application(middlewares=[self.guard.middleware], client_max_size=64 * 1024)
        self.pages.add_routes(http.router)
        http.router.add_get("/live", self.live)
        http.router.add_get("/favicon.ico", lambda _r: _no_content())
        http.router.add_static("/static/", HERE / "static", append_version=False)
        return http

    async def start(self) -> str:
        """Start following the topics and serving; returns the page's URL."""
        if self.follow:
            self._task = asyncio.create_task(self._follow())
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        port = self._runner.addresses[0][1] if self._runner.addresses else self.port
        self.url = f"http://{self.host}:{port}/"
        log.info("status page on %s (%s)", self.url, "actions need the token" if self.guard.writable else
                 "read-only: WATCHER_UI_TOKEN is not set")  # fmt: skip
        return self.url

    async def _follow(self) -> None:
        while True:  # a broker that is away for a while must not end the page's view for good
            try:
                self.view.clear()  # a second run reads every topic again from its beginning
                await self.follower.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.follower.error = f"following the topics failed: {e!r}"
                log.warning("status page: %s; retrying in 5s", self.follower.error)
                await asyncio.sleep(5.0)

    async def stop(self) -> None:
        self.closing.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def live(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events: ``changed`` when the view took new records (checked each second)."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await response.prepare(request)
        since = request.query.get("since", "")
        seen, idle = (int(since) if since.isdigit() else self.view.version), 0
        try:
            await response.write(b"retry: 3000\n\n")
            while not self.closing.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.closing.wait(), 1.0)
                idle += 1
                if self.view.version != seen:
                    seen, idle = self.view.version, 0
                    await response.write(f"event: changed\ndata: {seen}\n\n".encode())
                elif idle >= 15:
                    idle = 0
                    await response.write(b": keep-alive\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response


async def _no_content() -> web.Response:
    return web.Response(status=204)


class UiService(Service):
    """The status page as a ``mode.Service``: a worker starts it before its Faust app and stops it after."""

    def __init__(self, config: Config, conn: KafkaConnection, **kw: Any) -> None:
        super().__init__(**kw)
        self.page = StatusPage(config, conn)

    async def on_start(self) -> None:
        await self.page.start()

    async def on_stop(self) -> None:
        await self.page.stop()
