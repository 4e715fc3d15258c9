"""What each worker says about its targets and itself, on ``<prefix>.status`` (compacted).

Where it sits: beside the poll stage, feeding the status page (``watcher.ui``) and anyone who
reads the topic: one :class:`~watcher.events.TargetStatus` per target this worker polls (keyed by
target id) and one :class:`~watcher.events.WorkerStatus` (keyed ``worker:<host:pid>``). A record
goes out when something in it changed, and at least every ``refresh`` seconds, so the latest
record of a key is always recent and the topic stays small under compaction.
"""

from __future__ import annotations

import os
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from watcher import events as ev
from watcher.poller.loop import PollOutcome
from watcher.poller.schedule import TargetState
from watcher.sources.base import Target

WINDOW = 600.0  # "in the last 10 minutes"
WORKER = f"{socket.gethostname()}:{os.getpid()}"


_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _material(record: ev.TargetStatus | ev.WorkerStatus) -> Any:
    if isinstance(record, ev.TargetStatus):
        return msgspec.structs.replace(record, updated_at=_EPOCH, polls=0, last_ok=None, last_attempt=None,
                                       requests_10m=0, throttled_10m=min(record.throttled_10m, 1))  # fmt: skip
    return msgspec.structs.replace(record, updated_at=_EPOCH)


def _utc(ts: float) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts else None


class StatusBoard:
    """Per-target request counts over the last 10 minutes, and the records to publish."""

    def __init__(self, publish: Callable[[str, ev.AnyRecord], Awaitable[None]], refresh: float = 60.0) -> None:
        self.publish, self.refresh = publish, refresh
        self.windows: dict[str, deque[tuple[float, int, int]]] = {}
        self._last: dict[str, tuple[Any, float]] = {}
        self.started = datetime.now(UTC)

    def own(self, generation: int) -> None:
        """Which assignment the poll stage is at: after a rebalance every target is announced at once,
        so the topic says who polls what right away."""
        if generation != getattr(self, "_generation", None):
            self._generation = generation
            for key in [k for k in self._last if not k.startswith("worker:")]:
                del self._last[key]

    def observe(self, target: Target, state: TargetState, outcome: PollOutcome) -> None:
        """A poll hook (``PollStage.outcomes``): count its requests and 429s."""
        if not outcome.polled:
            return
        now = time.time()
        window = self.windows.setdefault(target.id, deque())
        window.append((now, outcome.requests or (1 if outcome.error else 0), 1 if outcome.throttled else 0))
        while window and window[0][0] < now - WINDOW:
            window.popleft()

    def target_status(self, target: Target, state: TargetState, blind_since: float | None) -> ev.TargetStatus:
        now = time.time()
        window = [w for w in self.windows.get(target.id, ()) if w[0] >= now - WINDOW]
        return ev.TargetStatus(
            target=target.id, source=target.source, region=target.region, project_id=target.project_id,
            worker=WORKER, polls=state.polls, failures=state.failures, last_ok=_utc(state.last_ok),
            last_attempt=_utc(state.last_attempt), last_error=state.last_error, open_jobs=state.open_jobs,
            requests_10m=sum(w[1] for w in window), throttled_10m=sum(w[2] for w in window),
            blind_since=_utc(blind_since or 0.0), updated_at=datetime.now(UTC),
        )  # fmt: skip

    async def offer(self, key: str, record: ev.TargetStatus | ev.WorkerStatus) -> bool:
        """Publish ``record`` if it says something new (or the last one is getting old). What only
        moves with time (poll counts and times, request counts) is not news: an idle deployment of
        thousands of targets publishes each once a ``refresh``, not once a poll."""
        same = _material(record)
        last = self._last.get(key)
        now = time.monotonic()
        if last is not None and last[0] == same and now - last[1] < self.refresh:
            return False
        await self.publish(key, record)
        self._last[key] = (same, now)
        return True
