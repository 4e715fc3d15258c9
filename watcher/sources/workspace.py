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

Declared here: path, query (``job_type`` one stream per type, ``job_id`` one stream per
``Target.job_ids`` entry, ``desktop_pool_id``, repeated ``status``), paging, the status →
phase table :data:`PHASES`, and the field mapping in :func:`normalize`.

**Cost** (why fetch is more than "list everything"). The floor is one request per page of
*non-terminal* rows; a listing of everything grows with history. So, with no status filter
configured, each stream is polled in one of two ways and the cheaper one is picked:

* *full*: list every row of the stream (``complete=True``). Chosen when the whole history
  fits in as many pages as the open rows (then it costs the floor), on the first poll, when
  an active id's parent is unknown (e.g. after a restart), and every ``sweep_every`` polls;
* *narrow*: list only ``status=WAITING&status=RUNNING``; every active id missing from that
  answer left the open set, so its parent job is re-read with ``job_id=<parent>`` (any
  status: it yields the terminal row, and any sibling that failed fast). An active id the
  parent query does not return is reported in ``FetchResult.gone``. If more parents need a
  look than the full listing has pages, the full listing is used instead.

Every active id is therefore always answered (row or ``gone``); what narrow polls can miss
is a job that starts *and* ends between two polls under a parent nobody tracks. The next
full sweep reports it (as ``appeared`` in its end state), so ``sweep_every`` bounds that
delay. ``complete`` is True only when every stream was listed in full. The memo behind
this (open sub-job → parent, page estimates) lives in the process; losing it only forces a
full listing. With ``Target.statuses`` set, exactly those statuses are listed every poll
(``complete=True``: a job that leaves the filter is reported vanished).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from watcher.events import TERMINAL_PHASES, Entities, Phase
from watcher.sources.base import FetchResult, Observation, Target
from watcher.sources.fields import phase_of, text
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
        return body.jobs or [], body.total_count

    return await collect(page, limit=LIMIT)


def _pages(rows: int) -> int:
    return max(1, -(-rows // LIMIT))  # even an empty listing costs one request


@dataclass
class _StreamMemo:
    total_all: int | None = None  # rows in the last full listing (None: never listed)
    total_open: int = 0  # open rows at the last look
    since_full: int = 0

    def listed_in_full(self, rows: Sequence[WsSubJob], total: int | None) -> None:
        self.total_all = total if total is not None else len(rows)
        self.total_open = sum(1 for r in rows if r.status in OPEN_STATUSES)
        self.since_full = 0


@dataclass
class _TargetMemo:
    streams: dict[Stream, _StreamMemo] = field(default_factory=dict)
    open: dict[str, tuple[str, Stream]] = field(default_factory=dict)  # open sub-job -> (parent, stream)


class WorkspaceSource:
    """Lists Workspace sub-jobs; see the module note for the narrow/full cost strategy."""

    name = NAME
    service = SERVICE
    by_id = False

    def __init__(self, *, sweep_every: int = 20) -> None:
        if sweep_every < 1:
            raise ValueError(f"sweep_every must be >= 1, got {sweep_every}")
        self.sweep_every = sweep_every
        self._memos: dict[str, _TargetMemo] = {}

    async def fetch(self, client: Any, target: Target, active: Collection[str]) -> FetchResult:
        session = Session(client, service=self.service, target=target)
        if target.statuses:
            seen: dict[str, Observation] = {}
            for _, base in streams(target):
                rows, _ = await list_rows(session, base, target.statuses)
                seen.update((r.id, normalize(r)) for r in rows)
            return FetchResult(observations=list(seen.values()), complete=True, requests=session.requests)

        memo = self._memos.setdefault(target.id, _TargetMemo())
        ids = list(dict.fromkeys(active))
        lost = any(j not in memo.open for j in ids)  # parent unknown: only a full listing answers it
        seen = {}
        open_now: dict[str, tuple[str, Stream]] = {}
        complete = True
        for key, base in streams(target):
            rows, full = await self._poll_stream(session, key, base, memo, ids, force_full=lost)
            complete &= full
            for row in rows:  # later rows are fresher (parent re-reads come after the listing)
                obs = seen[row.id] = normalize(row)
                if obs.phase not in TERMINAL_PHASES and obs.parent_job_id:
                    open_now[row.id] = (obs.parent_job_id, key)
                else:
                    open_now.pop(row.id, None)
        memo.open = open_now
        gone = [j for j in ids if j not in seen]
        return FetchResult(observations=list(seen.values()), complete=complete, gone=gone, requests=session.requests)

    async def _poll_stream(
        self, session: Session, key: Stream, base: Params, memo: _TargetMemo, active: list[str], *, force_full: bool
    ) -> tuple[list[WsSubJob], bool]:
        """Rows of one stream this poll, and whether the stream was listed in full."""
        sm = memo.streams.setdefault(key, _StreamMemo())
        if (
            force_full
            or sm.total_all is None
            or sm.since_full + 1 >= self.sweep_every
            or _pages(sm.total_all) <= _pages(sm.total_open)
        ):
            rows, total = await list_rows(session, base, ())
            sm.listed_in_full(rows, total)
            return rows, True

        rows, total = await list_rows(session, base, OPEN_STATUSES)
        sm.since_full += 1
        sm.total_open = total if total is not None else len(rows)
        listed = {r.id for r in rows}
        parents = list(dict.fromkeys(memo.open[j][0] for j in active if j not in listed and memo.open[j][1] == key))
        if not parents:
            return rows, False
        if len(parents) >= _pages(sm.total_all):  # one full listing is cheaper than a query per parent
            more, total = await list_rows(session, base, ())
            sm.listed_in_full(more, total)
            return rows + more, True
        for parent in parents:
            more, _ = await list_rows(session, [*(p for p in base if p[0] != "job_id"), ("job_id", parent)], ())
            rows += more
        return rows, False
