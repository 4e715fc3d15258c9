"""Changes polled while the broker is away, held with the poll state that would record them.

Where it sits: between the poller loop (:func:`watcher.poller.loop.poll_target`) and the
broker; it imports no Kafka client (``send`` is handed in), so tests drive it with plain futures.

The promise of the loop stays: *durable* poll state advances only after the broker acked the
events it records. The outbox is in front of that state, not behind it:

* A target's batch is sent and its ack awaited for ``ack_timeout`` seconds. Acked: done, as
  without an outbox. Not acked yet: ``probe`` asks whether the broker answers at all. A broker
  that answers is *slow*, not away: the poll keeps waiting for the ack (back-pressure, nothing
  held). Only when the probe finds no broker is the batch *held* (the client keeps retrying
  it), and the state writes the poll makes next go to an overlay attached to that batch, not
  to the store. So a burst on a busy broker never fills the buffer.
* While a target has held batches, its later batches are held unsent, in order, and its polls
  diff against the overlay: a job that moved on is one further change, not the same one again.
* :meth:`Outbox.flush` (called on a timer) settles each target's oldest batch: once acked, its
  overlay is written to the durable store and the next batch is sent. So a worker that dies
  during an outage lost nothing: its durable state never recorded the held changes, and the
  next poll (its own, or a successor's) sees them again.
* A batch the broker refuses for good drops its overlay and every later one of that target,
  for the same reason: the next poll sees those changes again.
* At most ``bound`` events are held. A batch past it is refused with an ERROR line and a
  :class:`~watcher.errors.BrokerError`: nothing is sent, no state moves, and a later poll
  sees the change again. Nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from watcher.errors import BrokerError
from watcher.events import JobEvent
from watcher.poller.diff import JobState
from watcher.poller.loop import PollStore, Publish

log = logging.getLogger("watcher.poller")

#: Sends a batch; resolves once the broker acknowledged every record of it.
Send = Callable[[Sequence[JobEvent]], Awaitable[None]]
#: Whether the broker answers at all (a connection attempt): slow is not away.
Probe = Callable[[], Awaitable[bool]]


async def _reachable() -> bool:
    return False

HOLDING_LOG_EVERY = 10.0  # seconds between "holding" lines while the broker stays away


@dataclass
class _Held:
    """One poll's batch that the broker has not acked yet, and the state writes that record it."""

    events: Sequence[JobEvent]
    durable: PollStore
    sending: asyncio.Future[None] | None = None  # None: not sent yet
    jobs: dict[str, JobState | None] = field(default_factory=dict)


