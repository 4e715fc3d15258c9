"""The scale scenario's rig: simulator, sink, ground truth and one measured run of a contender.

Shared by ``scale.py`` (watcher on each broker, then the naive poller) and ``scaleout.py``
(one worker vs two). A *contender* is whatever polls the simulator and posts to the sink:
``watcher run`` worker(s) on a broker or ``bench/naive.py`` (:mod:`bench.contenders`).
:func:`measure` runs one contender on a fresh simulator serving the same scenario, the same
way every time:

1. the simulator's clock is frozen at virtual 0 (every job that starts at 0 exists, WAITING)
   until the contender has polled every target once — by-id targets once per id — counted per
   (API, project) at the simulator's door, so start-up never eats into the scenario; with
   several workers, only after the consumer group is stable with all of them;
2. then the clock runs at ``speed`` from 0: the wall time of virtual 0 is ``wall0``, and each
   failure's change instant is ``wall0 + at / speed`` (``at`` from the simulator's plan);
3. the run ends when every failure has reached the sink (or a deadline passed), plus ``settle``
   seconds to catch duplicates; CPU, RSS and requests are read for the window ``wall0`` → the
   last failure's first notification.

Ground truth is the plan, one entry per job a correct watcher pages about (the unit of issue
10): a workspace desktop, a Workspace App job (whichever API shows it: keyed by the App job
id), a script task, an EVS job. Notifications say which job in their title (watcher: the
rules' ``title``; the naive poller: its ``job`` field).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from bench.procs import Meter
from watcher.simulator.handlers import match
from watcher.simulator.scenario import Scenario
from watcher.simulator.server import make_app
from watcher.simulator.settings import Settings
from watcher.simulator.state import Simulator
from watcher.sinks import Received, WebhookSink

SOURCES = ("workspace", "workspaceapp", "appjob", "script", "evs")
BY_ID = ("appjob", "evs")
APP_JOB_TYPES = ("CREATE_SERVER",)  # the scale scenario's App job type (workspaceapp's mandatory filter)

#: One rule per source family; each title is the id of the job a page is about (App and EVS:
#: the parent job, whichever API or sub-job fired), so the sink can tell every page apart.
RULES = """\
rules:
  - name: bench-workspace-failed
    when: "workspace: failed"
    notify: [sink]
    title: "{{ event.job_id }}"
  - name: bench-app-job-failed
    when: 'source in ["workspaceapp", "appjob"] && phase == "failed"'
    notify: [sink]
    title: "{{ event.parent_job_id or event.job_id }}"
  - name: bench-evs-job-failed
    when: "evs: FAIL"
    notify: [sink]
    title: "{{ event.parent_job_id or event.job_id }}"
  - name: bench-script-task-failed
    when: "script: failed"
    notify: [sink]
    title: "{{ event.job_id }}"
