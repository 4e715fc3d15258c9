"""Workspace sub-jobs: ``GET /v2/{project_id}/workspace-sub-jobs`` (SDK ``ListItaSubJobs``).

Upstream (huawei-job-apis.md §5.1, seed S0): one row per *sub*-job (one desktop of a
``createDesktops`` job…); ``id`` is the sub-job, ``job_id`` its parent. Quirks:

* ``status`` is a plain string with no enum; filter words are SUCCESS/RUNNING/FAILED/WAITING
  and S0 sends the filter **repeated** (``status=FAILED&status=RUNNING``), the form used here.
* Times look like ``2020-04-10 06:45:14``: a space and no zone, read as UTC. RUNNING rows
  already carry an ``end_time`` (S0), so it is passed through but means nothing until the end.
* The failure text is ``fail_reason`` (SDK); S0 also shows ``message``, used as a fallback.
  ``desktop_name``/``ip_address`` live in ``entities`` (SDK) or at the top level (S0): either.
* ``limit`` is 0–1000 (default 1000); ``total_count`` is the number of matching rows.
* Final statuses (:data:`FINAL`): SUCCESS and FAILED, the filter's "executed" and "failed"
  (S0); any other word, known or not, keeps the sub-job polled.

Declared here: path, query (``job_type`` one stream per type, ``job_id`` one stream per
``Target.job_ids`` entry, ``desktop_pool_id``, repeated ``status``), paging, the status →
phase table :data:`PHASES`, the final statuses :data:`FINAL`, and the field mapping in
:func:`normalize`.

**Cost**: with no status filter configured, each stream is polled the narrow/full way of
:mod:`watcher.sources.narrow`: the open listing is one request for
``status=WAITING&status=RUNNING``; an active sub-job missing from it is re-read through its
parent job, ``job_id=<parent>`` with any status (one listing per parent: it yields the
terminal row, and any sibling that failed fast). ``complete`` is True only when every
stream was listed in full. With ``Target.statuses`` set, exactly those statuses are listed
every poll (``complete=True``: a job that leaves the filter is reported vanished).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from typing import Any

import msgspec

from watcher.events import Entities, Phase
from watcher.sources.base import FetchResult, Observation, Target
from watcher.sources.fields import is_final, phase_of, text
from watcher.sources.narrow import SWEEP_SECONDS, ByParent, Clock, Narrow, pages
from watcher.sources.paging import collect
from watcher.sources.session import Session
from watcher.sources.timefmt import RawTime, parse_time

NAME = "workspace"
SERVICE = "workspace"
API = "workspace.list_sub_jobs"
PATH = "/v2/{project_id}/workspace-sub-jobs"
LIMIT = 1000  # the documented maximum (and default)

PHASES: dict[str, Phase] = {
    "WAITING": "pending",
    "RUNNING": "running",
    "SUCCESS": "succeeded",
    "FAILED": "failed",
}
#: The statuses S0 documents as the end of a sub-job; only these end its polling.
FINAL: frozenset[str] = frozenset({"SUCCESS", "FAILED"})
OPEN_STATUSES: tuple[str, ...] = ("WAITING", "RUNNING")


class WsEntities(msgspec.Struct, kw_only=True):
    desktop_id: str | None = None
    desktop_name: str | None = None
    user_name: str | None = None
    product_id: str | None = None
    ip_address: str | None = None


class WsSubJob(msgspec.Struct, kw_only=True):
    """``JobDetailInfo``: the SDK's fields plus S0's ``message``/``desktop_name``."""

    id: str
    status: str
    job_id: str | None = None
    job_type: str | None = None
    entities: WsEntities | None = None
    begin_time: RawTime = None
    end_time: RawTime = None
    error_code: str | None = None
    fail_reason: str | None = None
    message: str | None = None
    desktop_name: str | None = None
    ip_address: str | None = None


class WsPage(msgspec.Struct, kw_only=True):
    total_count: int | None = None
    jobs: list[WsSubJob] | None = None


def normalize(row: WsSubJob) -> Observation:
    """One sub-job row as an Observation (job = sub-job ``id``, parent = ``job_id``)."""
    ents = row.entities or WsEntities()
    return Observation(
        job_id=row.id,
        parent_job_id=text(row.job_id),
        job_type=row.job_type or "",
        status=row.status,
        phase=phase_of(PHASES, row.status),
        final=is_final(FINAL, row.status),
        begin_time=parse_time(row.begin_time),
        end_time=parse_time(row.end_time),
        error_code=text(row.error_code),
        message=text(row.fail_reason) or text(row.message),
        entities=Entities(
            desktop_id=text(ents.desktop_id),
            desktop_name=text(ents.desktop_name) or text(row.desktop_name),
            user_name=text(ents.user_name),
            product_id=text(ents.product_id),
            ip_address=text(ents.ip_address) or text(row.ip_address),
        ),
    )


Stream = tuple[str | None, str | None]  # (job_type, job_id) filter of one request stream
Params = list[tuple[str, str]]


def streams(target: Target) -> list[tuple[Stream, Params]]:
    """One request stream per (job type × job id) of the target; the pool filter applies to all."""
    out: list[tuple[Stream, Params]] = []
    for job_type in target.job_types or (None,):
        for job_id in target.job_ids or (None,):
            params: Params = []
            if job_type:
                params.append(("job_type", job_type))
            if job_id:
                params.append(("job_id", job_id))
            if target.desktop_pool_id:
                params.append(("desktop_pool_id", target.desktop_pool_id))
            out.append(((job_type, job_id), params))
    return out


async def list_rows(session: Session, base: Params, statuses: Sequence[str]) -> tuple[list[WsSubJob], int | None]:
    """Every row of one filtered listing, paged to the end, and its total."""
    path = PATH.format(project_id=session.project_path)

    async def page(offset: int, limit: int) -> tuple[list[WsSubJob], int | None]:
        params = [*base, *(("status", s) for s in statuses), ("limit", str(limit)), ("offset", str(offset))]
        body = await session.get(API, path, params, WsPage)
        return session.rows(API, "jobs", body.jobs, body.total_count), body.total_count

    return await collect(page, limit=LIMIT, api=API, project_id=session.target.project_id)


class _Lister(ByParent[WsSubJob]):
    """How the narrow strategy lists a Workspace stream: open = one repeated-status listing."""

    limit = LIMIT
    finals = FINAL

    async def listing(self, session: Session, base: Params) -> tuple[list[WsSubJob], int | None]:
        return await list_rows(session, base, ())

    def open_cost(self, rows: Sequence[WsSubJob]) -> int:
        return pages(sum(1 for r in rows if r.status in OPEN_STATUSES), LIMIT)

    async def open(self, session: Session, base: Params) -> list[WsSubJob]:
        return (await list_rows(session, base, OPEN_STATUSES))[0]


class WorkspaceSource:
    """Lists Workspace sub-jobs; see the module note for the narrow/full cost strategy."""

    name = NAME
    service = SERVICE
    by_id = False

    def __init__(self, *, sweep_every: int = 20, sweep_seconds: float = SWEEP_SECONDS, clock: Clock = time.monotonic) -> None:
        self._narrow = Narrow(_Lister(), sweep_every=sweep_every, sweep_seconds=sweep_seconds, clock=clock)
        self.sweep_every = sweep_every

    async def fetch(self, client: Any, target: Target, active: Collection[str]) -> FetchResult:
        session = Session(client, service=self.service, target=target)
        if target.statuses:
            seen: dict[str, Observation] = {}
            for _, base in streams(target):
                rows, _ = await list_rows(session, base, target.statuses)
                seen.update((r.id, normalize(r)) for r in rows)
            return FetchResult(observations=list(seen.values()), complete=True, requests=session.requests)
        return await self._narrow.fetch(session, target.id, streams(target), active, lambda _, row: normalize(row))
