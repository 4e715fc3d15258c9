"""The poll stage: each worker polls the targets of the partitions it owns, on its own schedule.

Where it sits: first stage of the flow (targets → **poll** → events). The Faust wiring
(``factory.py``) gives it the poll-jobs table, a publisher and the partitions this worker owns;
everything else is here, in one object with its state:

* **Ownership** is the consumer group's: target ``t`` belongs to partition
  ``partition_for(t)`` of ``<prefix>.poll-requests`` (and of the poll-jobs table, co-partitioned),
  and the worker that holds that partition polls it. :class:`Ownership` reads the assignment
  and says "not now" from the start of a rebalance until its tables are recovered, so a target is
  never polled against half-loaded state, and on revocation the polls in flight finish first, so a
  target is never polled by two workers at once.
* **Scheduling** is local (:class:`~watcher.poller.schedule.DueQueue`): no tick records, so idle
  targets cost only their polls. A target taken over starts at a random point of its first
  interval; a late target is polled before any later one.
* **State** is one row per job (``target|job`` → :class:`~watcher.poller.diff.JobState`), written
  only when a job changes, in the target's partition, after the broker acked the events that
  record it (:class:`StateWrites`). An in-memory index of each target's open jobs is rebuilt from
  the table when partitions arrive. Final jobs leave the table ``[poll] retention`` after they
  ended (:meth:`PollStage.evict`); :func:`~watcher.poller.diff.diff` ignores history older than
  that, so an evicted job never comes back as news.
* **Track requests** (``watcher track``, the track topic) arrive on the target's partition as a
  :class:`PollRequest`: the ids are written as tracked (durably) and the target polled now.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import zlib
from collections.abc import Awaitable, Callable, Collection, Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec

from watcher.app.tables import write_row
from watcher.poller.diff import JobState
from watcher.poller.loop import Intervals, PollOutcome, PollStore, Publish, poll_target
from watcher.poller.outbox import Outbox
from watcher.poller.schedule import DueQueue, TargetState, first_due
from watcher.sources.base import Target

log = logging.getLogger("watcher.app")


def partition_for(target_id: str, partitions: int) -> int:
    """Stable across processes and restarts (unlike hash())."""
    return zlib.crc32(target_id.encode()) % partitions


class PollRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Asks the owner of a target's partition to poll it now (and to track new job ids)."""

    target_id: str
    track: tuple[str, ...] = ()
    force: bool = False


_enc = msgspec.json.Encoder()
_job_dec = msgspec.json.Decoder(JobState)
request_decoder = msgspec.json.Decoder(PollRequest)


class StateWrites:
    """Each target's poll-state changelog sends still in flight; its next publish awaits them.

    Why: the state that recorded a target's previous changes must be durable before newer
    changes go out. Else a successor reading older state would publish RUNNING→FAILED again
    as WAITING→FAILED, and the stuck timers and incidents would see a change that did not happen."""

    def __init__(self) -> None:
        self._pending: dict[str, list[Any]] = {}

    def add(self, target_id: str, sent: Any) -> None:
        pending = [f for f in self._pending.get(target_id, ()) if not f.done()]  # a quiet target's list stays short
        self._pending[target_id] = [*pending, sent]

    async def settle(self, target_id: str) -> None:
        await asyncio.gather(*self._pending.pop(target_id, []))


