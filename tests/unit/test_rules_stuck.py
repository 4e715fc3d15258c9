"""Stuck rules: timers start, fire at exactly `for`, repeat, and resolve when the job moves on."""

from __future__ import annotations

import msgspec

from tests.unit.jobevents import at, event, ruleset
from watcher.rules import stuck
from watcher.rules.pipeline import DryRun

RULES = ruleset(
    "rules:\n"
    "  - name: stuck\n    when: RUNNING createDesktops\n    for: 30m\n    repeat: 1h\n"
    "  - name: waiting\n    when: WAITING\n    for: 10m\n"
)
BY_NAME = {r.name: r for r in RULES.rules}
STUCK = [r for r in RULES.rules if r.kind == "stuck"]


def feed(state, ev):
    return stuck.on_event(state, ev, STUCK, {r.name for r in RULES.matching(ev)}, ev.observed_at)


def test_a_timer_starts_on_the_matching_status_and_fires_after_for() -> None:
    state, alerts = feed(None, event("j1", "RUNNING", at(0), prev=None))
    assert alerts == [] and state is not None
    assert list(state.timers) == ["stuck"] and state.timers["stuck"].since == at(0)
    assert stuck.due_at(state, BY_NAME) == at(30)
    same, none = stuck.on_tick(state, BY_NAME, at(29, 59))
    assert none == [] and same.timers["stuck"].fired is False
    state, [alert] = stuck.on_tick(state, BY_NAME, at(30))
    assert alert.key == "stuck|workspace/cn-north-4/p1/j1|stuck@20261123T100000Z|firing"
    assert alert.title == "[STUCK] createDesktops RUNNING for 30m in p1 (cn-north-4)"
    assert alert.body.splitlines()[0] == (
        "createDesktops job j1 has been RUNNING since 2026-11-23 10:00:00 UTC (30m; the limit is 30m)."
    )
    assert state.timers["stuck"].fired and stuck.due_at(state, BY_NAME) == at(90)  # repeat: 1h


def test_the_job_leaving_the_status_resolves_a_fired_timer() -> None:
    state, _ = feed(None, event("j1", "RUNNING", at(0), prev=None))
    state, _ = stuck.on_tick(state, BY_NAME, at(30))
    state, [resolved] = feed(state, event("j1", "SUCCESS", at(42)))
    assert state is None
    assert resolved.kind == "resolved"
    assert resolved.key == "stuck|workspace/cn-north-4/p1/j1|stuck@20261123T100000Z|resolved"
    assert resolved.title == "[RESOLVED] createDesktops no longer RUNNING after 42m in p1 (cn-north-4)"
    assert resolved.body.splitlines()[0] == (
        "createDesktops job j1 was RUNNING from 2026-11-23 10:00:00 UTC to 2026-11-23 10:42:00 UTC (42m); now SUCCESS."
    )


def test_leaving_before_the_limit_ends_the_timer_silently() -> None:
    state, _ = feed(None, event("j1", "RUNNING", at(0), prev=None))
    assert feed(state, event("j1", "FAILED", at(29))) == (None, [])


def test_a_vanished_job_resolves_too() -> None:
    state, _ = feed(None, event("j1", "RUNNING", at(0), prev=None))
    state, _ = stuck.on_tick(state, BY_NAME, at(31))
    _, [resolved] = feed(state, event("j1", "VANISHED", at(50)))
    assert resolved.body.splitlines()[0].endswith("(50m); now VANISHED.")


def test_per_job_type_and_status() -> None:
    assert feed(None, event("j1", "RUNNING", job_type="deleteDesktop", prev=None)) == (None, [])
    state, _ = feed(None, event("j1", "WAITING", job_type="deleteDesktop", prev=None))
    assert state is not None and list(state.timers) == ["waiting"] and stuck.due_at(state, BY_NAME) == at(10)


def test_state_is_json_and_survives_a_restart() -> None:
    state, _ = feed(None, event("j1", "RUNNING", at(0), prev=None))
    state, _ = stuck.on_tick(state, BY_NAME, at(30))
    raw = msgspec.json.encode(state)
    restored = msgspec.json.decode(raw, type=stuck.JobTimers)
    assert restored == state
    _, [resolved] = feed(restored, event("j1", "SUCCESS", at(45)))
    assert resolved.kind == "resolved"


def test_dry_run_fires_repeats_and_resolves_at_exact_times() -> None:
    run = DryRun(RULES).run([event("j1", "RUNNING", at(0), prev=None), event("j1", "SUCCESS", at(155))])
    assert [(m.at, m.alert.kind, m.alert.key.rsplit("|", 1)[1]) for m in run.messages] == [
        (at(30), "firing", "firing"),
        (at(90), "firing", "firing#2"),
        (at(150), "firing", "firing#3"),
        (at(155), "resolved", "resolved"),
    ]
    assert "(reminder 3)" in run.messages[2].alert.body
