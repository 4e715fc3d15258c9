"""Scenario + seed -> every job's timeline, and the exact status transitions that follow.

Pure: no clock, no I/O. Each batch draws from its own ``random.Random`` seeded with
``"{seed}/{project}/{source}/{index}"``, so editing one batch never reshuffles another.
A unit (desktop, server, volume, task) is created at its job's start, queued for
``wait``, runs for ``duration`` and ends SUCCESS or FAILED; exactly
``round(n x fail)`` units of a batch fail and ``round(n x stuck)`` never end. A failing
App sub-job of a batch with a ``path`` goes through those statuses before FAILED. A parent
(App job, EVS batch job) is derived from its children: running from the first child
that runs, ended when the last one ends, failed if any child failed.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Collection, Iterator
from typing import NamedTuple

from watcher.simulator.jobs import (
    AppJob,
    AppSubJob,
    DesktopJob,
    EvsJob,
    EvsSubJob,
    Plan,
    ProjectPlan,
    ScriptTask,
    Timeline,
    derive,
    word,
)
from watcher.simulator.scenario import (
    AppBatch,
    ErrorSpec,
    EvsBatch,
    Lifecycle,
    Range,
    Scenario,
    ScriptBatch,
    Step,
    WorkspaceBatch,
)

#: What a failed unit reports when its batch lists no errors.
DEFAULT_ERRORS: dict[str, ErrorSpec] = {
    "workspace": ErrorSpec("WKS.00129901", "The service is now unavailable to process the request."),
    "workspaceapp": ErrorSpec("WKS.00129901", "The service is now unavailable to process the request."),
    "script": ErrorSpec("", ""),
    "evs": ErrorSpec("EVS.1014", "volume can not be extended!"),
}

BATCH_JOB_TYPES = frozenset({"batchCreateVolume", "bulkDeleteVolume"})


class _Draw:
    """The seeded choices of one batch."""

    def __init__(self, seed: int, project: str, source: str, index: int) -> None:
        self.rng = random.Random(f"{seed}/{project}/{source}/{index}")

    def value(self, r: Range) -> float:
        if isinstance(r, tuple):
            return round(self.rng.uniform(r[0], r[1]), 3)
        return round(float(r), 3)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hex32(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def digits(self) -> str:
        return str(self.rng.randrange(10**17, 10**18))

    def outcomes(self, n: int, spec: Lifecycle) -> list[str]:
        """Exactly round(n x fail) "failed" and round(n x stuck) "stuck", the rest "ok", shuffled."""
        n_fail = min(n, int(n * spec.fail + 0.5))
        n_stuck = min(n - n_fail, int(n * spec.stuck + 0.5))
        out = ["failed"] * n_fail + ["stuck"] * n_stuck + ["ok"] * (n - n_fail - n_stuck)
        self.rng.shuffle(out)
        return out

    def timeline(
        self, start: float, spec: Lifecycle, outcome: str, source: str, path: tuple[Step, ...] = ()
    ) -> Timeline:
        running = round(start + self.value(spec.wait), 3)
        planned = round(running + self.value(spec.duration), 3)
        error = None
        if outcome == "failed":
            error = self.rng.choice(spec.errors) if spec.errors else DEFAULT_ERRORS[source]
        ended: float | None = None if outcome == "stuck" else planned
        steps: list[tuple[float, str]] = []
        if outcome == "failed" and path:  # drawn only when there is a path: other seeds stay as they were
            at: float | None = planned
            for step in path:
                if at is None:  # a step held for good ends the path (validate() allows it last only)
                    break
                steps.append((at, step.status))
                at = None if step.seconds is None else round(at + self.value(step.seconds), 3)
            ended = at
        return Timeline(
            created=start,
            running=running,
            ended=ended,
            planned_end=ended if ended is not None else planned,
            failed=outcome == "failed",
            error=error,
            path=tuple(steps),
        )


def _workspace(pid: str, i: int, b: WorkspaceBatch, seed: int) -> Iterator[DesktopJob]:
    d = _Draw(seed, pid, "workspace", i)
    outcomes = iter(d.outcomes(b.count * b.desktops, b))
    for _ in range(b.count):
        start, job_id = d.value(b.start), d.uuid()
        for _ in range(b.desktops):
            n = d.rng.randrange(1000, 10000)
            yield DesktopJob(
                project=pid,
                id=d.uuid(),
                job_id=job_id,
                job_type=b.job_type,
                desktop_id=d.uuid(),
                desktop_name=f"{b.name_prefix}-{n}",
                user_name=f"{b.user_prefix}-{n}",
                product_id=b.product_id,
                ip_address=f"10.{d.rng.randrange(0, 256)}.{d.rng.randrange(0, 256)}.{d.rng.randrange(2, 255)}",
                host=f"192.168.{d.rng.randrange(0, 16)}.{d.rng.randrange(2, 255)}",
                desktop_pool_id=b.desktop_pool_id,
                timeline=d.timeline(start, b, next(outcomes), "workspace"),
            )


def _app(pid: str, i: int, b: AppBatch, seed: int, tracked: bool) -> Iterator[AppJob]:
    d = _Draw(seed, pid, "appjob" if tracked else "workspaceapp", i)
    outcomes = iter(d.outcomes(b.count * b.servers, b))
    for _ in range(b.count):
        start, job_id = d.value(b.start), d.digits()
        subs = tuple(
            AppSubJob(
                id=d.digits(),
                job_id=job_id,
                job_type=b.job_type,
                resource_id=d.uuid(),
                resource_name=f"{b.server_prefix}-{d.rng.randrange(10**9, 10**10)}",
                timeline=d.timeline(start, b, next(outcomes), "workspaceapp", b.path),
            )
            for _ in range(b.servers)
        )
        timeline = derive((s.timeline for s in subs), start)
        yield AppJob(project=pid, id=job_id, job_type=b.job_type, subs=subs, timeline=timeline, tracked=tracked)


def _script(pid: str, i: int, b: ScriptBatch, seed: int) -> Iterator[ScriptTask]:
    d = _Draw(seed, pid, "script", i)
    for outcome in d.outcomes(b.count, b):
        start = d.value(b.start)
        skip = min(b.desktops, int(d.value(b.skipped)))
        failed = b.desktops - skip if outcome == "failed" else min(b.desktops - skip, int(d.value(b.failed)))
        yield ScriptTask(
            project=pid,
            id=d.uuid(),
            task_type=b.task_type,
            desktop_pool_id=b.desktop_pool_id,
            desktop_pool_name=b.desktop_pool_name,
            script_id=d.uuid(),
            script_name=b.script_name,
            command_type=b.command_type,
            command_content=b.command_content,
            desktops=b.desktops,
            failed_num=failed,
            skip_num=skip,
            timeline=d.timeline(start, b, outcome, "script"),
        )


def _evs(pid: str, i: int, b: EvsBatch, seed: int) -> Iterator[EvsJob]:
    d = _Draw(seed, pid, "evs", i)
    batch = b.job_type in BATCH_JOB_TYPES
    per_job = b.volumes if batch else 1
    outcomes = iter(d.outcomes(b.count * per_job, b))
    sub_type = "deleteVolume" if b.job_type == "bulkDeleteVolume" else "createVolume"
    for _ in range(b.count):
        start, job_id = d.value(b.start), d.hex32()
        units = [
            EvsSubJob(
                id=d.hex32(),
                job_type=sub_type if batch else b.job_type,
                volume_id=d.uuid(),
                name=f"{b.name_prefix}-{d.rng.randrange(1000, 10000)}",
                size=int(d.value(b.size)),
                volume_type=b.volume_type,
                timeline=d.timeline(start, b, next(outcomes), "evs"),
            )
            for _ in range(per_job)
        ]
        head = units[0]
        yield EvsJob(
            project=pid,
            id=job_id,
            job_type=b.job_type,
            volume_id=head.volume_id,
            name=head.name,
            size=head.size,
            volume_type=b.volume_type,
            subs=tuple(units) if batch else (),
            timeline=derive((u.timeline for u in units), start) if batch else head.timeline,
        )


def build_plan(scenario: Scenario) -> Plan:
    """Every job of ``scenario`` (deterministic in ``scenario.seed``)."""
    seed = scenario.seed
    projects: dict[str, ProjectPlan] = {}
    for pid, spec in scenario.projects.items():
        desktops = [j for i, b in enumerate(spec.workspace) for j in _workspace(pid, i, b, seed)]
        apps = [j for i, b in enumerate(spec.workspaceapp) for j in _app(pid, i, b, seed, tracked=False)]
        apps += [j for i, b in enumerate(spec.appjob) for j in _app(pid, i, b, seed, tracked=True)]
        tasks = [t for i, b in enumerate(spec.script) for t in _script(pid, i, b, seed)]
        evs = [j for i, b in enumerate(spec.evs) for j in _evs(pid, i, b, seed)]
        by_time = lambda job: job.timeline.created  # noqa: E731 - stable sort: ties keep scenario order
        projects[pid] = ProjectPlan(
            desktops=sorted(desktops, key=by_time),
            app_jobs=sorted(apps, key=by_time),
            tasks=sorted(tasks, key=by_time),
            evs_jobs=sorted(evs, key=by_time),
        )
    return Plan(projects=projects)


class Transition(NamedTuple):
    """One status change a poller watching ``source`` in ``project`` should publish."""

    source: str
    project: str
    job_id: str
    from_status: str | None  # None: the job appeared
    to_status: str
    at_seconds: float


def _changes(source: str, project: str, job_id: str, tl: Timeline, words: str) -> Iterator[Transition]:
    prev: str | None = None
    for t, state in tl.steps():
        status = word(words, state)
        if status != prev:  # the v1 App job shows a sub-job's whole path as "2"
            yield Transition(source, project, job_id, prev, status, t)
        prev = status


def plan_transitions(
    plan: Plan, *, until: float | None = None, appjob_api: str = "v2", sources: Collection[str] | None = None
) -> list[Transition]:
    """Every transition of ``plan``, ordered by time (then source, project, job id)."""
    app_words = "appjob.v1" if appjob_api == "v1" else "appjob"
    out: list[Transition] = []
    for pid, p in plan.projects.items():
        for dj in p.desktops:
            out += _changes("workspace", pid, dj.id, dj.timeline, "workspace")
        for aj in p.app_jobs:
            for sub in aj.subs:
                out += _changes("workspaceapp", pid, sub.id, sub.timeline, "workspaceapp")
            if aj.tracked:
                out += _changes("appjob", pid, aj.id, aj.timeline, app_words)
                for sub in aj.subs:
                    out += _changes(
                        "appjob", pid, sub.id, sub.timeline, app_words if appjob_api == "v1" else "workspaceapp"
                    )
        for task in p.tasks:
            out += _changes("script", pid, task.id, task.timeline, "script")
        for ej in p.evs_jobs:
            out += _changes("evs", pid, ej.id, ej.timeline, "evs")
            for es in ej.subs:
                out += _changes("evs", pid, es.id, es.timeline, "evs")
    out = [t for t in out if (until is None or t.at_seconds <= until) and (sources is None or t.source in sources)]
    return sorted(out, key=lambda t: (t.at_seconds, t.source, t.project, t.job_id))


def scenario_transitions(
    scenario: Scenario, *, until: float | None = None, appjob_api: str = "v2", sources: Collection[str] | None = None
) -> list[Transition]:
    """The exact ``(source, project, job_id, from_status, to_status, at_seconds)`` list of ``scenario``.

    ``appjob`` rows cover the tracked App jobs and their sub-jobs, in the v2 words unless
    ``appjob_api="v1"`` (integers as strings, the way the ``appjob`` source reports them).
    Faults are not part of it: they change answers, not lifecycles.
    """
    return plan_transitions(build_plan(scenario), until=until, appjob_api=appjob_api, sources=sources)
