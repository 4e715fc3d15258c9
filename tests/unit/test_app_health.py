"""Self-health bookkeeping (blind/recovered decisions) and the metrics the agents feed."""

from __future__ import annotations

import pytest

from watcher.app.blind import BlindTracker, blind_alert
from watcher.app.metrics import Metrics, Stats
from watcher.sources.base import Target

WS = Target(source="workspace", region="cn-north-4", project_id="p0")
EVS = Target(source="evs", region="cn-north-4", project_id="p0")


def by_id(t: Target) -> bool:
    return t.source in ("evs", "appjob")


@pytest.mark.parametrize(
    ("outcomes", "now", "blind"),
    [
        ([True], 10, False),
        ([False, False], 10, False),  # under the failure count, not for long
        ([False, False, False], 10, True),  # N in a row
        ([False, False, False, True], 10, False),  # healed
        ([True, False], 400, True),  # failing for longer than `after` since the last success
        ([False, True, False, False], 10, False),  # a success resets the count
    ],
)
def test_blind_after_failures_or_duration(outcomes, now, blind):
    tracker = BlindTracker(failures=3, after=300)
    for i, ok in enumerate(outcomes):
        tracker.observe(WS, ok=ok, now=float(i), error=None if ok else "http=500")
    assert tracker.is_blind(tracker.targets[WS.id], now) is blind


def test_one_firing_then_one_resolved_per_episode():
    tracker = BlindTracker(failures=2, after=300)
    for t in (1.0, 2.0):
        tracker.observe(WS, ok=False, now=t, error="server error api=x http=500")
    [change] = tracker.decide(3.0)
    assert change.kind == "firing"
    firing = blind_alert(change, 3.0, ("ops",))
    change.health.blind_since = change.episode  # what the service does once the notice is delivered
    tracker.observe(WS, ok=False, now=4.0)
    assert tracker.decide(5.0) == []  # still blind: nothing new to say
    tracker.observe(WS, ok=True, now=6.0)
    [healed] = tracker.decide(7.0)
    assert healed.kind == "resolved" and healed.episode == 3.0
    resolved = blind_alert(healed, 7.0, ("ops",))
    assert firing.rule == resolved.rule == "watcher-blind" and firing.severity == "critical"
    assert firing.key != resolved.key and firing.key.startswith(f"watcher-blind|{WS.id}|3|")
    assert firing.tags == ("ops",) and "http=500" in firing.body and resolved.kind == "resolved"


def test_an_owned_list_target_never_polled_goes_blind_but_an_idle_by_id_target_does_not():
    tracker = BlindTracker(failures=3, after=60)
    targets = {WS.id: WS, EVS.id: EVS}
    tracker.own(targets, {WS.id, EVS.id}, 0.0, by_id)
    assert [c.health.target for c in tracker.decide(30.0)] == []
    assert [c.health.target for c in tracker.decide(61.0)] == [WS]
    tracker.own(targets, set(), 62.0, by_id)  # the partition moved away: forget it here
    assert tracker.decide(200.0) == []


def test_stats_increments_feed_the_metrics_and_labels_carry_no_urls():
    m = Metrics()
    stats = Stats(m)
    stats.events += 3
    stats.sent += 1
    stats.dead += 1
    stats.polls += 2
    assert (stats.events, stats.sent, stats.dead, stats.polls) == (3, 1, 1, 2)
    text = m.render().decode()
    assert "watcher_events_published_total 3.0" in text
    assert 'watcher_alerts_total{outcome="sent"} 1.0' in text
    assert 'watcher_alerts_total{outcome="dead_lettered"} 1.0' in text
    assert 'watcher_alerts_total{outcome="silenced"} 0.0' in text
    m.poll_finished("workspace", WS.id, 0.2, ok=True, failures=0)
    text = m.render().decode()
    assert f'watcher_seconds_since_last_successful_poll{{target="{WS.id}"}}' in text
    assert "://" not in text
    with pytest.raises(AttributeError):
        stats.nonsense = 1  # type: ignore[attr-defined]


def test_each_metrics_has_its_own_registry():
    a, b = Metrics(), Metrics()
    Stats(a).events += 1
    assert "watcher_events_published_total 1.0" in a.render().decode()
    assert "watcher_events_published_total 0.0" in b.render().decode()


class _Recovery:
    def __init__(self) -> None:
        import threading
        from collections import Counter

        self.completed = threading.Event()
        self.active_offsets: Counter = Counter()


class _App:
    def __init__(self) -> None:
        from types import SimpleNamespace

        self.started = True
        self.tables = SimpleNamespace(recovery=_Recovery())


def test_a_recovery_that_stops_moving_fails_liveness_once_said_and_a_moving_one_never(caplog):
    from watcher.app.health import RecoveryWatch

    app, now = _App(), [0.0]
    metrics = Metrics()
    watch = RecoveryWatch(app, metrics, stall=120.0, clock=lambda: now[0])
    recovery = app.tables.recovery
    for t in range(0, 600, 10):  # a large table: slow, but each check sees an offset move
        now[0] = float(t)
        recovery.active_offsets["poll-jobs-changelog", 3] += 50
        assert watch.check() is None
    now[0] = 700.0  # stops moving at 590
    assert watch.check() is None and metrics.recovery_stalled._value.get() == 110.0
    now[0] = 720.0
    with caplog.at_level("ERROR", logger="watcher.app.health"):
        assert watch.check() == "table recovery has made no progress for 130s (a Faust recovery stall): restart this worker"
        now[0] = 800.0
        assert watch.check() is not None
    assert [r.getMessage() for r in caplog.records] == [
        "table recovery has made no progress for 130s (a Faust recovery stall): restart this worker; its partitions wait until then"
    ]  # fmt: skip
    recovery.completed.set()  # done: live again, gauge back to 0
    assert watch.check() is None and metrics.recovery_stalled._value.get() == 0.0
