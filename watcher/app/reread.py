"""The re-read net: records a stage's agent should have handled, found again and handled once.

Across a crash a record can be left without an effect below a committed offset: its worker
died mid-way (a delivery still retrying off the queue, whose offset was already committed), or
Faust skipped it (a partition never committed is not rewound after an assignment: README,
Performance). Each stage knows the durable trace a handled record leaves (a settled mark, the
alert key in its incident); this net re-reads the partitions the worker owns, only below what
the consumer group committed or what the agent was already handed — above that, records are
the agent's, still to come — and hands every record that left no trace to the stage, which
handles it and says so. So it warns only about records that truly had no fate, and counts them.

One exception to "above that, the agent's": a partition whose stream stopped. Faust can leave
a partition its predecessor never committed unread for good after a rebalance (aiokafka's
``seek_to_committed`` does not rewind it: README, Performance). So when the agent was handed
nothing new on a partition since the last round and a record above the limit has waited
``STALL_AFTER`` seconds, the net takes it too (handled once: the stage's trace says so), and
logs once per partition that the stream stopped there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from watcher import events as ev
from watcher.errors import BrokerError

log = logging.getLogger("watcher.app")

Reread = Callable[[dict[int, int]], Awaitable[list[tuple[int, int, bytes | None]]]]
Committed = Callable[[set[int]], Awaitable[dict[int, int]]]

#: How long a record above the limit waits, on a partition the agent does not move on, before
#: the net takes it (two rounds at least: a stream that is only slow moves on meanwhile).
STALL_AFTER = 20.0


class RereadNet:
    """One topic's net for one stage (see the module docstring)."""

    def __init__(self, *, what: str, owned: Callable[[], set[int] | None], reread: Reread, committed: Committed,
                 handled: Callable[[Any], bool], recover: Callable[[Any, int], Awaitable[None]],
                 stopped_only: bool = False) -> None:  # fmt: skip
        """``stopped_only``: a stage whose records leave no trace to check (events): every record
        below the limit was handled (a batch is acked only after it), so the net looks only at
        the partitions whose stream stopped, and takes their waiting records without asking."""
        self.what, self.owned, self._reread, self._committed = what, owned, reread, committed
        self.handled, self.recover, self.stopped_only = handled, recover, stopped_only
        self.seen: dict[int, int] = {}  # partition -> one past the last offset the agent was handed
        self.reconciled: dict[int, int] = {}  # partition -> where the net looks next
        self.recovered = 0
        self._last_round: dict[int, int | None] = {}  # partition -> what the agent had been handed then
        self._waiting: dict[tuple[int, int], float] = {}  # (partition, offset) above the limit -> first noticed
        self._stopped: set[int] = set()  # partitions whose stopped stream was reported

    def saw(self, partition: int, offset: int) -> None:
        """The agent was handed this record (call for every record of its batches)."""
        if offset + 1 > self.seen.get(partition, 0):
            self.seen[partition] = offset + 1

    def rewind(self, partition: int) -> None:
        """A record of ``partition`` was left unhandled here: look at the partition again."""
        self.reconciled.pop(partition, None)

    async def round(self) -> int:
        """Look once; how many records it handed to ``recover``."""
        parts = self.owned()
        if parts is None:
            return 0
        for p in set(self.reconciled) - parts:  # moved to another worker: it looks from the start
            del self.reconciled[p]
        for p in set(self.seen) - parts:
            del self.seen[p]
        now = time.monotonic()
        # The agent was handed nothing new here since the last round: its stream may have stopped.
        still = {p for p in parts if p in self._last_round and self._last_round[p] == self.seen.get(p)}
        self._last_round = {p: self.seen.get(p) for p in parts}
        self._stopped &= still
        try:
            committed = await self._committed(parts)
            limits = {p: max(committed.get(p, 0), self.seen.get(p, 0)) for p in parts}
            if self.stopped_only:
                starts = {p: max(self.reconciled.get(p, 0), limits[p]) for p in still}
            else:
                starts = {p: self.reconciled.get(p, 0) for p in parts
                          if limits[p] > self.reconciled.get(p, 0) or p in still}  # fmt: skip
            records = await self._reread(starts) if starts else []
        except (BrokerError, OSError, TimeoutError) as e:  # the broker away: the next round looks again
            log.info("re-reading the %s for ones without a fate failed, trying again later: %s", self.what, e)
            return 0
        self._waiting = {k: t for k, t in self._waiting.items() if k[0] in still and k[1] >= limits[k[0]]}
        found = 0
        for partition, offset, value in records:
            if offset >= limits.get(partition, 0):  # the agent's, still to come, unless its stream stopped
                if partition not in still or now - self._waiting.setdefault((partition, offset), now) < STALL_AFTER:
                    continue
                if partition not in self._stopped:
                    self._stopped.add(partition)
                    log.warning("the stream has not read %s partition %d for %.0fs past offset %d: the re-read "
                                "net takes its records", self.what, partition, STALL_AFTER, limits[partition])  # fmt: skip
                self._waiting.pop((partition, offset), None)
            elif self.stopped_only:
                continue
            self.reconciled[partition] = max(self.reconciled.get(partition, 0), offset + 1)
            try:
                record = ev.decode(value or b"")
            except Exception:
                continue
            if not self.stopped_only and self.handled(record):
                continue
            self.recovered += 1
            found += 1
            await self.recover(record, partition)
        return found
