"""Virtual time: seconds since the simulator started, scaled by a speed, steppable by tests.

Every job answer is a pure function of the virtual time, so a test that freezes the
clock (``speed=0``) and steps it with :meth:`SimClock.advance` gets the same answers on
every run, without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class SimClock:
    """``now()`` = (real seconds since start) x ``speed`` + whatever tests added."""

    def __init__(self, speed: float = 1.0, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        if speed < 0:
            raise ValueError(f"speed must be >= 0, got {speed}")
        self.speed = speed
        self._monotonic = monotonic
        self._start = monotonic()
        self._offset = 0.0

    def _flowing(self) -> float:
        return (self._monotonic() - self._start) * self.speed

    def now(self) -> float:
        """Virtual seconds since start (never negative)."""
        return max(0.0, self._flowing() + self._offset)

    def advance(self, seconds: float) -> float:
        """Move virtual time forward (or back, with a negative value); returns the new time."""
        self._offset += seconds
        return self.now()

    def set(self, seconds: float) -> float:
        """Jump to ``seconds`` of virtual time; it keeps flowing from there at ``speed``."""
        self._offset = seconds - self._flowing()
        return self.now()
