"""When to try a cloud call again: the retry policy and the delay math, as pure functions.

Exponential backoff with full jitter (``uniform(0, min(max_delay, base * 2**(n-1)))``),
unless the server said when via ``Retry-After`` (seconds or an HTTP date) — then that wins.
Two limits stop retrying, whichever comes first: ``max_attempts`` requests in all, or the
next wait would end past ``budget_seconds`` after the first request started.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import msgspec


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How hard to retry throttling (429), 5xx and transport errors."""

    max_attempts: int = 5  # requests in all, the first included
    base_delay: float = 0.5  # seconds; the cap of the first backoff
    max_delay: float = 30.0  # seconds; no backoff cap grows past this
    budget_seconds: float = 60.0  # no retry starts later than this after the first request
    jitter: Literal["full", "none"] = "full"

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        cap = min(self.max_delay, self.base_delay * 2 ** max(0, attempt - 1))
        if self.jitter == "none":
            return cap
        return (rng or random).uniform(0.0, cap)

    def allows(self, attempt: int, elapsed: float, delay: float) -> bool:
        """May attempt ``attempt + 1`` start ``delay`` seconds from now, ``elapsed`` into the call?"""
        return attempt < self.max_attempts and elapsed + delay <= self.budget_seconds


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value; None when absent or unreadable.

    Accepts delta-seconds (``"2"``; fractions tolerated) and HTTP dates
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``); a date in the past means "now" (0).
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is unreadable
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
