"""The simulator's state: the scenario's plan, the virtual clock, and a query per route.

Queries answer with the rows that exist at the current virtual time, newest first, already
filtered; the handlers own parameter parsing, paging and error bodies. Nothing here
mutates jobs: the answer is a function of (scenario, seed, epoch, virtual time).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

from watcher.simulator.clock import SimClock
from watcher.simulator.faults import FaultBook
from watcher.simulator.jobs import (
    AppJob,
    AppSubJob,
    DesktopJob,
    EvsJob,
    Phase,
    Plan,
    ProjectPlan,
    ScriptTask,
    State,
    word,
)
from watcher.simulator.lifecycle import Transition, build_plan, plan_transitions
from watcher.simulator.scenario import Scenario
from watcher.simulator.settings import Settings
from watcher.simulator.views import (
    Body,
    Clockface,
    app_job_v1,
    app_job_v2,
    app_sub_job_row,
    evs_job,
    script_task_row,
    workspace_row,
)

#: Script-task filter word -> answer word (the filter says SUCCESS/WAITING, answers FINISH/INIT).
SCRIPT_FILTER = {"SUCCESS": "FINISH", "FAILED": "FAILED", "RUNNING": "RUNNING", "WAITING": "INIT"}

T = TypeVar("T")


class Page(NamedTuple):
    """One page of a listing: how many rows match in all, and the rows of the page."""

    total: int
    rows: list[Body]


def _window(found: list[T], offset: int, limit: int | None) -> list[T]:
    """The page ``[offset, offset + limit)`` of ``found`` counted from its newest (last) item."""
    newest_first = found[::-1]
    return newest_first[offset:] if limit is None else newest_first[offset : offset + limit]


class Simulator:
    """Serves one scenario. Tests step time with :meth:`advance` / :meth:`set_time`."""

    def __init__(
        self, scenario: Scenario | None = None, settings: Settings | None = None, *, clock: SimClock | None = None
    ) -> None:
        self.scenario = scenario or Scenario()
        self.settings = settings or Settings()
        self.clock = clock or SimClock(self.settings.speed)
        epoch = self.settings.epoch or self.scenario.epoch or datetime.now(UTC).replace(microsecond=0)
        self.clockface = Clockface(epoch.astimezone(UTC))
        self.plan: Plan = build_plan(self.scenario)
        self.projects: tuple[str, ...] = tuple(dict.fromkeys([*self.scenario.projects, *self.settings.projects]))
        self.faults = FaultBook(self.scenario.faults, self.scenario.seed)
        self.requests: Counter[str] = Counter()  # route name -> requests answered (any status)
        self._apps = {(p, j.id): j for p, pp in self.plan.projects.items() for j in pp.app_jobs}
        self._evs = {(p, j.id): j for p, pp in self.plan.projects.items() for j in pp.evs_jobs}

    # --- time -----------------------------------------------------------------------------
    @property
    def epoch(self) -> datetime:
        return self.clockface.epoch

    def now(self) -> float:
        """Virtual seconds since start."""
        return self.clock.now()

    def advance(self, seconds: float) -> float:
        return self.clock.advance(seconds)

    def set_time(self, seconds: float) -> float:
        return self.clock.set(seconds)

    # --- what tests and the demo need to know ----------------------------------------------
    def job_ids(self, source: str, project: str) -> list[str]:
        """Ids a poller of ``source`` can ask for, in creation order.

        ``appjob``/``evs``: the by-id job ids (``appjob``: jobs of ``appjob`` batches);
        ``workspace``/``workspaceapp``: parent job ids (the ``job_id`` filter);
        ``script``: task ids (the ``task_id`` filter).
        """
        p = self.plan.projects.get(project)
        if p is None:
            return []
        if source == "appjob":
            return [j.id for j in p.app_jobs if j.tracked]
        if source == "evs":
            return [j.id for j in p.evs_jobs]
        if source == "workspace":
            return list(dict.fromkeys(d.job_id for d in p.desktops))
        if source == "workspaceapp":
            return [j.id for j in p.app_jobs]
        if source == "script":
            return [t.id for t in p.tasks]
        raise ValueError(f"unknown source {source!r}")

    def transitions(
        self, *, until: float | None = None, appjob_api: str = "v2", sources: Collection[str] | None = None
    ) -> list[Transition]:
        return plan_transitions(self.plan, until=until, appjob_api=appjob_api, sources=sources)

    def horizon(self) -> float:
        """Virtual second of the last scheduled transition (0 for an empty scenario)."""
        times = [t.at_seconds for t in self.transitions()]
        return max(times, default=0.0)

    # --- queries, one per route -------------------------------------------------------------
    # A list query selects what matches at the current time, newest first, and renders only
    # the rows of the page asked for: a listing of thousands costs one page of rows.
    def workspace_page(
        self,
        project: str,
        *,
        statuses: Collection[str] = (),
        job_id: str | None = None,
        job_type: str | None = None,
        desktop_pool_id: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> Page:
        t = self.now()
        found: list[tuple[DesktopJob, Phase]] = []
        for dj in self._project(project).desktops:
            phase = dj.timeline.phase_at(t)
            if phase is None:
                continue
            if statuses and word("workspace", phase) not in statuses:
                continue
            if (job_id and dj.job_id != job_id) or (job_type and dj.job_type != job_type):
                continue
            if desktop_pool_id and dj.desktop_pool_id != desktop_pool_id:
                continue
            found.append((dj, phase))
        return Page(len(found), [workspace_row(dj, phase, t, self.clockface) for dj, phase in _window(found, offset, limit)])

    def workspace_sub_jobs(self, project: str, **filters: Any) -> list[Body]:
        """Every matching ``workspace-sub-jobs`` row, newest first (filters as :meth:`workspace_page`)."""
        return self.workspace_page(project, **filters).rows

    def app_page(
        self,
        project: str,
        *,
        job_type: str,
        status: str | None = None,
        job_id: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> Page:
        t = self.now()
        found: list[tuple[AppSubJob, State]] = []
        for aj in self._project(project).app_jobs:
            if job_id and aj.id != job_id:
                continue
            for sub in aj.subs:
                state = sub.timeline.state_at(t)
                if state is None or sub.job_type != job_type:
                    continue
                if status and word("workspaceapp", state) != status:
                    continue
                found.append((sub, state))
        rows = [app_sub_job_row(sub, state, project, self.clockface) for sub, state in _window(found, offset, limit)]
        return Page(len(found), rows)

    def app_sub_jobs(self, project: str, **filters: Any) -> list[Body]:
        """Every matching ``app-server-sub-jobs`` row, newest first (filters as :meth:`app_page`)."""
        return self.app_page(project, **filters).rows

    def app_job(self, project: str, job_id: str, api: str) -> Body | None:
        """The App job by id (``api`` "v1" or "v2"); None if it does not exist (yet)."""
        job: AppJob | None = self._apps.get((project, job_id))
        t = self.now()
        if job is None or job.timeline.phase_at(t) is None:
            return None
        return app_job_v1(job, t, self.clockface) if api == "v1" else app_job_v2(job, t, self.clockface)

    def script_page(
        self,
        project: str,
        *,
        desktop_pool_id: str | None = None,
        script_id: str | None = None,
        script_name: str | None = None,
        status: str | None = None,
        task_type: str | None = None,
        start_after: datetime | None = None,
        start_before: datetime | None = None,
        task_ids: Collection[str] = (),
        offset: int = 0,
        limit: int | None = None,
    ) -> Page:
        t = self.now()
        want = SCRIPT_FILTER.get(status) if status else None
        found: list[tuple[ScriptTask, Phase]] = []
        for task in self._project(project).tasks:
            phase = task.timeline.phase_at(t)
            if phase is None or (want and word("script", phase) != want):
                continue
            if (desktop_pool_id and task.desktop_pool_id != desktop_pool_id) or (task_ids and task.id not in task_ids):
                continue
            if (task_type and task.task_type != task_type) or (script_id and task.script_id != script_id):
                continue
            if script_name and script_name not in task.script_name:
                continue
            if start_after or start_before:
                started = self.clockface.at(task.timeline.created).replace(microsecond=0)
                if (start_after and started <= start_after) or (start_before and started >= start_before):
                    continue
            found.append((task, phase))
        return Page(len(found), [script_task_row(task, phase, self.clockface) for task, phase in _window(found, offset, limit)])

    def script_tasks(self, project: str, **filters: Any) -> list[Body]:
        """Every matching script-task row, newest first (filters as :meth:`script_page`)."""
        return self.script_page(project, **filters).rows

    def evs_job(self, project: str, job_id: str) -> Body | None:
        job: EvsJob | None = self._evs.get((project, job_id))
        t = self.now()
        if job is None or job.timeline.phase_at(t) is None:
            return None
        return evs_job(job, t, self.clockface)

    def _project(self, project: str) -> ProjectPlan:
        return self.plan.projects.get(project) or ProjectPlan([], [], [], [])
