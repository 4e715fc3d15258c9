"""Run one worker: embedded broker if none is configured, the broker checked and its topics
ready (:mod:`watcher.app.preflight`), the Faust app, clean shutdown."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from watcher.app.kafka import KafkaConnection
from watcher.config import Config

log = logging.getLogger("watcher.app")


def owned_targets(app: Any, config: Config) -> set[str]:
    """The target ids this worker polls now (the targets of its partitions)."""
    return set(app.watcher_poll.mine)


def side_services(app: Any, config: Config, conn: KafkaConnection) -> list[Any]:
    """Services started with the worker, before the app and stopped after it: the web
    endpoints (if ``[app] web_port``), the recovery watch, self-health (blind alerts, heartbeat) and the status
    page (if ``[ui] enabled``; it reads and writes the topics through ``conn``, the worker's
    connection with its TLS and SASL settings)."""
    from watcher.app.blind import SelfHealth
    from watcher.app.health import RecoveryWatch, WebServer

    comps = app.watcher_components
    watch = RecoveryWatch(app, comps.metrics, loop=app.loop)
    services: list[Any] = [watch]
    if config.app.web_port > 0:
        web = WebServer(comps.metrics, config.app.web_port, app, loop=app.loop, watch=watch,
                        interactions=(config.slack.interactions_path, app.watcher_interactions))
        app.web_server(web)  # ours replaces Faust's own web stack on that port
        services.append(web)
    services.append(SelfHealth(
        comps, app.watcher_targets, owned=lambda: owned_targets(app, config), episodes=app.watcher_episodes,
        publish=app.watcher_publish_alert, ready=lambda: not getattr(app, "in_recovery", False), loop=app.loop,
    ))  # fmt: skip
    if config.ui.enabled:
        from watcher.ui import UiService

        services.append(UiService(config, conn, loop=app.loop))
    return services


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
            "(in-memory: for demos, development and tests; state is lost when watcher stops). "
            'CLI tools (track, dlq, explain, silence) reach it with [broker] url = "%s" and tansu = true',
            embedded.bootstrap, embedded.url,
        )
    try:
        import asyncio

        from watcher.app.kafka import connection
        from watcher.app.preflight import prepare_for_run

        conn = connection(config, url)  # a bad key file or an unset password: one line, before anything starts
        app = build_app(config, url, embedded=embedded is not None or config.broker.tansu, **build_kw)
        # Before Faust: a broker that refuses TLS or the password, or (create_topics = false)
        # topics the admin has not created, stop the worker here with one line, exit 2.
        asyncio.run(prepare_for_run(conn, config, getattr(app, "watcher_topics", None)))
        if on_app is not None:
            on_app(app)
        worker = faust.Worker(
            app, *side_services(app, config, conn), loglevel=loglevel, quiet=True, redirect_stdouts=False,
            # Keep the caller's handlers (cli.setup_logging: --log-format json, level caps);
            # mode would replace them with its own text format.
            override_logging=not logging.getLogger().handlers,
        )
        worker.spinner = None  # it writes terminal escapes to stdout, even when that is a log file
        try:
            worker.execute_from_commandline()
        except SystemExit as e:
            return int(e.code or 0)
        return 0
    finally:
        if embedded is not None:
            embedded.stop()
