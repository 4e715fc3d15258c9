"""The simulated jobs: timelines, the job records of each API, and each API's status words.

Plain frozen dataclasses built once by :func:`watcher.simulator.lifecycle.build_plan`;
:mod:`watcher.simulator.views` renders them. Status words per source (the API's own, see
huawei-job-apis.md §0):

==============  =========  =========  =========  =========
phase           pending    running    succeeded  failed
==============  =========  =========  =========  =========
workspace       WAITING    RUNNING    SUCCESS    FAILED
workspaceapp    WAITING    RUNNING    SUCCESS    FAILED
appjob (v2)     WAITING    RUNNING    SUCCESS    FAILED
appjob (v1)     3          2          1          0
script          INIT       RUNNING    FINISH     FAILED
evs             INIT       RUNNING    SUCCESS    FAIL
==============  =========  =========  =========  =========

A Workspace App sub-job may also take a *path* between RUNNING and its end
(``AppBatch.path``): states named by the API's own words ABNORMAL, ROLLBACK, ABORTING (or
RUNNING again). ``workspaceapp`` rows and the v2 App job's ``sub_jobs`` show the word; the
deprecated v1 App job has no integer for them and shows ``2`` (processing), as for any
sub-job that has not ended (derived: S2 lists only 0-3). The App job itself stays RUNNING
until its last sub-job ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from watcher.simulator.scenario import ErrorSpec

Phase = Literal["pending", "running", "succeeded", "failed"]
PHASES: tuple[Phase, ...] = ("pending", "running", "succeeded", "failed")

WORDS: dict[str, tuple[str, str, str, str]] = {
    "workspace": ("WAITING", "RUNNING", "SUCCESS", "FAILED"),
    "workspaceapp": ("WAITING", "RUNNING", "SUCCESS", "FAILED"),
    "appjob": ("WAITING", "RUNNING", "SUCCESS", "FAILED"),
    "appjob.v1": ("3", "2", "1", "0"),
    "script": ("INIT", "RUNNING", "FINISH", "FAILED"),
    "evs": ("INIT", "RUNNING", "SUCCESS", "FAIL"),
}


#: A unit's state at one time: a phase, or a path word (only App sub-jobs have those).
State = str


def word(source: str, state: State) -> str:
    """The status word ``source`` shows for ``state``."""
    if state in _PHASE_INDEX:
        return WORDS[source][_PHASE_INDEX[state]]
    if source == "workspaceapp":  # the list rows and the v2 App job's sub_jobs
        return state
    if source == "appjob.v1":
        return WORDS[source][1]  # no integer for ABNORMAL & co: still processing
    raise ValueError(f"{source} has no word for {state!r}")


def phase_of(state: State) -> Phase:
    """The phase of ``state``: a path word is still ``running`` (the unit has not ended)."""
    return state if state in _PHASE_INDEX else "running"  # type: ignore[return-value]


_PHASE_INDEX: dict[str, int] = {p: i for i, p in enumerate(PHASES)}


@dataclass(frozen=True)
class Timeline:
    """When a unit is created, starts running and ends (``ended`` None: stuck RUNNING)."""

    created: float
    running: float
    ended: float | None
    planned_end: float  # when it would have ended (the App job's expected_end_time)
    failed: bool = False
    error: ErrorSpec | None = None
    #: (from, word) steps between RUNNING and the end, in time order (App sub-jobs only).
    path: tuple[tuple[float, str], ...] = ()

    def phase_at(self, t: float) -> Phase | None:
        """The phase at virtual time ``t``; None before the unit exists."""
        if t < self.created:
            return None
        if self.ended is not None and t >= self.ended:
            return "failed" if self.failed else "succeeded"
        return "running" if t >= self.running else "pending"

    def state_at(self, t: float) -> State | None:
        """The phase at ``t``, or the path word in force then; None before the unit exists."""
        phase = self.phase_at(t)
        if phase != "running" or not self.path or t < self.path[0][0]:
            return phase
        current = phase
        for at, state in self.path:
            if t < at:
                break
            current = state
        return current

    def steps(self) -> list[tuple[float, State]]:
        """(time, state) of every change; changes at the same instant keep only the last."""
        raw: list[tuple[float, State]] = [(self.created, "pending"), (self.running, "running"), *self.path]
        if self.ended is not None:
            raw.append((self.ended, "failed" if self.failed else "succeeded"))
        out: list[tuple[float, State]] = []
        for t, state in raw:
            if out and out[-1][0] == t:
                out[-1] = (t, state)
            else:
                out.append((t, state))
        return out


def derive(children: Iterable[Timeline], created: float) -> Timeline:
    """A parent's timeline from its children's (see the module note)."""
    kids = list(children)
    ends = [k.ended for k in kids]
    failed = [k for k in kids if k.failed]
    return Timeline(
        created=created,
        running=min(k.running for k in kids),
        ended=None if any(e is None for e in ends) else max(e for e in ends if e is not None),
        planned_end=max(k.planned_end for k in kids),
        failed=bool(failed),
        error=failed[0].error if failed else None,
    )


@dataclass(frozen=True)
class DesktopJob:
    """One row of ``workspace-sub-jobs``: one desktop of a Workspace job."""

    project: str
    id: str
    job_id: str
    job_type: str
    desktop_id: str
    desktop_name: str
    user_name: str
    product_id: str
    ip_address: str
    host: str
    desktop_pool_id: str | None
    timeline: Timeline


@dataclass(frozen=True)
class AppSubJob:
    id: str
    job_id: str
    job_type: str
    resource_id: str
    resource_name: str
    timeline: Timeline


@dataclass(frozen=True)
class AppJob:
    project: str
    id: str
    job_type: str
    subs: tuple[AppSubJob, ...]
    timeline: Timeline
    tracked: bool  # from an ``appjob`` batch: advertised by Simulator.job_ids("appjob", ...)


@dataclass(frozen=True)
class ScriptTask:
    project: str
    id: str
    task_type: str
    desktop_pool_id: str
    desktop_pool_name: str
    script_id: str
    script_name: str
    command_type: str
    command_content: str
    desktops: int
    failed_num: int
    skip_num: int
    timeline: Timeline


@dataclass(frozen=True)
class EvsSubJob:
    id: str
    job_type: str
    volume_id: str
    name: str
    size: int
    volume_type: str
    timeline: Timeline


@dataclass(frozen=True)
class EvsJob:
    project: str
    id: str
    job_type: str
    volume_id: str
    name: str
    size: int
    volume_type: str
    subs: tuple[EvsSubJob, ...]  # batch job types only
    timeline: Timeline


@dataclass
class ProjectPlan:
    desktops: list[DesktopJob]
    app_jobs: list[AppJob]
    tasks: list[ScriptTask]
    evs_jobs: list[EvsJob]


@dataclass
class Plan:
    """Every job of a scenario, per project, in creation order."""

    projects: dict[str, ProjectPlan]
