import random

import pytest

from watcher.duration import format_duration, parse_duration
from watcher.poller.schedule import TargetState, is_due, next_due


def test_adaptive_interval():
    assert next_due(100.0, has_active=True, fast=5, idle=60) == 105.0
    assert next_due(100.0, has_active=False, fast=5, idle=60) == 160.0


@pytest.mark.parametrize("failures,low,high", [(1, 2.5, 5), (2, 5, 10), (3, 10, 20), (10, 30, 60)])
def test_backoff_doubles_up_to_idle(failures, low, high):
    due = next_due(0.0, has_active=True, fast=5, idle=60, failures=failures, rng=random.Random(1))
    assert low <= due <= high


def test_retry_after_is_honoured():
    assert next_due(0.0, has_active=True, fast=5, idle=60, failures=1, retry_after=30) >= 30


def test_is_due():
    assert is_due(None, 0)
    assert not is_due(TargetState(next_due=10), 5)
    assert is_due(TargetState(next_due=10), 10)


@pytest.mark.parametrize(
    "text,seconds", [("5s", 5), ("500ms", 0.5), ("10m", 600), ("2h", 7200), ("1h30m", 5400), ("1d", 86400), (3, 3.0)]
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "5", "5x", "m5", "-5s", "5s5", True])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(bad)


def test_format_duration():
    assert format_duration(5400) == "1h30m"
    assert format_duration(0.25) == "250ms"


def test_due_queue_gives_the_latest_first_and_a_reschedule_replaces_the_old_entry() -> None:
    from watcher.poller.schedule import DueQueue

    q = DueQueue()
    q.put("a", 10.0)
    q.put("b", 5.0)
    q.put("c", 7.0)
    q.put("a", 3.0)  # rescheduled earlier: its old entry no longer counts
    assert (len(q), q.next_at()) == (3, 3.0)
    assert q.pop_due(6.0, limit=10) == ["a", "b"]  # the most overdue first, none of the future ones
    assert q.pop_due(100.0, limit=10) == ["c"] and q.next_at() is None
    q.put("d", 1.0)
    q.discard("d")
    assert q.pop_due(100.0, limit=10) == [] and "d" not in q


def test_due_queue_never_skips_a_late_target() -> None:
    from watcher.poller.schedule import DueQueue

    q = DueQueue()
    for i in range(100):
        q.put(f"t{i}", float(i))
    taken = q.pop_due(1000.0, limit=30)  # the loop can poll 30 at once
    assert taken == [f"t{i}" for i in range(30)]
    assert q.pop_due(1000.0, limit=100) == [f"t{i}" for i in range(30, 100)]
