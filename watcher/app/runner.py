"""Run one worker: embedded broker if none is configured, the Faust app, clean shutdown."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from watcher.config import Config

log = logging.getLogger("watcher.app")


def run_worker(
    config: Config,
    *,
    loglevel: str = "INFO",
    broker_url: str | None = None,
    on_app: Callable[[Any], None] | None = None,
    **build_kw: Any,
) -> int:
    """Block running a worker until SIGINT/SIGTERM (or the app stops itself)."""
    import faust

    from watcher.app.factory import build_app

    embedded = None
    url = broker_url or config.broker.url
    if not url:
        from watcher.app.broker import EmbeddedBroker

        embedded = EmbeddedBroker()
        embedded.start()
        url = embedded.url
        log.warning(
            "no [broker] url configured: started the embedded Tansu broker at %s "
            "(in-memory: for demos, development and tests; state is lost when watcher stops)",
            embedded.bootstrap,
        )
    try:
        import asyncio

        from watcher.app.topics import ensure_topics

        app = build_app(config, url, embedded=embedded is not None or config.broker.tansu, **build_kw)
        asyncio.run(ensure_topics(url.split("://", 1)[-1], app.watcher_topics))
        if on_app is not None:
            on_app(app)
        worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
        try:
            worker.execute_from_commandline()
        except SystemExit as e:
            return int(e.code or 0)
        return 0
    finally:
        if embedded is not None:
            embedded.stop()
