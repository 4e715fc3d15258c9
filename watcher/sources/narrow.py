"""Narrow polling: list only the open rows, re-read the ones that left, sweep in full now and then.

Shared by the list sources whose history grows without bound (``workspace``,
``workspaceapp``, ``script``). The floor of a poll is one request per page of *open* rows;
listing everything grows with history. So each request stream is polled one of two ways,
and the cheaper one is picked:

* *full*: list every row of the stream. Chosen when the whole history costs no more than
  the open listing, on the first poll, when an active id has no memo (e.g. after a
  restart: only a full listing can answer it), and every ``sweep_every`` polls or
  ``sweep_seconds``, whichever comes first;
* *narrow*: list only the open statuses the source's :class:`Lister` names. Every active id
  missing from that answer left the open set, so it is re-read by its *handle* (the
  parent job for sub-job APIs, the row's own id where the API filters by id). If the
  re-reads would cost as much as the full listing, the full listing is used instead.

"Open" means *not final*: a row whose status its API does not document as final (the
source's ``FINAL`` table) stays open whatever its phase, so a Workspace App sub-job in
ABNORMAL, ROLLBACK or ABORTING, or any word no document names, is re-read through its
handle on every poll even though the open listing does not name its status: each change is
seen within one poll interval. (The poller decides which ids are active; it must keep
such a job active too.)

An active id that neither answer returns is reported ``gone`` by the source: every active
id is always answered. What narrow polls can miss is a job that starts *and* leaves the
listed statuses between two polls under a handle nobody asks for; the next full sweep
reports it (as ``appeared`` in its later state), so ``sweep_seconds`` bounds that delay —
it matters: a job refused at once (no quota) starts and fails between two polls.
The memo (open id → handle and stream, page estimates) lives in the process; losing it
only forces a full listing. Pure strategy: the HTTP is in each source's Lister.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from watcher.sources.base import FetchResult, Observation
from watcher.sources.fields import is_final, text
from watcher.sources.session import Session

R = TypeVar("R")
Clock = Callable[[], float]

#: At most this long between two full listings of a stream (``[poll] sweep``).
SWEEP_SECONDS = 60.0
Params = list[tuple[str, str]]


def pages(rows: int, limit: int) -> int:
    """Requests one listing of ``rows`` rows costs (an empty listing still costs one)."""
    return max(1, -(-rows // limit))


def per_status_cost(statuses: Iterable[str], words: Iterable[str], limit: int) -> int:
    """Requests of one listing per status in ``statuses``, given the status ``words`` of the open rows."""
    counts: dict[str, int] = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    return sum(pages(counts.get(s, 0), limit) for s in statuses)


class Lister(Protocol[R]):
    """One source's three ways to list a stream (``base`` params), and what a row says."""

    limit: int

    def row_id(self, row: R) -> str: ...

    def handle(self, row: R) -> str | None:
        """What a re-read asks for to find ``row`` again (None: nothing can)."""
        ...

    def is_open(self, row: R) -> bool:
        """The row's status is not documented final, so it is asked for again (phase does not matter)."""
        ...

    def open_cost(self, rows: Sequence[R]) -> int:
        """Requests the open listing would cost if ``rows`` (any statuses) were the stream's rows."""
        ...

    def reread_cost(self, handles: Sequence[str]) -> int: ...

    async def full(self, session: Session, base: Params) -> tuple[list[R], int | None]: ...

    async def open(self, session: Session, base: Params) -> list[R]: ...

    async def reread(self, session: Session, base: Params, handles: Sequence[str]) -> list[R]: ...


class SubJobRow(Protocol):
    """A sub-job row: its own ``id``, its parent ``job_id`` and a status word."""

    @property
    def id(self) -> str: ...

    @property
    def job_id(self) -> str | None: ...

    @property
    def status(self) -> str: ...


S = TypeVar("S", bound=SubJobRow)


class ByParent(Generic[S]):
    """The Lister half shared by sub-job APIs: the handle is the parent, re-read with ``job_id=<parent>``.

    A subclass sets ``limit`` and ``finals`` (the statuses its API documents as final) and
    implements ``listing`` (one filtered listing, paged to the end) and ``open_cost``/``open``.
    """

    limit: int
    finals: Collection[str]

    def row_id(self, row: S) -> str:
        return row.id

    def handle(self, row: S) -> str | None:
        return text(row.job_id)

    def is_open(self, row: S) -> bool:
        return not is_final(self.finals, row.status)

    def reread_cost(self, handles: Sequence[str]) -> int:
        return len(handles)  # one listing per parent (more only if a parent has over a page of sub-jobs)

    async def listing(self, session: Session, base: Params) -> tuple[list[S], int | None]:
        raise NotImplementedError

    async def full(self, session: Session, base: Params) -> tuple[list[S], int | None]:
        return await self.listing(session, base)

    async def reread(self, session: Session, base: Params, handles: Sequence[str]) -> list[S]:
        rows: list[S] = []
        for parent in handles:  # any status: the terminal row, and any sibling that ended unseen
            rows += (await self.listing(session, [*(p for p in base if p[0] != "job_id"), ("job_id", parent)]))[0]
        return rows


