"""One poll of one target: fetch, diff against stored state, publish, then advance state.

The durable state is one :class:`~watcher.poller.diff.JobState` per job (written only when
it changes); what a target's schedule needs (next due time, failures) is in memory
(:class:`~watcher.poller.schedule.TargetState`): a successor simply polls soon.

The order is the promise: events are published and acknowledged by the broker *before*
the state that records them is written. A crash in between republishes the same
transition (same ``event_id``, same alert key, so downstream dedup absorbs it); the
opposite order could lose a transition, which is worse.

Storage is behind :class:`PollStore` so the Faust app (``app/``) can back it with
tables, and tests can back it with a dict.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Protocol

import msgspec

from watcher.errors import BrokerError, CloudError, ThrottledError, WatcherError
from watcher.events import JobEvent
from watcher.poller.diff import JobState, diff, target_is_by_id, tracked
from watcher.poller.schedule import TargetState, next_due
from watcher.sources.base import Source, Target

log = logging.getLogger("watcher.poller")

Publish = Callable[[Sequence[JobEvent]], Awaitable[None]]


class PollStore(Protocol):
    """The durable per-job poll state of targets (the poll stage backs it with a Kafka table)."""

    def job_state(self, target_id: str, job_id: str) -> JobState | None: ...
    def open_jobs(self, target_id: str) -> Collection[str]: ...  # ids whose state is open (JobState.open)
    def put_job_state(self, target_id: str, job_id: str, state: JobState | None) -> None: ...  # None: forget


class MemoryStore:
    """A dict-backed PollStore for tests and tools (not for `watcher run`)."""

    def __init__(self) -> None:
        self.jobs: dict[tuple[str, str], JobState] = {}

    def job_state(self, target_id: str, job_id: str) -> JobState | None:
        return self.jobs.get((target_id, job_id))

    def open_jobs(self, target_id: str) -> list[str]:
        return sorted(j for (t, j), s in self.jobs.items() if t == target_id and s.open)

    def put_job_state(self, target_id: str, job_id: str, state: JobState | None) -> None:
        if state is None:
            self.jobs.pop((target_id, job_id), None)
        else:
            self.jobs[(target_id, job_id)] = state


class PollOutcome(msgspec.Struct, kw_only=True):
    polled: bool
    events: int = 0
    requests: int = 0
    error: str | None = None
    throttled: bool = False


class Intervals(msgspec.Struct, frozen=True, kw_only=True):
    fast: float = 5.0
    idle: float = 60.0


class _RateLimitedLog:
    """At most one WARNING per key per window, so a 429 storm is one line, not thousands."""

    def __init__(self, window: float = 30.0) -> None:
        self.window, self.last = window, dict[str, float]()

    def warning(self, key: str, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self.last.get(key, -1e9) >= self.window:
            self.last[key] = now
            log.warning(msg, *args)
        else:
            log.debug(msg, *args)


_warn = _RateLimitedLog()


def _asked_for(target: Target, store: PollStore, open_ids: Collection[str]) -> list[str]:
    """Job ids to ask a by-id source for: its open top-level jobs, plus configured ids not yet ended."""
    ids = [j for j in open_ids if not _is_sub(store, target.id, j)]
    for job_id in target.job_ids:
        js = store.job_state(target.id, job_id)
        if js is None or js.open:
            ids.append(job_id)
    return list(dict.fromkeys(ids))


def _is_sub(store: PollStore, target_id: str, job_id: str) -> bool:
    js = store.job_state(target_id, job_id)
    return js is not None and js.sub


async def poll_target(
    target: Target,
    source: Source,
    client: object,
    store: PollStore,
    publish: Publish,
    *,
    intervals: Intervals,
    state: TargetState | None = None,
    now: datetime | None = None,
    track: Sequence[str] = (),
    force: bool = False,
    retention: float | None = None,
) -> PollOutcome:
    """Poll ``target`` if it is due (or ``force``); publish its changes; advance its state.

    ``state`` is the target's in-memory schedule (updated in place); ``track`` adds by-id job
    ids to follow (durably, before anything else); ``retention`` (seconds): a final job first
    seen ended longer ago than this is history and publishes nothing (:func:`diff`).
    """
    now = now or datetime.now(UTC)
    ts = now.timestamp()
    st = state if state is not None else TargetState()
    for job_id in track:
        if store.job_state(target.id, job_id) is None:
            store.put_job_state(target.id, job_id, tracked(ts))
        force = True
    if not force and ts < st.next_due:
        return PollOutcome(polled=False)
    by_id = target_is_by_id(target)
    open_ids = list(store.open_jobs(target.id))
    active = _asked_for(target, store, open_ids) if by_id else open_ids
    if by_id and not active:
        st.next_due = next_due(ts, has_active=False, fast=intervals.fast, idle=intervals.idle)
        st.open_jobs = 0
        return PollOutcome(polled=False)
    st.last_attempt = ts
    try:
        result = await source.fetch(client, target, active)
    except (CloudError, WatcherError) as e:
        st.failures += 1
        st.last_error = str(e)
        retry_after = getattr(e, "retry_after", None) if isinstance(e, ThrottledError) else None
        st.next_due = next_due(
            ts, has_active=bool(open_ids), fast=intervals.fast, idle=intervals.idle,
            failures=st.failures, retry_after=retry_after,
        )
        _warn.warning(f"{target.id}:{type(e).__name__}", "poll of %s failed (%d in a row): %s", target.id, st.failures, e)
        return PollOutcome(polled=True, error=str(e), throttled=isinstance(e, ThrottledError))

    ids = {o.job_id for o in result.observations} | set(active) | set(open_ids) | set(result.gone)
    known = {j: s for j in ids if (s := store.job_state(target.id, j)) is not None}
    horizon = ts - retention if retention else None
    d = diff(target, known, result, now, horizon=horizon)
    if d.events:
        try:
            await publish(d.events)  # acknowledged (or held, see poller.outbox) before any state moves
        except BrokerError as e:  # not published: no state moves, so the next poll sees these again
            return PollOutcome(polled=True, error=str(e), requests=result.requests)
    for job_id, js in d.states.items():
        store.put_job_state(target.id, job_id, js)
    still_open = list(store.open_jobs(target.id))
    st.open_jobs = len(still_open)
    st.failures, st.last_error, st.last_ok = 0, None, ts
    st.polls += 1
    st.next_due = next_due(ts, has_active=bool(still_open), fast=intervals.fast, idle=intervals.idle)
    return PollOutcome(polled=True, events=len(d.events), requests=result.requests)
