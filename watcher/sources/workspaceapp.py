"""Workspace App sub-jobs: ``GET /v1/{project_id}/app-server-sub-jobs`` (SDK ``ListSubJobs``).

Upstream (huawei-job-apis.md §5.2, seed S1): one row per sub-job of an application-streaming
server job; ``id`` is the sub-job, ``job_id`` its parent. Quirks:

* ``job_type`` is **mandatory** and single-valued (S1, GO): one request stream per
  ``Target.job_types`` entry; a target without job types is a config error. ``status`` is
  single-valued too, so a ``Target.statuses`` filter adds one stream per status.
* ``limit`` is 1–100 (default 10); the total is ``count`` and rows are ``items``. S1's own
  example says ``count: 0`` next to one item, so paging trusts ``count`` but never loses
  the rows already received.
* Seven statuses; S1 and the SDK list them but no source says which of ABNORMAL, ROLLBACK
  or ABORTING are final. Only SUCCESS and FAILED are taken as final (:data:`FINAL`): a
  status that might still move keeps the sub-job polled, so a later move is seen within one
  poll interval. The phase (what rules match on) is a separate choice:

  ========  =========  =====  ====================================================
  status    phase      final  why
  ========  =========  =====  ====================================================
  WAITING   pending    no
  RUNNING   running    no
  SUCCESS   succeeded  yes
  FAILED    failed     yes
  ABNORMAL  failed     no     the job is in a broken state nothing documented
                              resolves: it alerts like a failure, and is still
                              polled (RUNNING → ABNORMAL → ROLLBACK → FAILED is seen
                              step by step; the later FAILED is the same failure)
  ROLLBACK  running    no     rolling back is still changing; it ends in another
                              status (a rule can still match the raw word ROLLBACK)
  ABORTING  running    no     a cancel in progress, still changing
  (other)   other      no     a word no document names
  ========  =========  =====  ====================================================

* Times: ``2022-03-07T10:40:43.858Z``. Failure text: ``error_message`` (not ``fail_reason``).
  ``job_resource_info`` → ``resource_id``/``resource_name``.

**Cost**: with no status filter configured, each (job type × job id) stream is polled the
narrow/full way of :mod:`watcher.sources.narrow`. ``status`` is single-valued, so the open
listing is one listing per status in :data:`LISTED`: WAITING and RUNNING, the statuses every
sub-job passes through first. ABNORMAL, ROLLBACK and ABORTING are open too (not final) but
are only reached from those (derived): a sub-job in one of them is an active id missing from
the open answer, so it is re-read through its parent (``job_id=<parent>``, any status) on
every poll, like every sub-job that left the listed statuses (a sub-job that stays ABNORMAL
thus costs one request per poll for its parent, never more than a full listing, and keeps
its target on the fast schedule: the price of not guessing finality). A sub-job first reached
ABNORMAL/ROLLBACK/ABORTING unseen is found by the full sweep, like one that started and
ended between polls. With ``Target.statuses`` set, exactly those statuses are listed every
poll (``complete=True``).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from typing import Any

import msgspec

from watcher.errors import ConfigError
from watcher.events import Entities, Phase
from watcher.sources.base import FetchResult, Observation, Target
from watcher.sources.fields import is_final, phase_of, text
from watcher.sources.narrow import SWEEP_SECONDS, ByParent, Clock, Narrow, per_status_cost
from watcher.sources.paging import collect
from watcher.sources.session import Session
from watcher.sources.timefmt import RawTime, parse_time

NAME = "workspaceapp"
SERVICE = "workspaceapp"
API = "workspaceapp.list_sub_jobs"
PATH = "/v1/{project_id}/app-server-sub-jobs"
LIMIT = 100  # the documented maximum

#: ``JobDetailStatus``: shared by this API and the sub-jobs of the v2 App job (``appjob``).
PHASES: dict[str, Phase] = {
    "WAITING": "pending",
    "RUNNING": "running",
    "SUCCESS": "succeeded",
    "FAILED": "failed",
    "ABNORMAL": "failed",
    "ROLLBACK": "running",
    "ABORTING": "running",
}
#: The ``JobDetailStatus`` words taken as final: the two every source documents as an end.
FINAL: frozenset[str] = frozenset({"SUCCESS", "FAILED"})

#: Documented ``job_type`` filter values (S1); others are still sent, the server decides.
JOB_TYPES: tuple[str, ...] = (
    "CREATE_SERVER", "DELETE_SERVER", "REJOIN_DOMAIN", "CHANGE_SERVER_IMAGE", "REINSTALL_OS",
    "MIGRATE_SERVER", "UPDATE_SERVER_TSVI", "UPGRADE_ACCESS_AGENT", "SCHEDULED_TASK", "UPDATE_FREEZE_STATUS",
)  # fmt: skip


class AppResourceInfo(msgspec.Struct, kw_only=True):
    resource_id: str | None = None
    resource_name: str | None = None


class AppSubJob(msgspec.Struct, kw_only=True):
    """``SubJobDetailInfo`` (also the v2 App job's ``sub_jobs[]`` item)."""

    id: str
    status: str
    job_id: str | None = None
    job_type: str | None = None
    job_resource_info: AppResourceInfo | None = None
    begin_time: RawTime = None
    end_time: RawTime = None
    error_code: str | None = None
    error_message: str | None = None


class AppPage(msgspec.Struct, kw_only=True):
    count: int | None = None
    items: list[AppSubJob] | None = None


def normalize(row: AppSubJob, parent: str | None = None) -> Observation:
    """One sub-job row as an Observation; ``parent`` overrides the row's ``job_id``."""
    res = row.job_resource_info or AppResourceInfo()
    return Observation(
        job_id=row.id,
        parent_job_id=parent or text(row.job_id),
        job_type=row.job_type or "",
        status=row.status,
        phase=phase_of(PHASES, row.status),
        final=is_final(FINAL, row.status),
        begin_time=parse_time(row.begin_time),
        end_time=parse_time(row.end_time),
        error_code=text(row.error_code),
        message=text(row.error_message),
        entities=Entities(resource_id=text(res.resource_id), resource_name=text(res.resource_name)),
    )


Params = list[tuple[str, str]]
Stream = tuple[str, str | None]  # (job_type, job_id) of one request stream
#: Statuses the narrow poll lists, one listing each (the filter is single-valued).
LISTED: tuple[str, ...] = ("WAITING", "RUNNING")


def _require_job_types(target: Target) -> None:
    if not target.job_types:
        raise ConfigError(
            f"target {target.id}: the workspaceapp API requires a job_type; set job_types to one or more of "
            + ", ".join(JOB_TYPES),
            key="job_types",
        )


def streams(target: Target) -> list[tuple[Stream, Params]]:
    """(key, base params) of each request stream: job type × job id (× status, if configured)."""
    _require_job_types(target)
    out: list[tuple[Stream, Params]] = []
    for job_type in target.job_types:
        for status in target.statuses or (None,):
            for job_id in target.job_ids or (None,):
                params = [("job_type", job_type)]
                if status:
                    params.append(("status", status))
                if job_id:
                    params.append(("job_id", job_id))
                out.append(((job_type, job_id), params))
    return out


async def list_rows(session: Session, base: Params) -> tuple[list[AppSubJob], int | None]:
    """Every row of one filtered listing, paged to the end, and its count."""
    path = PATH.format(project_id=session.project_path)

    async def page(offset: int, limit: int) -> tuple[list[AppSubJob], int | None]:
        body = await session.get(API, path, [*base, ("limit", str(limit)), ("offset", str(offset))], AppPage)
        return session.rows(API, "items", body.items, body.count), body.count

    return await collect(page, limit=LIMIT, api=API, project_id=session.target.project_id)


class _Lister(ByParent[AppSubJob]):
    """How the narrow strategy lists a Workspace App stream: open = one listing per LISTED status."""

    limit = LIMIT
    finals = FINAL

    async def listing(self, session: Session, base: Params) -> tuple[list[AppSubJob], int | None]:
        return await list_rows(session, base)

    def open_cost(self, rows: Sequence[AppSubJob]) -> int:
        return per_status_cost(LISTED, (r.status for r in rows), LIMIT)

    async def open(self, session: Session, base: Params) -> list[AppSubJob]:
        rows: list[AppSubJob] = []
        for status in LISTED:
            rows += (await list_rows(session, [*base, ("status", status)]))[0]
        return rows


class WorkspaceAppSource:
    """Lists Workspace App sub-jobs, one stream per job type; see the module note for the cost strategy."""

    name = NAME
    service = SERVICE
    by_id = False

    def __init__(self, *, sweep_every: int = 20, sweep_seconds: float = SWEEP_SECONDS, clock: Clock = time.monotonic) -> None:
        self._narrow = Narrow(_Lister(), sweep_every=sweep_every, sweep_seconds=sweep_seconds, clock=clock)

    async def fetch(self, client: Any, target: Target, active: Collection[str]) -> FetchResult:
        session = Session(client, service=self.service, target=target)
        if target.statuses:
            seen: dict[str, Observation] = {}
            for _, base in streams(target):
                rows, _ = await list_rows(session, base)
                seen.update((r.id, normalize(r)) for r in rows)
            return FetchResult(observations=list(seen.values()), complete=True, requests=session.requests)
        return await self._narrow.fetch(session, target.id, streams(target), active, lambda _, row: normalize(row))
