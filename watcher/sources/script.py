"""Desktop-pool script tasks: ``GET /v2/{project_id}/desktop-pools/script-execution-tasks/detail``.

Upstream (huawei-job-apis.md §5.4, seed S3; SDK ``ShowDesktopPoolsScriptExecTasks``). Quirks:

* The status **filter** says SUCCESS/FAILED/RUNNING/WAITING but **answers** say
  FINISH/FAILED/RUNNING/INIT (S3 leaves the list blank; the SDK docstring fills it).
  A ``Target.statuses`` entry in answer words is translated (FINISH→SUCCESS, INIT→WAITING).
  ``status`` is single-valued: one request stream per configured status.
* A FINISHed task may still have failed on some desktops: FINISH with ``failed_num > 0`` is
  phase failed. The counters become :class:`~watcher.events.TaskCounts`.
* Final (:data:`FINAL`): FINISH and FAILED, and the filter's SUCCESS should an answer use it
  (FINISH with failed desktops is final too: the task is over). INIT, RUNNING, WAITING and
  any unknown word keep the task polled.
* The answer has no task type. ``job_type`` is the ``task_type`` filter word: the stream's
  own ``task_type`` when ``Target.job_types`` sets it (one stream per type), else derived:
  ``SCRIPT`` when the task lists scripts, ``COMMAND`` otherwise. (``command_type`` —
  POWERSHELL/BAT/SHELL — says which shell, not what kind of task.)
* ``task_id`` is multi-valued and goes out as repeated keys (``task_id=a&task_id=b``); it
  carries ``Target.job_ids``. ``limit`` is 0–100 (default 10); total is ``total_count``.
* S3's example request says ``desktops-pools`` (a typo); the real path is ``desktop-pools``.
* Times ``yyyy-MM-ddTHH:mm:ssZ`` (``start_time``/``end_time``). No error code or message field.

**Cost**: with no status filter configured, each task-type stream is polled the narrow/full
way of :mod:`watcher.sources.narrow`. The filter is single-valued, so the open listing is
two listings, ``status=WAITING`` and ``status=RUNNING`` (filter words; the rows say INIT and
RUNNING). Tasks have no parent: an active task missing from the open answer is re-read by
its own id, every such id of the poll in one ``task_id=a&task_id=b…`` request (at most
:data:`REREAD_IDS` ids a request, to keep the URL short). A task that starts and ends between
two polls is found by the full sweep. With ``Target.statuses`` set, exactly those statuses
are listed every poll (``complete=True``).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from typing import Any

import msgspec

from watcher.events import Entities, Phase, TaskCounts
from watcher.sources.base import FetchResult, Observation, Target
from watcher.sources.fields import is_final, phase_of, text
from watcher.sources.narrow import SWEEP_SECONDS, Clock, Narrow, pages, per_status_cost
from watcher.sources.paging import collect
from watcher.sources.session import Session
from watcher.sources.timefmt import RawTime, parse_time

NAME = "script"
SERVICE = "workspace"
API = "script.list_tasks"
PATH = "/v2/{project_id}/desktop-pools/script-execution-tasks/detail"
LIMIT = 100  # the documented maximum
REREAD_IDS = 50  # task ids per re-read request (no source gives a URL limit; ~2 KB of ids)

#: Answer words. SUCCESS/WAITING are the filter's words, accepted in answers too.
PHASES: dict[str, Phase] = {
    "INIT": "pending",
    "WAITING": "pending",
    "RUNNING": "running",
    "FINISH": "succeeded",
    "SUCCESS": "succeeded",
    "FAILED": "failed",
}
#: Statuses that end a task: the answer's FINISH/FAILED and the filter's SUCCESS.
FINAL: frozenset[str] = frozenset({"FINISH", "FAILED", "SUCCESS"})
#: Answer word -> filter word, for statuses configured in the answer vocabulary.
FILTER_WORD = {"FINISH": "SUCCESS", "INIT": "WAITING"}
#: Filter words of the open statuses, one listing each (the filter is single-valued).
LISTED: tuple[str, ...] = ("WAITING", "RUNNING")


class ScriptRef(msgspec.Struct, kw_only=True):
    id: str | None = None
    name: str | None = None


class ScriptTask(msgspec.Struct, kw_only=True):
    id: str
    status: str
    desktop_pool_id: str | None = None
    desktop_pool_name: str | None = None
    scripts: list[ScriptRef] | None = None
    command_content: str | None = None
    command_type: str | None = None
    start_time: RawTime = None
    end_time: RawTime = None
    success_num: int | None = None
    failed_num: int | None = None
    skip_num: int | None = None


class ScriptPage(msgspec.Struct, kw_only=True):
    total_count: int | None = None
    script_execution_tasks: list[ScriptTask] | None = None


def normalize(task: ScriptTask, task_type: str | None = None) -> Observation:
    """One task as an Observation; ``task_type`` is the stream's filter word if it had one."""
    counts = TaskCounts(success=task.success_num or 0, failed=task.failed_num or 0, skipped=task.skip_num or 0)
    phase = phase_of(PHASES, task.status)
    if phase == "succeeded" and counts.failed > 0:
        phase = "failed"
    scripts = tuple(n for s in task.scripts or () if (n := text(s.name)))
    return Observation(
        job_id=task.id,
        job_type=task_type or ("SCRIPT" if task.scripts else "COMMAND"),
        status=task.status,
        phase=phase,
        final=is_final(FINAL, task.status),
        begin_time=parse_time(task.start_time),
        end_time=parse_time(task.end_time),
        entities=Entities(
            desktop_pool_id=text(task.desktop_pool_id),
            desktop_pool_name=text(task.desktop_pool_name),
            scripts=scripts,
        ),
        counts=counts,
    )