class Outbox:
    """Held batches per target, at most ``bound`` events in all (see the module docstring)."""

    def __init__(self, send: Send, *, bound: int, ack_timeout: float = 2.0, probe: Probe = _reachable) -> None:
        self._send, self.bound, self.ack_timeout, self._probe = send, bound, ack_timeout, probe
        self._held: dict[str, deque[_Held]] = {}
        self._last_log = self._last_slow = -1e9
        self.slow = 0  # batches waiting on a slow (answering) broker right now

    @property
    def state(self) -> str:
        """``away`` (changes held), ``slow`` (acks late, broker answering) or ``ok``."""
        return "away" if self._held else "slow" if self.slow else "ok"

    # -- what it holds -------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Events held: polled, not yet acknowledged by the broker."""
        return sum(len(h.events) for q in self._held.values() for h in q)

    def holds(self, target_id: str) -> bool:
        return bool(self._held.get(target_id))

    # -- the two seams the poller loop uses ------------------------------------------------------

    def store(self, target_id: str, durable: PollStore) -> PollStore:
        """``durable`` as this target's polls see it: with the overlay of its held batches on top."""
        return _OverlayStore(self, target_id, durable)

    def publisher(self, target_id: str, durable: PollStore) -> Publish:
        async def publish(batch: Sequence[JobEvent]) -> None:
            await self._publish(target_id, durable, batch)

        return publish

    async def _publish(self, target_id: str, durable: PollStore, batch: Sequence[JobEvent]) -> None:
        self._admit(target_id, batch)
        queue = self._held.get(target_id)
        if queue:  # earlier changes of this target are still waiting: keep the order
            queue.append(_Held(batch, durable))
            self._log_holding()
            return
        sending = asyncio.ensure_future(self._send(batch))
        while True:
            done, _ = await asyncio.wait({sending}, timeout=self.ack_timeout)
            if done:
                sending.result()  # refused outright: raise, and the poll state stays put
                return
            if not await self._probe():
                break
            self._log_slow()  # answering, only late: wait on (back-pressure), hold nothing
            self.slow += 1
            try:
                await asyncio.wait({sending}, timeout=self.ack_timeout)
            finally:
                self.slow -= 1
        self._held.setdefault(target_id, deque()).append(_Held(batch, durable, sending))
        self._log_holding()

    def _log_slow(self) -> None:
        now = time.monotonic()
        if now - self._last_slow >= HOLDING_LOG_EVERY:
            self._last_slow = now
            log.info("broker slow: acks take over %.0fs; polls wait for them (nothing is held)", self.ack_timeout)

    def _admit(self, target_id: str, batch: Sequence[JobEvent]) -> None:
        held = self.size
        if not held or held + len(batch) <= self.bound:  # nothing held: the broker is there, as far as we know
            return
        log.error(
            "broker unreachable and the outage buffer is full (%d of %d events held): %d change(s) of %s "
            "not published; its poll state stays put, so a later poll sees them again",
            held,
            self.bound,
            len(batch),
            target_id,
        )
        raise BrokerError(f"outage buffer full ({held} of {self.bound} events held)")

    def _log_holding(self) -> None:
        now = time.monotonic()
        if now - self._last_log >= HOLDING_LOG_EVERY:
            self._last_log = now
            log.warning("broker unreachable: holding %d events for later publish (bound %d)", self.size, self.bound)

    # -- settling ----------------------------------------------------------------------------------

    async def flush(self) -> int:
        """Settle what the broker acked since the last call and send what is next; events published."""
        published = 0
        for target_id in list(self._held):
            published += await self._flush_target(target_id)
        return published

    async def _flush_target(self, target_id: str) -> int:
        queue = self._held[target_id]
        published = 0
        while queue:
            head = queue[0]
            if head.sending is None:
                head.sending = asyncio.ensure_future(self._send(head.events))
                await asyncio.wait({head.sending}, timeout=self.ack_timeout)
            if not head.sending.done():
                break  # still away: the client keeps it, the next flush looks again
            queue.popleft()
            if head.sending.cancelled() or head.sending.exception() is not None:
                dropped = len(head.events) + sum(len(h.events) for h in queue)
                queue.clear()
                log.warning(
                    "the broker refused %d held change(s) of %s; a later poll sees them again", dropped, target_id
                )
                break
            for job_id, js in head.jobs.items():  # acked: now the state may record it
                head.durable.put_job_state(target_id, job_id, js)
            published += len(head.events)
        if not queue:
            del self._held[target_id]
            if published:
                log.info("broker reachable again: published %d held change(s) of %s", published, target_id)
        return published


class _OverlayStore:
    """A PollStore: reads see the newest held write first; writes go to the newest held batch, if any."""

    def __init__(self, outbox: Outbox, target_id: str, durable: PollStore) -> None:
        self._outbox, self._target_id, self._durable = outbox, target_id, durable

    def _queue(self) -> deque[_Held]:
        return self._outbox._held.get(self._target_id) or deque()

    def job_state(self, target_id: str, job_id: str) -> JobState | None:
        for held in reversed(self._queue()):
            if job_id in held.jobs:
                return held.jobs[job_id]
        return self._durable.job_state(target_id, job_id)

    def open_jobs(self, target_id: str) -> list[str]:
        ids = set(self._durable.open_jobs(target_id))
        for held in self._queue():  # oldest first: later writes win
            for job_id, js in held.jobs.items():
                if js is not None and js.open:
                    ids.add(job_id)
                else:
                    ids.discard(job_id)
        return sorted(ids)

    def put_job_state(self, target_id: str, job_id: str, state: JobState | None) -> None:
        queue = self._queue()
        if queue:
            queue[-1].jobs[job_id] = state
        else:
            self._durable.put_job_state(target_id, job_id, state)
