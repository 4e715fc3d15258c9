"""Scheduling: when is a target next due, and which due target goes first. Pure.

Adaptive: a target with open jobs is polled every ``fast`` seconds, an idle one every
``idle`` seconds; after failures the interval doubles from ``fast`` up to ``idle`` (a
throttled or broken target backs off; other targets are not affected).

Each worker schedules only the targets of the partitions it owns, from a local
:class:`DueQueue`: no record travels through the broker to say "poll now", so an idle
deployment costs nothing but its polls. Targets a worker takes over start at a random
point of their first interval (jitter), so a rebalance or a restart does not fire every
poll at once. A target whose time has passed is polled before any later one (overrun:
late targets go first, and none is skipped).
"""

from __future__ import annotations

import heapq
import random

import msgspec


class TargetState(msgspec.Struct, kw_only=True):
    """What the poll stage remembers of one target, in memory (the durable state is per job)."""

    next_due: float = 0.0
    failures: int = 0
    last_ok: float = 0.0
    last_attempt: float = 0.0
    last_error: str | None = None
    polls: int = 0
    open_jobs: int = 0


def next_due(
    now: float,
    *,
    has_active: bool,
    fast: float,
    idle: float,
    failures: int = 0,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    if failures:
        delay = min(idle, fast * (2 ** min(failures - 1, 16)))
        delay *= 0.5 + (rng or random).random() * 0.5  # jitter: spread retries of many targets
        if retry_after:
            delay = max(delay, retry_after)
        return now + max(delay, 0.1)
    return now + (fast if has_active else idle)


def is_due(state: TargetState | None, now: float) -> bool:
    return state is None or now >= state.next_due


class DueQueue:
    """Targets by due time: earliest first; rescheduling a target replaces its old entry."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []
        self._current: dict[str, tuple[float, int]] = {}  # target -> its live (due, version)
        self._version = 0

    def __len__(self) -> int:
        return len(self._current)

    def __contains__(self, target_id: object) -> bool:
        return target_id in self._current

    def put(self, target_id: str, due: float) -> None:
        """Schedule ``target_id`` at ``due`` (replacing any earlier schedule of it)."""
        self._version += 1
        self._current[target_id] = (due, self._version)
        heapq.heappush(self._heap, (due, self._version, target_id))
        if len(self._heap) > 4 * len(self._current) + 64:  # many stale entries: rebuild
            self._heap = [(d, v, t) for t, (d, v) in self._current.items()]
            heapq.heapify(self._heap)

    def discard(self, target_id: str) -> None:
        self._current.pop(target_id, None)

    def due_at(self, target_id: str) -> float | None:
        entry = self._current.get(target_id)
        return entry[0] if entry else None

    def next_at(self) -> float | None:
        """When the earliest target is due (None: nothing scheduled)."""
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float, limit: int) -> list[str]:
        """Up to ``limit`` targets due at ``now``, earliest first; they leave the queue."""
        out: list[str] = []
        while len(out) < limit:
            self._drop_stale()
            if not self._heap or self._heap[0][0] > now:
                break
            _, _, target_id = heapq.heappop(self._heap)
            del self._current[target_id]
            out.append(target_id)
        return out

    def _drop_stale(self) -> None:
        while self._heap:
            due, version, target_id = self._heap[0]
            if self._current.get(target_id) == (due, version):
                return
            heapq.heappop(self._heap)


def first_due(now: float, interval: float, rng: random.Random | None = None) -> float:
    """The first due time of a target taken over at ``now``: somewhere in its first interval."""
    return now + (rng or random).random() * interval