class TableJobStore:
    """A :class:`~watcher.poller.loop.PollStore` over the poll-jobs table (``target|job`` rows),
    each row in its target's partition, with an in-memory index of each target's open jobs."""

    def __init__(self, table: Any, partitions: int, writes: StateWrites | None = None) -> None:
        self.table, self.partitions = table, partitions
        self.writes = writes if writes is not None else StateWrites()
        self._open: dict[str, set[str]] = {}

    def reindex(self) -> int:
        """Rebuild the open-jobs index from the table (after partitions arrived); rows read."""
        index: dict[str, set[str]] = {}
        rows = 0
        for key, raw in list(self.table.data.items()):
            rows += 1
            if raw and _job_dec.decode(raw).open:
                target_id, _, job_id = key.rpartition("|")
                index.setdefault(target_id, set()).add(job_id)
        self._open = index
        return rows

    def job_state(self, target_id: str, job_id: str) -> JobState | None:
        raw = self.table.data.get(f"{target_id}|{job_id}")
        return _job_dec.decode(raw) if raw else None

    def open_jobs(self, target_id: str) -> list[str]:
        return sorted(self._open.get(target_id, ()))

    def put_job_state(self, target_id: str, job_id: str, state: JobState | None) -> None:
        key = f"{target_id}|{job_id}"
        value = _enc.encode(state).decode() if state is not None else None
        opened = self._open.setdefault(target_id, set())
        if state is not None and state.open:
            opened.add(job_id)
        else:
            opened.discard(job_id)
        self.writes.add(target_id, write_row(self.table, key, value, partition_for(target_id, self.partitions)))

    def evict(self, before: float, mine: Collection[str], keep: Callable[[str, str], bool]) -> int:
        """Forget the final jobs of targets in ``mine`` that ended before ``before``; rows dropped."""
        dropped = 0
        for key, raw in list(self.table.data.items()):
            target_id, _, job_id = key.rpartition("|")
            if not raw or target_id not in mine:
                continue
            js = _job_dec.decode(raw)
            if not js.open and js.since < before and not keep(target_id, job_id):
                self.put_job_state(target_id, job_id, None)
                dropped += 1
        return dropped


class Ownership:
    """Which partitions of ``topic`` this worker may act on now: none from the start of a rebalance
    until its tables are recovered. Connect :meth:`revoked` and :meth:`completed` to the app's
    ``on_partitions_revoked`` and ``on_rebalance_complete`` signals."""

    def __init__(self, app: Any, topic: str) -> None:
        self.app, self.topic = app, topic
        self.ready = False
        self.on_revoke: list[Callable[[set[int]], Awaitable[None]]] = []

    async def revoked(self, _sender: Any = None, revoked: Iterable[Any] = (), **_: Any) -> None:
        self.ready = False
        parts = {tp.partition for tp in revoked if tp.topic == self.topic}
        for handler in self.on_revoke:
            await handler(parts)

    async def completed(self, _sender: Any = None, **_: Any) -> None:
        self.ready = True

    def partitions(self) -> set[int] | None:
        if not self.ready or getattr(self.app, "in_recovery", False):
            return None
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == self.topic}