"""


@dataclass(frozen=True)
class Failure:
    key: str  # the job a page is about
    source: str  # its API family ("app" for a Workspace App job, whichever API)
    at: float  # virtual second the API first shows it failed


def failures(sim: Simulator) -> dict[str, Failure]:
    """Every job of the plan that fails, with the first instant any API shows it failed."""
    out: dict[str, Failure] = {}
    for p in sim.plan.projects.values():
        for dj in p.desktops:
            if dj.timeline.failed and dj.timeline.ended is not None:
                out[dj.id] = Failure(dj.id, "workspace", dj.timeline.ended)
        for aj in p.app_jobs:
            seen = [_app_failed_at(s.timeline) for s in aj.subs if s.timeline.failed]
            if seen := [t for t in seen if t is not None]:
                out[aj.id] = Failure(aj.id, "app", min(seen))
        for task in p.tasks:
            if (task.timeline.failed or task.failed_num) and task.timeline.ended is not None:
                out[task.id] = Failure(task.id, "script", task.timeline.ended)
        for ej in p.evs_jobs:
            units = [s.timeline for s in ej.subs] or [ej.timeline]
            ends = [u.ended for u in units if u.failed and u.ended is not None]
            if ends:
                out[ej.id] = Failure(ej.id, "evs", min(ends))
    return out


def _app_failed_at(tl: Any) -> float | None:
    """An App sub-job shows phase failed from its first ABNORMAL (or its FAILED end)."""
    for at, state in tl.path:
        if state == "ABNORMAL":
            return float(at)
    return float(tl.ended) if tl.ended is not None else None


def targets(sim: Simulator) -> dict[tuple[str, str], int]:
    """(source, project) → requests its first poll needs at least (by-id: one per id)."""
    out: dict[tuple[str, str], int] = {}
    for project in sim.scenario.projects:
        for source in SOURCES:
            need = len(sim.job_ids(source, project)) if source in BY_ID else 1
            if need:
                out[(source, project)] = need
    return out


class CountingSimulator:
    """The simulator over HTTP on 127.0.0.1, counting requests per (API family, project)."""

    def __init__(self, scenario: Scenario, speed: float) -> None:
        self.sim = Simulator(scenario, Settings(speed=speed))
        self.seen: Counter[tuple[str, str]] = Counter()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> CountingSimulator:
        @web.middleware
        async def count(request: web.Request, handler: Any) -> web.StreamResponse:
            found = match(request.method, request.rel_url.raw_path)
            if found is not None:
                self.seen[(found[0].source, found[1].get("project_id", ""))] += 1
            return await handler(request)

        app = make_app(self.sim)
        app.middlewares.append(count)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    def polled_all(self, want: dict[tuple[str, str], int]) -> bool:
        return all(self.seen[k] >= n for k, n in want.items())

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class Arrival:
    key: str
    at: float


@dataclass
class Sink:
    """A WebhookSink that records (job, wall time) per notification, from either contender."""

    arrivals: list[Arrival] = field(default_factory=list)
    server: WebhookSink | None = None

    async def start(self) -> Sink:
        self.server = await WebhookSink(on_receive=self._arrived).start()
        return self

    def _arrived(self, rec: Received) -> None:
        body = rec.body if isinstance(rec.body, dict) else {}
        key = body.get("job") or body.get("title") or ""
        self.arrivals.append(Arrival(str(key).strip(), time.time()))
        self.server.received.clear()  # type: ignore[union-attr]  # the arrivals are the record

    def json_url(self, path: str) -> str:
        assert self.server is not None
        return self.server.url(path)

    def http_url(self, path: str) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}/{path}"

    def first(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for a in self.arrivals:
            out.setdefault(a.key, a.at)
        return out

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()


class Contender(Protocol):
    """Polls the simulator and notifies the sink; its processes are measured."""

    name: str

    async def start(self, rig: CountingSimulator, sink: Sink, tmp: Path) -> dict[str, int]:
        """Start; the processes to measure (name → PID)."""

    async def settled(self) -> bool:
        """True once it polls as it will for the rest of the run (a stable consumer group)."""

    def alive(self) -> str | None:
        """None while running, else what went wrong (with its log's tail)."""

    async def stop(self) -> None: ...


@dataclass
class Run:
    """What one measured run saw."""

    contender: str
    latency: list[float]  # seconds, change instant → first notification, one per notified failure
    failures: int
    missed: list[str]
    duplicates: int  # notifications beyond the first for a failed job
    unexpected: int  # notifications about a job that did not fail
    cpu: dict[str, float]  # process → CPU seconds, wall0 → last failure's first notification
    peak_rss: dict[str, int]  # process → peak RSS (bytes)
    requests: dict[str, int]  # simulator route → requests answered in the window
    window_s: float  # wall0 → last failure's first notification
    ready_s: float  # start → every target polled once (not in any figure)
    first_change: float  # wall time of the first failure
    last_arrival: float
    bench_cpu: float  # the bench process itself (simulator + sink) in the window
    machine_cores: float = 0.0  # cores busy on average in the window, every process on the machine
    changes: dict[str, float] = field(default_factory=dict)  # failed job → wall time of its change
    arrivals: dict[str, float] = field(default_factory=dict)  # failed job → its first notification
    extra: dict[str, Any] = field(default_factory=dict)


async def wait_until(pred: Any, timeout: float, what: str, contender: Contender) -> None:
    t0 = time.monotonic()
    while True:
        res = pred()
        if asyncio.iscoroutine(res):
            res = await res
        if res:
            return
        if problem := contender.alive():
            raise RuntimeError(f"{contender.name} stopped while waiting for {what}:\n{problem}")
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{contender.name}: {what} not within {timeout:.0f}s\n{contender.alive() or ''}")
        await asyncio.sleep(0.1)


async def measure(
    contender: Contender, scenario: Scenario, tmp: Path, *, speed: float = 1.0, grace: float = 60.0,
    settle: float = 10.0, ready_timeout: float = 300.0, extra_pids: dict[str, int] | None = None,
    profile: Path | None = None,
) -> Run:  # fmt: skip
    """One run of ``contender`` on a fresh simulator serving ``scenario`` (see the module docstring);
    ``profile``: record its first process with py-spy from just before the first failure to the
    last failure's notification (:mod:`bench.profile`)."""
    import os

    rig = await CountingSimulator(scenario, speed=0.0).start()
    sink = await Sink().start()
    meter: Meter | None = None
    recording: Any = None
    try:
        truth = failures(rig.sim)
        want = targets(rig.sim)
        started = time.time()
        pids = await contender.start(rig, sink, tmp)
        meter = Meter({**pids, **(extra_pids or {}), "bench (simulator + sink)": os.getpid()}).start()
        await wait_until(contender.settled, ready_timeout, "a stable consumer group", contender)
        rig.seen.clear()  # count from here: what was polled before a rebalance may have moved
        await wait_until(lambda: rig.polled_all(want), ready_timeout, "the first poll of every target", contender)
        ready = time.time() - started
        rig.sim.clock.speed = speed
        rig.sim.set_time(0.0)
        wall0 = time.time() - rig.sim.now() / speed
        meter.sample()
        before = Counter(rig.sim.requests)
        last_at = max((f.at for f in truth.values()), default=0.0)
        deadline = wall0 + last_at / speed + grace

        def all_in() -> bool:
            return set(truth) <= set(sink.first()) or time.time() > deadline

        if profile is not None:
            from bench.profile import Recording

            first_at = min((f.at for f in truth.values()), default=0.0)
            await asyncio.sleep(max(0.0, wall0 + first_at / speed - 1.0 - time.time()))
            recording = Recording(next(iter(pids.values())), profile).start()
        await wait_until(all_in, last_at / speed + grace + 5, "every failure notified", contender)
        profiled = await recording.stop() if recording is not None else None
        firsts = sink.first()
        got = [firsts[k] for k in truth if k in firsts]
        end = max(got, default=time.time())
        after = Counter(rig.sim.requests)  # requests up to now: the window plus the wait above
        await asyncio.sleep(settle)
        if problem := contender.alive():
            raise RuntimeError(f"{contender.name} stopped during the run:\n{problem}")
        await meter.stop()
    finally:
        if recording is not None and recording.proc is not None and recording.proc.poll() is None:
            await recording.stop()  # the run failed while recording: end py-spy too
        if meter is not None:
            await meter.stop()
        await contender.stop()
        await sink.stop()
        await rig.stop()
    firsts = sink.first()
    counts = Counter(a.key for a in sink.arrivals)
    change = {k: wall0 + f.at / speed for k, f in truth.items()}
    return Run(
        contender=contender.name,
        latency=[firsts[k] - change[k] for k in truth if k in firsts],
        failures=len(truth),
        missed=sorted(k for k in truth if k not in firsts),
        duplicates=sum(n - 1 for k, n in counts.items() if k in truth),
        unexpected=sum(n for k, n in counts.items() if k not in truth),
        cpu={n: meter.cpu_between(n, wall0, end) for n in meter.series},
        peak_rss={n: meter.peak(n) for n in meter.series},
        requests={r: after[r] - before[r] for r in sorted(set(after) | set(before)) if after[r] - before[r]},
        window_s=end - wall0,
        ready_s=ready,
        first_change=min(change.values(), default=wall0),
        last_arrival=end,
        bench_cpu=meter.cpu_between("bench (simulator + sink)", wall0, end),
        machine_cores=meter.machine_cores(wall0, end),
        changes=change,
        arrivals={k: firsts[k] for k in truth if k in firsts},
        extra={"profile": profiled} if profiled else {},
    )
