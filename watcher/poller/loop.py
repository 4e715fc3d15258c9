"""One poll of one target: fetch, diff against stored state, publish, then advance state.

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
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

import msgspec

from watcher.errors import BrokerError, CloudError, ThrottledError, WatcherError
from watcher.events import TERMINAL_PHASES, JobEvent
from watcher.poller.diff import VANISHED, JobState, diff, target_is_by_id
from watcher.poller.schedule import TargetState, next_due
from watcher.sources.base import Source, Target

log = logging.getLogger("watcher.poller")

Publish = Callable[[Sequence[JobEvent]], Awaitable[None]]


class PollStore(Protocol):
    def target_state(self, target_id: str) -> TargetState | None: ...
    def job_state(self, target_id: str, job_id: str) -> JobState | None: ...
    def put_target_state(self, target_id: str, state: TargetState) -> None: ...
    def put_job_state(self, target_id: str, job_id: str, state: JobState) -> None: ...


class MemoryStore:
    """A dict-backed PollStore for tests and tools (not for `watcher run`)."""

    def __init__(self) -> None:
        self.targets: dict[str, TargetState] = {}
        self.jobs: dict[tuple[str, str], JobState] = {}

    def target_state(self, target_id: str) -> TargetState | None:
        return self.targets.get(target_id)

    def job_state(self, target_id: str, job_id: str) -> JobState | None:
        return self.jobs.get((target_id, job_id))

    def put_target_state(self, target_id: str, state: TargetState) -> None:
        self.targets[target_id] = state

    def put_job_state(self, target_id: str, job_id: str, state: JobState) -> None:
        self.jobs[(target_id, job_id)] = state


class PollOutcome(msgspec.Struct, kw_only=True):
    polled: bool
    events: int = 0
    requests: int = 0
    error: str | None = None


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


def _tracked(target: Target, st: TargetState, store: PollStore, extra: Sequence[str]) -> list[str]:
    """Job ids to ask a by-id source for: active ones plus configured/requested ones not yet ended."""
    ids = dict.fromkeys([*st.active, *target.job_ids, *extra])
    out = []
    for job_id in ids:
        js = store.job_state(target.id, job_id)
        if js is None or (js.phase not in TERMINAL_PHASES and js.status != VANISHED):
            out.append(job_id)
    return out


async def poll_target(
    target: Target,
    source: Source,
    client: object,
    store: PollStore,
    publish: Publish,
    *,
    intervals: Intervals,
    now: datetime | None = None,
    track: Sequence[str] = (),
    force: bool = False,
) -> PollOutcome:
    """Poll ``target`` if it is due (or ``force``); publish its changes; advance its state."""
    now = now or datetime.now(UTC)
    ts = now.timestamp()
    st = store.target_state(target.id) or TargetState()
    if track:
        st.active = list(dict.fromkeys([*st.active, *track]))
        force = True
    if not force and ts < st.next_due:
        return PollOutcome(polled=False)
    by_id = target_is_by_id(target)
    active = _tracked(target, st, store, ()) if by_id else list(st.active)
    if by_id and not active:
        st.next_due = next_due(ts, has_active=False, fast=intervals.fast, idle=intervals.idle)
        st.active = []
        store.put_target_state(target.id, st)
        return PollOutcome(polled=False)
    try:
        result = await source.fetch(client, target, active)
    except (CloudError, WatcherError) as e:
        st.failures += 1
        st.last_error = str(e)
        retry_after = getattr(e, "retry_after", None) if isinstance(e, ThrottledError) else None
        st.next_due = next_due(
            ts, has_active=bool(st.active), fast=intervals.fast, idle=intervals.idle,
            failures=st.failures, retry_after=retry_after,
        )
        _warn.warning(f"{target.id}:{type(e).__name__}", "poll of %s failed (%d in a row): %s", target.id, st.failures, e)
        store.put_target_state(target.id, st)
        return PollOutcome(polled=True, error=str(e))

    ids = {o.job_id for o in result.observations} | set(active) | set(result.gone)
    known = {j: s for j in ids if (s := store.job_state(target.id, j)) is not None}
    d = diff(target, known, result, now)
    if d.events:
        try:
            await publish(d.events)  # acknowledged (or held, see poller.outbox) before any state moves
        except BrokerError as e:  # not published: no state moves, so the next poll sees these again
            return PollOutcome(polled=True, error=str(e), requests=result.requests)
    merged = dict(known)
    for job_id, js in d.states.items():
        if js is not None:
            store.put_job_state(target.id, job_id, js)
            merged[job_id] = js
    if by_id:
        top = {o.job_id for o in result.observations if o.parent_job_id is None} | set(active)
        still = [j for j in top if j in merged and merged[j].phase not in TERMINAL_PHASES and merged[j].status != VANISHED]
        still += [j for j in active if j not in merged and j not in result.gone]  # not seen yet: keep asking
        st.active = sorted(set(still))
    else:
        st.active = sorted(
            j for j, s in merged.items() if s.phase not in TERMINAL_PHASES and s.status != VANISHED
        )
    st.failures, st.last_error, st.last_ok = 0, None, ts
    st.polls += 1
    st.next_due = next_due(ts, has_active=bool(st.active), fast=intervals.fast, idle=intervals.idle)
    store.put_target_state(target.id, st)
    return PollOutcome(polled=True, events=len(d.events), requests=result.requests)
