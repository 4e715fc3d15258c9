"""Fetching by job id (``appjob``, ``evs``): one GET per tracked id, a few at a time, oldest first.

The poller passes ``active``: the top-level ids it still tracks, already including the
configured ``Target.job_ids`` not yet known final. Each is asked for at most once a poll.

**Bounded, fair, incremental.** A poll of one target runs at most ``concurrency`` requests
at once (default :data:`CONCURRENCY`), so a target with hundreds of ids holds a few of the
client's slots (``[cloud] max_concurrency``, shared by every target of the worker) and the
other targets' requests get through between its own. Ids are asked for *least recently
fetched first*, from a memo this object keeps per target (one source object per worker;
losing it only reorders one poll). A poll stops starting new requests after ``budget``
seconds (default :data:`BUDGET`, under the default 5 s poll interval): what it fetched is
published then, instead of after the last of hundreds of ids, and the ids it did not reach
are the first of the next poll (``FetchResult.complete`` is False then; an id not asked for
keeps its last known state: a by-id job is never missing, only "not found").
There is no separate per-project bound: a by-id target is one API in one project (its id is
``source/region/project``), so the per-target bound is the per-project one for that API, and
a project's two by-id APIs (App job, EVS) are different services with their own quotas.

**How late**: with ``L`` seconds a request, one poll of a target reads up to
``concurrency × budget ÷ L`` ids (4 × 4 s ÷ 100 ms = 160), so ``n`` ids are each seen every
``⌈n ÷ 160⌉`` polls: 500 tracked ids in one project every 4th poll, 20 s at the default 5 s
interval; a change is published within ``budget`` of being read. Without the budget a poll of
500 ids would take 12.5 s and publish everything at its end. Past one target, the client's
``max_concurrency`` (8 for the whole worker) and the API's rate limit bound it: ``N`` ids over
all by-id targets are each seen about every ``N × L ÷ 8`` seconds (4,000 ids: ~50 s). These
APIs cannot be asked for many jobs at once. (The budget is fixed because a source does not
know the poll interval: a target polled every 5 s idles 1 s of each; the poller could pass it.)

Failures: an id the API says does not exist lands in ``gone`` instead of failing the poll.
Any other failure stops the poll from starting more requests, waits for those in flight,
and fails the poll with the first error (auth, throttling and transport problems hit every
id alike: asking for the rest would only deepen a 429). The memo moves only when a poll
succeeds, so a failed poll's ids stay first in line.

Home-made rather than a library: a few lines over ``asyncio.gather`` with a shared iterator.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass

from watcher.errors import JobNotFound
from watcher.sources.base import Observation

#: Requests in flight at once for one target.
CONCURRENCY = 4
#: Seconds after which a poll starts no new request (the ones in flight finish).
BUDGET = 4.0

Clock = Callable[[], float]
FetchOne = Callable[[str], Awaitable[list[Observation]]]


@dataclass
class Fetched:
    """One poll's answers: observations in the order of ``active``, ids not found, and whether every id was asked."""

    observations: list[Observation]
    gone: list[str]
    complete: bool


class ByIdFetcher:
    """Asks for ids a few at a time, least recently fetched first, within a time budget."""

    def __init__(
        self, *, concurrency: int = CONCURRENCY, budget: float | None = BUDGET, clock: Clock = time.monotonic
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.concurrency, self.budget, self.clock = concurrency, budget, clock
        self._polls = 0
        self._last: dict[str, dict[str, int]] = {}  # target id -> job id -> number of the poll that last fetched it

    def order(self, target_id: str, ids: Collection[str]) -> list[str]:
        """``ids`` (deduplicated) least recently fetched first; never fetched ones lead, in their given order."""
        last = self._last.get(target_id, {})
        return sorted(dict.fromkeys(ids), key=lambda j: last.get(j, -1))

    async def fetch(self, target_id: str, ids: Collection[str], one: FetchOne) -> Fetched:
        unique = list(dict.fromkeys(ids))
        queue: Iterator[str] = iter(self.order(target_id, unique))
        answers: dict[str, list[Observation] | None] = {}  # None: not found
        failures: list[BaseException] = []
        start = self.clock()

        async def worker() -> None:
            for job_id in queue:  # shared: each id is taken by exactly one worker
                if failures or (self.budget is not None and self.clock() - start >= self.budget):
                    return
                try:
                    answers[job_id] = await one(job_id)
                except JobNotFound:
                    answers[job_id] = None
                except Exception as e:  # noqa: BLE001 - re-raised below, once the others have finished
                    failures.append(e)
                    return

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(unique)))))
        if failures:
            raise failures[0]
        self._polls += 1
        last = self._last.get(target_id, {})
        self._last[target_id] = {
            j: self._polls if j in answers else last.get(j, -1) for j in unique if answers.get(j, ()) is not None
        }
        observations = [o for j in unique for o in answers.get(j) or ()]
        gone = [j for j in unique if j in answers and answers[j] is None]
        return Fetched(observations=observations, gone=gone, complete=len(answers) == len(unique))
