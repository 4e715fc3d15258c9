"""The simulator as an HTTP server on 127.0.0.1: aiohttp app, async start, blocking run.

* :func:`start_simulator` - start on a running event loop (tests, the demo);
* :class:`SimulatorThread` - the same on a background thread with its own loop, for
  blocking callers such as the official SDK clients;
* :func:`run` - serve until interrupted (``watcher simulate --port --scenario``).

Every answer carries an ``X-Request-Id`` (a uuid, 32 hex digits as Huawei sends them);
every request is logged at DEBUG (method, path, route, status, request id: never a header).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from watcher.errors import ConfigError
from watcher.simulator.handlers import dispatch
from watcher.simulator.scenario import Scenario, load_scenario
from watcher.simulator.settings import Settings
from watcher.simulator.state import Simulator

log = logging.getLogger("watcher.simulator")

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
T = TypeVar("T")


def demo_scenario_path() -> Path:
    """``scenarios/demo.yaml``: a few hundred desktops over ~60 s in two projects, with failures."""
    return SCENARIOS / "demo.yaml"


def small_scenario_path() -> Path:
    """``scenarios/small.yaml``: a handful of jobs per source, all ended within ~10 s."""
    return SCENARIOS / "small.yaml"


def scenario_path(name: str | Path) -> Path:
    """A scenario file: ``name`` itself if it exists, else the shipped ``scenarios/<name>.yaml``
    (``demo``, ``small``, ``abnormal-rollback-failed``…); neither is a ConfigError."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = SCENARIOS / f"{name}.yaml"
    if shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in SCENARIOS.glob("*.yaml")))
    raise ConfigError(f"no scenario file or shipped scenario called {str(name)!r}; shipped: {names}", file=str(name))


def named_scenario(name: str | Path) -> Scenario:
    """The scenario called ``name``: ``scale`` (:func:`~watcher.simulator.scale.scale_scenario`,
    built, not shipped), else a file or shipped scenario (:func:`scenario_path`)."""
    if str(name) == "scale":
        from watcher.simulator.scale import scale_scenario

        return scale_scenario()
    return load_scenario(scenario_path(name))


def make_app(sim: Simulator) -> web.Application:
    """One catch-all route: :func:`~watcher.simulator.handlers.dispatch` does the routing,
    so unknown paths and methods get the gateway's APIG.0101 body, not aiohttp's."""

    async def handle(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
        body = await request.read()
        url = request.rel_url
        route, answer = await dispatch(
            sim, request.method, url.raw_path, url.raw_query_string, request.headers, body, request_id
        )
        raw = answer.body if isinstance(answer.body, bytes) else msgspec.json.encode(answer.body)
        headers = {"X-Request-Id": request_id, **answer.headers}
        log.debug(
            "%s %s -> %d (%s, t=%.1fs, %.1f ms) request_id=%s",
            request.method,
            url.raw_path,
            answer.status,
            route,
            sim.now(),
            (time.perf_counter() - started) * 1000,
            request_id,
        )
        return web.Response(status=answer.status, body=raw, headers=headers, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def _scenario(scenario: Scenario | str | Path | None) -> Scenario | None:
    if scenario is None or isinstance(scenario, Scenario):
        return scenario
    return load_scenario(scenario)


class RunningSimulator:
    """A started simulator: ``url`` (``http://127.0.0.1:PORT``), ``port``, ``sim`` (its state)."""

    def __init__(self, sim: Simulator, runner: web.AppRunner, host: str, port: int) -> None:
        self.sim, self._runner, self.host, self.port = sim, runner, host, port
        self.url = f"http://{host}:{port}"

    @property
    def projects(self) -> tuple[str, ...]:
        return self.sim.projects

    async def stop(self) -> None:
        await self._runner.cleanup()


async def start_simulator(
    host: str = "127.0.0.1",
    port: int = 0,
    scenario: Scenario | str | Path | None = None,
    settings: Settings | None = None,
) -> RunningSimulator:
    """Serve ``scenario`` (a Scenario or a YAML path; None: no jobs) on ``host:port`` (0: any free)."""
    sim = Simulator(_scenario(scenario), settings)
    runner = web.AppRunner(make_app(sim), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port or int(runner.addresses[0][1])
    log.info("simulator on http://%s:%d serving projects %s", host, bound, ", ".join(sim.projects))
    return RunningSimulator(sim, runner, host, bound)


class SimulatorThread:
    """A simulator on its own thread and event loop; a context manager for blocking tests."""

    def __init__(self, scenario: Scenario | str | Path | None = None, settings: Settings | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="watcher-simulator", daemon=True)
        self._thread.start()
        self.running: RunningSimulator = self.call(start_simulator(scenario=scenario, settings=settings))
        self.sim, self.url, self.port = self.running.sim, self.running.url, self.running.port

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self.call(self.running.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> SimulatorThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def banner(running: RunningSimulator, settings: Settings) -> list[str]:
    """What `watcher simulate` prints at start: where, which projects, the keys to use (the
    simulator's own throwaway keys, which open nothing else) and the by-id jobs to track."""
    lines = [
        f"simulator listening on {running.url}",
        f"  projects: {', '.join(running.projects)}",
        "  keys (the simulator's own; they open nothing else):",
        f"    export HUAWEICLOUD_SDK_AK={settings.ak} HUAWEICLOUD_SDK_SK={settings.sk}",
        f"    or the token: export HUAWEICLOUD_SDK_TOKEN={settings.token}",
        "  by-id jobs (config `job_ids`, or `watcher track SOURCE JOB_ID --project P`):",
    ]
    for source in ("evs", "appjob"):
        for project in running.projects:
            if ids := running.sim.job_ids(source, project):
                lines.append(f"    {source} in {project}: {', '.join(ids)}")
    return lines


def run(port: int, scenario_file: str | Path | None, *, host: str = "127.0.0.1", speed: float = 1.0) -> None:
    """Serve until Ctrl-C (blocking); ``scenario_file`` is a path or a shipped scenario's name
    (:func:`scenario_path`); None serves the demo scenario."""
    settings = Settings(speed=speed)
    scenario = named_scenario(scenario_file) if scenario_file else load_scenario(demo_scenario_path())

    async def main() -> None:
        running = await start_simulator(host, port, scenario, settings)
        for line in banner(running, settings):
            print(line, flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await running.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
