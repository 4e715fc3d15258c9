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
