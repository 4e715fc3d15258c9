"""Grouping (one message per batch) and dedup/repeat (a key is never sent twice)."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.jobevents import T0, at, event, ruleset
from watcher.rules import dedup, grouping
from watcher.rules.pipeline import DryRun

GROUPED = ruleset(
    "rules:\n  - name: failed\n    when: FAILED createDesktops\n"
    "    group_by: [project_id, parent_job_id]\n    group_wait: 30s\n    group_interval: 5m\n"
)
CODES = ["WKS.0001", "WKS.0002", "WKS.0003", None]


def batch(n: int, parent: str = "batch-1", start: int = 0, prefix: str = "d") -> list:
    return [
        event(
            f"{prefix}-{i:03}",
            "FAILED",
            at(0, start + i * 0.1),
            parent=parent,
            code=CODES[i % 7 % 4],
            name=f"desk-{i:03}",
        )
        for i in range(n)
    ]


def test_two_hundred_failed_desktops_become_one_message() -> None:
    run = DryRun(GROUPED).run(batch(200))
    [message] = run.messages
    alert = message.alert
    assert message.at == at(0, 30)  # group_wait after the first
    assert alert.count == 200 and len(message.members) == 200
    assert alert.key == "failed|firing|project_id=p1|parent_job_id=batch-1|group@20261123T100000Z#1"
    assert alert.title == "[FAILED] createDesktops in p1 (cn-north-4) (+199 more)"
    assert alert.body == "\n".join([
        "200 alerts of rule failed, grouped by project_id=p1, parent_job_id=batch-1.",
        "Error codes: WKS.0001 ×57, WKS.0002 ×57, WKS.0003 ×57, (no error code) ×29",
        "First 10 jobs:",
        "- d-000 desk-000 FAILED WKS.0001",
        "- d-001 desk-001 FAILED WKS.0002",
        "- d-002 desk-002 FAILED WKS.0003",
        "- d-003 desk-003 FAILED",
        "- d-004 desk-004 FAILED WKS.0001",
        "- d-005 desk-005 FAILED WKS.0002",
        "- d-006 desk-006 FAILED WKS.0003",
        "- d-007 desk-007 FAILED WKS.0001",
        "- d-008 desk-008 FAILED WKS.0002",
        "- d-009 desk-009 FAILED WKS.0003",
        "…and 190 more.",
    ])  # fmt: skip


def test_a_group_of_one_sends_the_alert_itself() -> None:
    run = DryRun(GROUPED).run(batch(1))
    [message] = run.messages
    assert message.alert.key == "failed|workspace/cn-north-4/p1/d-000|RUNNING>FAILED|firing"
    assert message.alert.title == "[FAILED] createDesktops in p1 (cn-north-4)" and message.at == at(0, 30)


def test_late_arrivals_wait_for_group_interval_then_the_group_closes() -> None:
    late = [event("late-1", "FAILED", at(1), parent="batch-1"), event("late-2", "FAILED", at(2), parent="batch-1")]
    again = [event("much-later", "FAILED", at(20), parent="batch-1")]
    run = DryRun(GROUPED).run(batch(3) + late + again)
    assert [(m.at, m.alert.count) for m in run.messages] == [
        (at(0, 30), 3),
        (at(5, 30), 2),  # group_interval after the first message
        (at(20, 30), 1),  # the group closed at 10:30 with nothing new; a new one waits group_wait
    ]


def test_groups_are_per_group_by_values() -> None:
    run = DryRun(GROUPED).run(batch(3, "A", prefix="a") + batch(2, "B", start=1, prefix="b"))
    assert sorted((m.alert.count, m.alert.event.parent_job_id) for m in run.messages) == [(2, "B"), (3, "A")]


def test_group_state_is_json() -> None:
    spec = GROUPED.rules[0].options.grouping
    assert spec is not None
    g = None
    for ev in batch(3):
        from watcher.rules.engine import make_alert

        g = grouping.add(g, make_alert(GROUPED.rules[0], ev, ev.observed_at), spec, ev.observed_at)
    assert g is not None and grouping.due_at(g, spec) == at(0, 30)
    assert msgspec.json.decode(msgspec.json.encode(g), type=grouping.Group) == g


@pytest.mark.parametrize(
    ("kind", "last", "repeat", "now", "expected"),
    [
        ("firing", None, None, 0, (True, "first")),
        ("firing", 0, None, 99999, (False, "k already sent 1d3h46m39s ago (no repeat)")),
        ("firing", 0, 3600, 1800, (False, "k sent 30m ago; repeat every 1h")),
        ("firing", 0, 3600, 3600, (True, "repeat")),
        ("resolved", 0, 3600, 7200, (False, "k already sent 2h ago (no repeat)")),
    ],
)
def test_should_send(kind, last, repeat, now, expected) -> None:
    last_sent = None if last is None else T0 + timedelta(seconds=last)
    assert dedup.should_send("k", kind, last_sent, repeat, T0 + timedelta(seconds=now)) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 10_000)), max_size=40))
def test_dedup_never_sends_a_key_twice_without_repeat(sends) -> None:
    from tests.unit.jobevents import event as job
    from watcher.events import Alert

    state: dict[str, dedup.Sent] = {}
    sent = []
    for key, seconds in sorted(sends, key=lambda s: s[1]):
        alert = Alert(key=key, rule="r", title="t", body="b", event=job("j", "FAILED"), fired_at=T0)
        now = T0 + timedelta(seconds=seconds)
        new, passed, _ = dedup.admit(state.get(key), alert, None, now)
        if passed is not None:
            sent.append(passed.key)
        if new is not None:
            state[key] = new
    assert len(sent) == len(set(sent)) == len({k for k, _ in sends})


jobs = st.lists(
    st.tuples(
        st.sampled_from(["j1", "j2", "j3", "j4", "j5", "j6"]),
        st.sampled_from(["FAILED", "SUCCESS", "RUNNING"]),
        st.sampled_from(["A", "B", None]),
        st.integers(0, 3600),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(jobs)
def test_every_matching_event_lands_in_exactly_one_group_message(items) -> None:
    events = [event(j, s, at(0, t), parent=p, prev="RUNNING" if s != "RUNNING" else "WAITING") for j, s, p, t in items]
    run = DryRun(GROUPED).run(events)
    admitted = [o.key for e in run.log for o in e.alerts if o.result == "grouped"]
    delivered = [m.key for msg in run.messages for m in msg.members]
    assert sorted(delivered) == sorted(admitted)  # each grouped alert in exactly one message
    assert sum(msg.alert.count for msg in run.messages) == len(admitted)
    distinct = {j for j, s, _, _ in items if s == "FAILED"}  # one transition, one key
    assert len(admitted) == len(distinct)
    assert len({m.alert.key for m in run.messages}) == len(run.messages)  # never a message key twice
