"""The worker's HTTP endpoints: ``/metrics``, ``/healthz``, ``/readyz`` on 127.0.0.1.

Served when ``[app] web_port`` is set (0, the default, serves nothing). It binds the
loopback address only: put a reverse proxy or a sidecar in front to expose it.

* ``/healthz`` — 200 while the process runs its event loop (liveness); 503 when table recovery
  has made no progress for ``RecoveryWatch.stall`` seconds (:class:`RecoveryWatch`).
* ``/readyz`` — 200 once the worker has finished table recovery, is not rebalancing and
  has partitions assigned; 503 with the reason otherwise (readiness).
* ``/metrics`` — Prometheus text format from the worker's own registry
  (:mod:`watcher.app.metrics`).
* ``[slack] interactions_path`` (when set) — Slack's interactivity requests, each checked
  against Slack's signature before anything else (:mod:`watcher.notify.interact`).

It is registered as the app's web server (``app.web_server``), which keeps Faust's own
web stack off the port, and is handed to the worker as a service of its own, so it is up
before the app and stops after it on SIGTERM.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from mode import Service

from watcher.app.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger("watcher.app.health")


def readiness(app: Any) -> tuple[bool, str]:
    """Whether ``app`` (a Faust app) can do its work now, and if not, why."""
    try:
        if not app.started or app.should_stop:
            return False, "worker not started"
        if not app.tables.recovery.completed.is_set():
            return False, "table recovery in progress"
        if app.rebalancing:
            return False, "rebalancing"
        if not app.consumer.assignment():
            return False, "no partitions assigned"
    except Exception as e:  # faust internals not built yet (consumer, tables)
        return False, f"worker starting ({type(e).__name__})"
    return True, "ready"


def consumer_lag(app: Any) -> Iterator[tuple[str, int, int]]:
    """(topic, partition, lag) per assigned partition: highwater minus the next offset to process."""
    consumer = app.consumer
    committed = consumer._committed_offset  # faust keeps the last processed offset per TP
    for tp in consumer.assignment():
        high = consumer.highwater(tp)
        if high is None:
            continue
        done = committed.get(tp)
        yield tp.topic, tp.partition, max(0, high - (done + 1 if done is not None else 0))


class RecoveryWatch(Service):
    """Notices a table recovery that has stopped moving.

    After a rebalance Faust reads each assigned changelog partition up to its end before the
    agents start. Rarely, it waits for a partition whose records never arrive ("No event received
    for active tp … since recovery start", the class of faust-streaming#21 and #74) and the worker
    holds its partitions doing nothing, for ever: no poll, no alert, while ``/readyz`` says only
    "recovery in progress". Faust has no way to restart its recovery from outside, and a fresh
    process recovers at once, so this says so: once ``stall`` seconds pass with recovery not done
    and no changelog offset moving, one ERROR line, ``watcher_recovery_stalled_seconds``, and
    ``/healthz`` answers 503, so a liveness probe (or an operator) restarts the worker. A slow
    but moving recovery of a large table is not a stall."""

    def __init__(self, app: Any, metrics: Any = None, stall: float = 120.0,
                 clock: Callable[[], float] = time.monotonic, **kw: Any) -> None:  # fmt: skip
        super().__init__(**kw)
        self.faust_app, self.metrics, self.stall, self.clock = app, metrics, stall, clock
        self._progress: int | None = None
        self._since: float | None = None
        self._said = False

    def stalled_for(self) -> float:
        """Seconds without recovery progress (0 when recovery is done or moving)."""
        try:
            recovery = self.faust_app.tables.recovery
            done = recovery.completed.is_set() or not self.faust_app.started
            progress = sum(recovery.active_offsets.values())
        except Exception:  # faust internals not built yet
            done, progress = True, 0
        now = self.clock()
        if done or progress != self._progress or self._since is None:
            self._progress, self._since = (None, None) if done else (progress, now)
            self._said = False
            return 0.0
        return now - self._since

    def check(self) -> str | None:
        """Why the worker is not live, or None."""
        stalled = self.stalled_for()
        if self.metrics is not None:
            self.metrics.recovery_stalled.set(stalled)
        if stalled < self.stall:
            return None
        why = f"table recovery has made no progress for {stalled:.0f}s (a Faust recovery stall): restart this worker"
        if not self._said:
            self._said = True
            log.error("%s; its partitions wait until then", why)
        return why

    @Service.timer(10.0)
    async def _watch(self) -> None:
        self.check()


class WebServer(Service):
    """A tiny aiohttp server for the three endpoints."""

    def __init__(self, metrics: Metrics, port: int, app: Any = None, host: str = "127.0.0.1",
                 interactions: tuple[str, Any] | None = None, watch: RecoveryWatch | None = None,
                 **kw: Any) -> None:  # fmt: skip
        super().__init__(**kw)
        self.metrics, self.port, self.host, self.faust_app = metrics, port, host, app
        self.watch = watch
        self.interactions = interactions  # (path, InteractionEndpoint): Slack's signed HTTP clicks
        self._runner: web.AppRunner | None = None
        if app is not None:
            metrics.lag_source = lambda: consumer_lag(app)
            comps = getattr(app, "watcher_components", None)
            if comps is not None and metrics.eval_errors.source is None:
                metrics.eval_errors.source = comps.ruleset

    def ready(self) -> tuple[bool, str]:
        ok, why = readiness(self.faust_app) if self.faust_app is not None else (True, "ready")
        self.metrics.ready.set(1 if ok else 0)
        return ok, why

    async def _healthz(self, request: web.Request) -> web.Response:
        why = self.watch.check() if self.watch is not None else None
        return web.Response(text="ok\n") if why is None else web.Response(status=503, text=why + "\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        ok, why = self.ready()
        return web.Response(status=200 if ok else 503, text=why + "\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        self.ready()
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def on_start(self) -> None:
        http = web.Application()
        http.router.add_get("/healthz", self._healthz)
        http.router.add_get("/readyz", self._readyz)
        http.router.add_get("/metrics", self._metrics)
        if self.interactions is not None and self.interactions[0] and self.interactions[1] is not None:
            path, endpoint = self.interactions
            endpoint.add_to(http, path)
            log.info("serving Slack interactions (signed) on http://%s:%d%s", self.host, self.port, path)
        self._runner = web.AppRunner(http, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        log.info("serving /metrics, /healthz and /readyz on http://%s:%d", self.host, self.port)

    async def on_stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