Params = list[tuple[str, str]]


def streams(target: Target) -> list[tuple[str | None, Params]]:
    """(task type, base params) of each request stream: task type × status."""
    out = []
    for task_type in target.job_types or (None,):
        for status in target.statuses or (None,):
            params: Params = []
            if task_type:
                params.append(("task_type", task_type))
            if status:
                params.append(("status", FILTER_WORD.get(status, status)))
            if target.desktop_pool_id:
                params.append(("desktop_pool_id", target.desktop_pool_id))
            params.extend(("task_id", t) for t in sorted(set(target.job_ids)))
            out.append((task_type, params))
    return out


async def list_rows(session: Session, base: Params) -> tuple[list[ScriptTask], int | None]:
    """Every task of one filtered listing, paged to the end, and its total."""
    path = PATH.format(project_id=session.project_path)

    async def page(offset: int, limit: int) -> tuple[list[ScriptTask], int | None]:
        body = await session.get(API, path, [*base, ("limit", str(limit)), ("offset", str(offset))], ScriptPage)
        return session.rows(API, "script_execution_tasks", body.script_execution_tasks, body.total_count), body.total_count

    return await collect(page, limit=LIMIT, api=API, project_id=session.target.project_id)


class _Lister:
    """How the narrow strategy lists a script-task stream (re-read handle: the task's own id)."""

    limit = LIMIT

    def row_id(self, row: ScriptTask) -> str:
        return row.id

    def handle(self, row: ScriptTask) -> str | None:
        return row.id

    def is_open(self, row: ScriptTask) -> bool:
        return not is_final(FINAL, row.status)

    def open_cost(self, rows: Sequence[ScriptTask]) -> int:
        return per_status_cost(LISTED, (FILTER_WORD.get(r.status, r.status) for r in rows), LIMIT)

    def reread_cost(self, handles: Sequence[str]) -> int:
        return pages(len(handles), REREAD_IDS)

    async def full(self, session: Session, base: Params) -> tuple[list[ScriptTask], int | None]:
        return await list_rows(session, base)

    async def open(self, session: Session, base: Params) -> list[ScriptTask]:
        rows: list[ScriptTask] = []
        for status in LISTED:
            rows += (await list_rows(session, [*base, ("status", status)]))[0]
        return rows

    async def reread(self, session: Session, base: Params, handles: Sequence[str]) -> list[ScriptTask]:
        rest = [p for p in base if p[0] != "task_id"]  # the ids asked for replace the stream's own
        ids = sorted(handles)
        rows: list[ScriptTask] = []
        for i in range(0, len(ids), REREAD_IDS):
            rows += (await list_rows(session, [*rest, *(("task_id", t) for t in ids[i : i + REREAD_IDS])]))[0]
        return rows


class ScriptSource:
    """Lists desktop-pool script execution tasks; see the module note for the cost strategy."""

    name = NAME
    service = SERVICE
    by_id = False

    def __init__(self, *, sweep_every: int = 20, sweep_seconds: float = SWEEP_SECONDS, clock: Clock = time.monotonic) -> None:
        self._narrow = Narrow(_Lister(), sweep_every=sweep_every, sweep_seconds=sweep_seconds, clock=clock)

    async def fetch(self, client: Any, target: Target, active: Collection[str]) -> FetchResult:
        session = Session(client, service=self.service, target=target)
        if target.statuses:
            seen: dict[str, Observation] = {}
            for task_type, base in streams(target):
                rows, _ = await list_rows(session, base)
                seen.update((t.id, normalize(t, task_type)) for t in rows)
            return FetchResult(observations=list(seen.values()), complete=True, requests=session.requests)
        return await self._narrow.fetch(
            session, target.id, streams(target), active, lambda key, row: normalize(row, key if isinstance(key, str) else None)
        )
