"""Scheduling math: when is a target next due. Pure functions.

Adaptive: a target with non-terminal jobs is polled every ``fast`` seconds, an idle one
every ``idle`` seconds; after failures the interval doubles from ``fast`` up to ``idle``
(a throttled or broken target backs off; other targets are not affected).
"""

from __future__ import annotations

import random

import msgspec


class TargetState(msgspec.Struct, kw_only=True):
    """What the poller remembers of one target, kept in Kafka-backed state."""

    next_due: float = 0.0
    failures: int = 0
    last_ok: float = 0.0
    last_error: str | None = None
    active: list[str] = []  # ids of jobs last seen non-terminal (by-id sources: top-level ids)
    polls: int = 0


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
