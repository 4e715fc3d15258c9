"""What alerts say where the API's own words mislead (issue 12, item 10): a stuck job says for
how long, a script task with failed desktops says how many, a v1 App job's integer type has
its name — on the rule-template path and on the notifier's per-channel path alike."""

from __future__ import annotations

import msgspec

from tests.unit.jobevents import at, event, ruleset
from watcher.events import TaskCounts
from watcher.notify.render import default_body, default_title
from watcher.rules import stuck
from watcher.rules.engine import make_alert

RULES = ruleset(
    "rules:\n"
    "  - name: stuck\n    when: RUNNING createDesktops\n    for: 30m\n"
    "  - name: any-failed\n    when: failed\n"
)
BY_NAME = {r.name: r for r in RULES.rules}


def test_a_stuck_alert_says_for_how_long_not_first_seen() -> None:
    first = event("j1", "RUNNING", at(0), prev=None)
    state, _ = stuck.on_event(None, first, [BY_NAME["stuck"]], {"stuck"}, first.observed_at)
    _, [alert] = stuck.on_tick(state, BY_NAME, at(31))
    lines = alert.body.splitlines()
    assert lines[2] == "Status: RUNNING for 31m, since 2026-11-23 10:00:00 UTC"
    assert "first seen" not in alert.body


def script_event() -> object:
    ev = event("task-5", "FAILED", at(3), source="script", job_type="EXECUTE_SCRIPT")
    return msgspec.structs.replace(ev, status="FINISH", counts=TaskCounts(success=3, failed=2, skipped=0))


def test_a_script_task_with_failed_desktops_says_how_many() -> None:
    ev = script_event()
    alert = make_alert(BY_NAME["any-failed"], ev, at(3))  # the rule's default template
    assert alert.body.splitlines()[1] == "Status: 2 of 5 desktops failed (task RUNNING → FINISH)"
    assert default_body(alert).splitlines()[1] == "Status:   2 of 5 desktops failed (task RUNNING → FINISH)"


def test_a_v1_app_job_type_has_its_name() -> None:
    ev = msgspec.structs.replace(event("j-2", "FAILED", at(1), source="appjob", job_type="2"), status="0",
                                 prev_status="2")
    alert = make_alert(BY_NAME["any-failed"], ev, at(1))
    assert alert.title == "[FAILED] App sub-job in p1 (cn-north-4)"
    assert alert.body.splitlines()[0] == "Job type: App sub-job (appjob)"
    assert default_title(alert) == "[FAILED] App sub-job in project p1 (cn-north-4)"
