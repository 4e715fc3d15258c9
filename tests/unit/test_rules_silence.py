"""Silences (file and run-time, by CEL expression, with expiry) and inhibition."""

from __future__ import annotations

from pathlib import Path

import msgspec

from tests.unit.jobevents import at, event, ruleset
from watcher.rules.engine import load_book, make_alert
from watcher.rules.pipeline import DryRun
from watcher.rules.silence import Silence, expire, new_silence, silenced_by

RULES = ruleset("rules:\n  - name: failed\n    when: failed\n")


def alert(project: str = "p1", job_type: str = "createDesktops"):
    ev = event("j1", "FAILED", at(0), project=project, job_type=job_type)
    return make_alert(RULES.rules[0], ev, ev.observed_at)


def test_a_file_silence_with_starts_and_for(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "rules: []\nsilences:\n"
        '  - match: \'project_id == "p2" && rule == "failed"\'\n'
        "    starts: 2026-11-23T09:00:00Z\n    for: 2h\n    comment: rebuild\n    created_by: ops\n"
    )
    _, [s] = load_book([path])
    assert s == Silence(id="s.yaml:3", match='project_id == "p2" && rule == "failed"', starts=at(-60), ends=at(60),
                        comment="rebuild", created_by="ops", origin=f"{path}:3")  # fmt: skip
    assert silenced_by(alert("p2"), [s], at(0)) == s
    assert silenced_by(alert("p1"), [s], at(0)) is None
    assert silenced_by(alert("p2"), [s], at(-61)) is None  # not started
    assert silenced_by(alert("p2"), [s], at(60)) is None  # ended
    assert s.describe() == (
        'silence s.yaml:3 (project_id == "p2" && rule == "failed"; '
        "2026-11-23 09:00:00 UTC → 2026-11-23 11:00:00 UTC by ops): rebuild"
    )


def test_a_run_time_silence_expires_and_is_json() -> None:
    s = new_silence('job_type.startsWith("create")', at(0), duration="2h", comment="c", created_by="me", id="x1")
    assert (s.starts, s.ends, s.origin) == (at(0), at(120), "cli")
    assert msgspec.json.decode(msgspec.json.encode(s), type=Silence) == s
    assert silenced_by(alert(), [s], at(10)) == s
    done = expire(s, at(30))
    assert done.ends == at(30) and silenced_by(alert(), [done], at(31)) is None


def test_a_silenced_alert_is_recorded_not_dropped() -> None:
    s = new_silence('project_id == "p1"', at(-1), id="quiet")
    run = DryRun(RULES, [s]).run([event("j1", "FAILED", at(0)), event("j2", "FAILED", at(1), project="p2")])
    assert [(o.job_key, o.result, o.reason.split(" (")[0]) for e in run.log for o in e.alerts] == [
        ("workspace/cn-north-4/p1/j1", "silenced", "silence quiet"),
        ("workspace/cn-north-4/p2/j2", "sent", ""),
    ]
    assert [m.alert.event.job_id for m in run.messages] == ["j2"]


def test_a_silence_that_starts_while_alerts_wait_in_a_group_mutes_them() -> None:
    rules = ruleset("rules:\n  - name: g\n    when: failed\n    group_by: [project_id]\n    group_wait: 1m\n")
    s = new_silence("true", at(0, 30), id="late")
    run = DryRun(rules, [s]).run([event("j1", "FAILED", at(0)), event("j2", "FAILED", at(0, 10))])
    assert run.messages == []
    flush = run.log[-1]
    assert flush.trigger == "flush" and [o.result for o in flush.alerts] == ["silenced", "silenced"]


PARENT_AND_SUBS = ruleset(
    "rules:\n"
    "  - name: batch-failed\n    when: FAILED createDesktops\n    inhibits: [desktop-failed]\n"
    "  - name: desktop-failed\n    when: FAILED createDesktop\n    group_by: [parent_job_id]\n    group_wait: 1m\n"
)


def test_a_parent_alert_mutes_its_sub_jobs_even_those_already_waiting_in_a_group() -> None:
    events = [
        event("d1", "FAILED", at(0), job_type="createDesktop", parent="batch"),
        event("d2", "FAILED", at(0, 10), job_type="createDesktop", parent="batch"),
        event("batch", "FAILED", at(0, 20)),
        event("d3", "FAILED", at(0, 30), job_type="createDesktop", parent="batch"),
        event("x1", "FAILED", at(0, 40), job_type="createDesktop", parent="other"),
    ]
    run = DryRun(PARENT_AND_SUBS).run(events)
    assert [m.alert.event.job_id for m in run.messages] == ["batch", "x1"]
    outcomes = [(o.job_key.rsplit("/", 1)[1], o.result) for e in run.log for o in e.alerts]
    assert outcomes == [
        ("d1", "grouped"), ("d2", "grouped"), ("batch", "sent"), ("d3", "inhibited"), ("x1", "grouped"),
        ("d1", "inhibited"), ("d2", "inhibited"),  # at the group's send time
    ]  # fmt: skip


def test_a_project_wide_burst_mutes_the_per_job_alerts_it_covers() -> None:
    rules = ruleset(
        "rules:\n"
        "  - name: each\n    when: FAIL\n"
        "  - name: burst\n    when: FAIL\n    burst: {count: 2, within: 10m, by: [project_id]}\n    inhibits: [each]\n"
    )
    evs = [event(f"v{i}", "FAIL", at(i), source="evs", job_type="createVolume", project=p)
           for i, p in enumerate(["p1", "p1", "p1", "p2", "p1"])]  # fmt: skip
    evs.append(event("v9", "FAIL", at(30), source="evs", job_type="createVolume"))  # the burst is over
    run = DryRun(rules).run(evs)
    assert [(m.alert.rule, m.alert.event.job_id) for m in run.messages] == [
        ("each", "v0"), ("burst", "v1"), ("each", "v3"), ("each", "v9"),
    ]  # fmt: skip
