"""Bursts (N matches in a window per group) and shares (a parent's failed sub-jobs)."""

from __future__ import annotations

import msgspec

from tests.unit.jobevents import at, event, ruleset
from watcher.rules import burst, share
from watcher.rules.pipeline import DryRun

RULES = ruleset(
    "rules:\n"
    "  - name: burst\n    when: FAILED createDesktops\n"
    "    burst: {count: 3, within: 10m, by: [project_id, job_type]}\n"
    "  - name: share\n    when: FAILED createDesktops\n    share: {min: 0.05, of: parent}\n"
    "  - name: burst-repeat\n    when: FAIL\n    burst: {count: 2, within: 10m}\n    repeat: 5m\n"
)
BURST, SHARE, REPEAT = RULES.rules


def run_burst(rule, events):
    states: dict[str, burst.Window] = {}
    fired = []
    for ev in events:
        key = burst.burst_key(rule, ev)
        states[key], alerts = burst.on_event(states.get(key), ev, rule, ev.observed_at)
        fired += alerts
    return states, fired


def test_the_nth_match_within_the_window_fires_once() -> None:
    events = [event(f"j{i}", "FAILED", at(i * 2)) for i in range(5)]
    states, fired = run_burst(BURST, events)
    assert [a.key for a in fired] == ["burst|project_id=p1|job_type=createDesktops|burst@20261123T100400Z"]
    [alert] = fired
    assert alert.count == 3 and alert.event.job_id == "j2"
    assert alert.title == "[BURST] 3 × FAILED createDesktops within 10m: project_id=p1, job_type=createDesktops"
    assert alert.body == (
        "3 events matched rule burst (FAILED createDesktops) within 10m, "
        "from 2026-11-23 10:00:00 UTC to 2026-11-23 10:04:00 UTC.\n"
        "Group: project_id=p1, job_type=createDesktops\n"
        "Latest jobs: j0, j1, j2"
    )
    assert msgspec.json.decode(msgspec.json.encode(states), type=dict[str, burst.Window]) == states


def test_matches_spread_wider_than_the_window_never_fire() -> None:
    assert run_burst(BURST, [event(f"j{i}", "FAILED", at(i * 6)) for i in range(6)])[1] == []


def test_groups_count_separately() -> None:
    events = [event(f"j{i}", "FAILED", at(i), project=f"p{i % 2}") for i in range(5)]
    _, fired = run_burst(BURST, events)
    assert [a.key.split("|")[1] for a in fired] == ["project_id=p0"]  # p0: j0 j2 j4; p1: only j1 j3


def test_a_replayed_event_counts_once() -> None:
    same = event("j1", "FAILED", at(0))
    assert run_burst(BURST, [same, same, same])[1] == []


def test_a_new_burst_after_the_window_drained_is_a_new_alert() -> None:
    first = [event(f"a{i}", "FAILED", at(i)) for i in range(3)]
    second = [event(f"b{i}", "FAILED", at(30 + i)) for i in range(3)]
    _, fired = run_burst(BURST, first + second)
    assert [a.key.rsplit("@", 1)[1] for a in fired] == ["20261123T100200Z", "20261123T103200Z"]


def test_repeat_reminds_while_the_burst_lasts() -> None:
    events = [event(f"v{i}", "FAIL", at(i * 2), source="evs", job_type="createVolume") for i in range(6)]
    _, fired = run_burst(REPEAT, events)
    assert [(a.fired_at, a.key) for a in fired] == [
        (at(2), "burst-repeat|burst@20261123T100200Z"),
        (at(8), "burst-repeat|burst@20261123T100200Z"),  # 6m after the first ≥ repeat 5m
    ]


def test_share_fires_when_the_failed_fraction_of_seen_sub_jobs_reaches_min() -> None:
    state = None
    fired = []
    for i in range(40):  # 40 desktops of one batch succeed, then 2 fail: 2/42 < 5%, 3/43 ≥ 5%
        ev = event(f"ok{i}", "SUCCESS", at(0, i), parent="batch")
        state, alerts = share.on_event(state, ev, SHARE, False, ev.observed_at)
        fired += alerts
    for i in range(4):
        ev = event(f"bad{i}", "FAILED", at(1, i), parent="batch", code="WKS.0001")
        state, alerts = share.on_event(state, ev, SHARE, True, ev.observed_at)
        fired += alerts
    [alert] = fired
    assert alert.key == "share|workspace/cn-north-4/p1/batch|share"
    assert alert.count == 3 and alert.event.job_id == "bad2"
    assert alert.title == (
        "[SHARE] 3 of 43 sub-jobs (6.98%) of createDesktops batch match FAILED createDesktops in p1 (cn-north-4)"
    )
    assert alert.body.splitlines()[0] == (
        "3 of the 43 sub-jobs seen of job batch matched rule share (FAILED createDesktops): 6.98%, at least 5%."
    )
    assert state is not None and len(state.seen) == 44 and len(state.matched) == 4


def test_share_counts_a_sub_job_once_and_only_sub_jobs_the_rule_is_about() -> None:
    assert share.counts_toward(SHARE, event("j", "RUNNING", parent="b"))
    assert not share.counts_toward(SHARE, event("j", "RUNNING"))  # no parent
    assert not share.counts_toward(SHARE, event("j", "RUNNING", parent="b", job_type="deleteDesktop"))
    state, _ = share.on_event(None, event("j", "RUNNING", parent="b"), SHARE, False, at(0))
    state, _ = share.on_event(state, event("j", "SUCCESS", parent="b"), SHARE, False, at(1))
    assert state.seen == ["j"] and state.matched == []


def test_dry_run_share_fires_once_per_parent() -> None:
    events = [event("a1", "FAILED", at(0), parent="A"), event("a2", "FAILED", at(1), parent="A"),
              event("b1", "SUCCESS", at(2), parent="B"), event("b2", "FAILED", at(3), parent="B")]  # fmt: skip
    run = DryRun(ruleset("rules:\n  - name: s\n    when: FAILED\n    share: {min: 0.5}\n")).run(events)
    assert [m.alert.key for m in run.messages] == [
        "s|workspace/cn-north-4/p1/A|share",
        "s|workspace/cn-north-4/p1/B|share",
    ]