@dataclass
class _StreamMemo:
    total_all: int | None = None  # rows in the last full listing (None: never listed)
    open_cost: int = 1  # requests of the open listing at the last look
    since_full: int = 0
    full_at: float = 0.0  # clock time of the last full listing


@dataclass
class _TargetMemo:
    streams: dict[Hashable, _StreamMemo] = field(default_factory=dict)
    open: dict[str, tuple[str, Hashable]] = field(default_factory=dict)  # open id -> (handle, stream)


@dataclass
class Polled(Generic[R]):
    """One poll's rows (id -> (stream, freshest row)), whether every stream was listed in full, and ``gone``."""

    rows: dict[str, tuple[Hashable, R]]
    complete: bool
    gone: list[str]


class Narrow(Generic[R]):
    """The narrow/full strategy over one Lister, with a memo per target."""

    def __init__(
        self, lister: Lister[R], *, sweep_every: int, sweep_seconds: float = SWEEP_SECONDS, clock: Clock = time.monotonic
    ) -> None:
        if sweep_every < 1:
            raise ValueError(f"sweep_every must be >= 1, got {sweep_every}")
        self.lister, self.sweep_every, self.sweep_seconds, self.clock = lister, sweep_every, sweep_seconds, clock
        self._memos: dict[str, _TargetMemo] = {}

    async def poll(
        self, session: Session, target_id: str, streams: Sequence[tuple[Hashable, Params]], active: Collection[str]
    ) -> Polled[R]:
        memo = self._memos.setdefault(target_id, _TargetMemo())
        ids = list(dict.fromkeys(active))
        lost = any(j not in memo.open for j in ids)  # no handle known: only a full listing answers it
        seen: dict[str, tuple[Hashable, R]] = {}
        open_now: dict[str, tuple[str, Hashable]] = {}
        complete = True
        for key, base in streams:
            rows, full = await self._poll_stream(session, key, base, memo, ids, force_full=lost)
            complete &= full
            for row in rows:  # later rows are fresher (re-reads come after the listing)
                rid = self.lister.row_id(row)
                seen[rid] = (key, row)
                handle = self.lister.handle(row)
                if self.lister.is_open(row) and handle:
                    open_now[rid] = (handle, key)
                else:
                    open_now.pop(rid, None)
        memo.open = open_now
        return Polled(rows=seen, complete=complete, gone=[j for j in ids if j not in seen])

    async def fetch(
        self,
        session: Session,
        target_id: str,
        streams: Sequence[tuple[Hashable, Params]],
        active: Collection[str],
        normalize: Callable[[Hashable, R], Observation],
    ) -> FetchResult:
        """:meth:`poll` as a FetchResult; ``normalize`` gets each row with its stream key."""
        polled = await self.poll(session, target_id, streams, active)
        return FetchResult(
            observations=[normalize(key, row) for key, row in polled.rows.values()],
            complete=polled.complete,
            gone=polled.gone,
            requests=session.requests,
        )

    async def _poll_stream(
        self, session: Session, key: Hashable, base: Params, memo: _TargetMemo, active: list[str], *, force_full: bool
    ) -> tuple[list[R], bool]:
        """Rows of one stream this poll, and whether the stream was listed in full."""
        lister, sm = self.lister, memo.streams.setdefault(key, _StreamMemo())
        if (
            force_full
            or sm.total_all is None
            or sm.since_full + 1 >= self.sweep_every
            or self.clock() - sm.full_at >= self.sweep_seconds
            or pages(sm.total_all, lister.limit) <= sm.open_cost
        ):
            return await self._full(session, base, sm), True

        rows = await lister.open(session, base)
        sm.since_full += 1
        sm.open_cost = lister.open_cost(rows)
        listed = {lister.row_id(r) for r in rows}
        handles = list(
            dict.fromkeys(memo.open[j][0] for j in active if j not in listed and memo.open[j][1] == key)
        )
        if not handles:
            return rows, False
        if lister.reread_cost(handles) >= pages(sm.total_all, lister.limit):  # one full listing is cheaper
            return rows + await self._full(session, base, sm), True
        return rows + await lister.reread(session, base, handles), False

    async def _full(self, session: Session, base: Params, sm: _StreamMemo) -> list[R]:
        rows, total = await self.lister.full(session, base)
        sm.total_all = total if total is not None else len(rows)
        sm.open_cost = self.lister.open_cost(rows)
        sm.since_full, sm.full_at = 0, self.clock()
        return rows