class PollStage:
    """Polls the targets this worker owns when they are due (see the module docstring)."""

    def __init__(
        self, *, targets: dict[str, Target], comps: Any, store: TableJobStore, outbox: Outbox,
        publish: Callable[[str, PollStore], Publish] | None = None, intervals: Intervals, retention: float,
        partitions: int, owned: Callable[[], set[int] | None], concurrency: int = 32, rng: random.Random | None = None,
    ) -> None:  # fmt: skip
        self.targets, self.comps, self.store, self.outbox = targets, comps, store, outbox
        self._mine_for: tuple[frozenset[int], int] | None = None
        self._my_targets: set[str] = set()
        self.intervals, self.retention, self.partitions = intervals, retention, partitions
        self.owned, self.concurrency = owned, concurrency
        self.rng = rng or random.Random()
        self.memos: dict[str, TargetState] = {}
        self.queue = DueQueue()
        self.mine: set[str] = set()
        self.inflight: dict[str, asyncio.Task[None]] = {}
        self.pending: dict[str, set[str]] = {}  # target -> job ids to start tracking
        self.forced: set[str] = set()
        self.wake = asyncio.Event()
        self.outcomes: list[Callable[[Target, TargetState, PollOutcome], None]] = []
        self.generation = 0  # counts the changes of which targets this worker polls

    # -- ownership ---------------------------------------------------------------------------

    def refresh(self, now: float) -> bool:
        """Follow the assignment: schedule the targets that arrived, drop those that left."""
        parts = self.owned()
        if parts is None:
            return False
        key = (frozenset(parts), len(self.targets))
        if key != self._mine_for:  # the assignment (or the targets) changed: which are mine now
            self._mine_for = key  # (crc32 of 5,000 ids at every wake-up was most of an idle worker's CPU)
            self._my_targets = {t for t in self.targets if partition_for(t, self.partitions) in parts}
        mine = self._my_targets
        if mine != self.mine:
            for tid in self.mine - mine:
                self.queue.discard(tid)
            arrived = mine - self.mine
            if arrived:
                rows = self.store.reindex()
                log.info("polling %d target(s) of partitions %s (%d job states)", len(arrived), sorted(parts), rows)
            for tid in arrived:
                self.memos[tid] = TargetState()
                self.queue.put(tid, now if tid in self.forced else first_due(now, self.intervals.fast, self.rng))
            self.mine = set(mine)
            self.generation += 1
        return True

    async def drain(self, partitions: set[int], grace: float = 5.0) -> None:
        """Partitions are leaving: let their polls in flight finish (or stop them after ``grace``)."""
        tasks = [t for tid, t in self.inflight.items() if partition_for(tid, self.partitions) in partitions]
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
        for tid in [t for t in self.mine if partition_for(t, self.partitions) in partitions]:
            self.queue.discard(tid)
            self.mine.discard(tid)
        self._mine_for = None  # whatever comes back is worked out again
        self.generation += 1

    # -- requests ----------------------------------------------------------------------------

    def request(self, req: PollRequest) -> None:
        """A track or force request for a target of this worker's partition: poll it now."""
        if req.target_id not in self.targets:
            return
        self.pending.setdefault(req.target_id, set()).update(req.track)
        self.forced.add(req.target_id)
        if req.target_id in self.mine and req.target_id not in self.inflight:
            self.queue.put(req.target_id, 0.0)
        self.wake.set()

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            now = time.time()
            if self.refresh(now):
                free = self.concurrency - len(self.inflight)
                for tid in self.queue.pop_due(now, max(0, free)) if free > 0 else ():
                    self.inflight[tid] = asyncio.ensure_future(self._poll(tid))
            nxt = self.queue.next_at()
            timeout = 0.5 if nxt is None else min(0.5, max(0.02, nxt - time.time()))
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), timeout)
            except TimeoutError:
                pass

    async def _poll(self, target_id: str) -> None:
        target = self.targets[target_id]
        memo = self.memos.setdefault(target_id, TargetState())
        track = tuple(sorted(self.pending.pop(target_id, ())))
        self.forced.discard(target_id)
        try:
            outcome = await poll_target(
                target, self.comps.source(target.source), self.comps.client, self.outbox.store(target_id, self.store),
                self.outbox.publisher(target_id, self.store), intervals=self.intervals, state=memo, track=track,
                force=True, retention=self.retention,
            )  # fmt: skip
            if outcome.polled:
                self.comps.stats.polls += 1
                self.comps.stats.events += outcome.events
            for hook in self.outcomes:
                hook(target, memo, outcome)
        except asyncio.CancelledError:
            raise
        except Exception:  # never let one target kill the stage
            log.exception("poll of %s crashed", target_id)
            memo.next_due = time.time() + self.intervals.fast
        finally:
            self.inflight.pop(target_id, None)
            if target_id in self.mine:
                due = 0.0 if (target_id in self.forced or self.pending.get(target_id)) else memo.next_due
                self.queue.put(target_id, due)
                self.wake.set()

    # -- retention ---------------------------------------------------------------------------

    def evict(self, now: float | None = None) -> int:
        """Drop the job states of this worker's targets that ended more than ``retention`` ago."""
        now = time.time() if now is None else now
        configured = {(t.id, j) for t in self.targets.values() for j in t.job_ids}

        def keep(target_id: str, job_id: str) -> bool:  # configured ids are asked for forever otherwise
            return (target_id, job_id) in configured

        dropped = self.store.evict(now - self.retention, self.mine, keep)
        if dropped:
            log.info("forgot %d job(s) that ended over %.0fs ago", dropped, self.retention)
        return dropped

    def status_of(self, target_id: str) -> TargetState | None:
        return self.memos.get(target_id) if target_id in self.mine else None


def utc(ts: float) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts else None
