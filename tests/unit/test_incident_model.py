"""The incident model: what each alert and action does to an incident, and who hears of it. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from watcher.events import Action, Alert, Entities, Incident, JobEvent, incident_id, job_key, subject_of
from watcher.incidents import escalation
from watcher.incidents.model import (
    Intent,
    apply_action,
    apply_alert,
    escalate,
    fold,
    notifications,
    standalone,
)
from watcher.rules.options import Step

T0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def event(job: str, status: str, *, parent: str | None = "J", source: str = "workspaceapp", name: str = "") -> JobEvent:
    phase = {"FAILED": "failed", "ABNORMAL": "failed", "RUNNING": "running", "SUCCESS": "succeeded"}.get(status, "other")
    return JobEvent(source=source, region="r", project_id="p", job_key=job_key(source, "r", "p", job), job_id=job,
                    parent_job_id=parent, job_type="CREATE_SERVER", status=status, phase=phase,  # type: ignore[arg-type]
                    observed_at=T0, entities=Entities(resource_name=name or None),
                    subject=subject_of(source, "r", "p", job, parent))  # fmt: skip


def alert(e: JobEvent, *, rule: str = "app-failed", kind: str = "firing", key: str | None = None, repeat: int = 0,
          incident_kind: str = "job", at: datetime = T0) -> Alert:  # fmt: skip
    return Alert(key=key or f"{rule}|{e.job_key}|{e.status}|{kind}", rule=rule, kind=kind, title=f"[{e.status}] x",  # type: ignore[arg-type]
                 body="b", event=e, fired_at=at, incident=incident_id(rule, e.incident_subject),
                 incident_kind=incident_kind, repeat=repeat)  # fmt: skip


def said(intents: list[Intent]) -> list[tuple[str, str]]:
    return [(i.kind, i.audience) for i in intents]


def test_a_job_and_its_sub_jobs_through_both_apis_are_one_incident_one_page() -> None:
    inc, first = apply_alert(None, alert(event("S2", "FAILED", source="workspaceapp", name="APS-2")), T0)
    assert said(first) == [("open", "all")] and inc is not None and inc.id == "app-failed|app/r/p/J"
    inc, second = apply_alert(inc, alert(event("J", "FAILED", source="appjob", parent=None)), T0)
    assert said(second) == [("update", "editable")]  # the parent: news for a card, not a page
    inc, third = apply_alert(inc, alert(event("S2", "FAILED", source="appjob", name="APS-2")), T0)
    assert third == []  # the same sub-job through the other API: nothing changed at all
    assert inc is not None and [j.job_id for j in inc.jobs] == ["S2", "J"]


def test_abnormal_then_failed_updates_and_a_replay_is_a_no_op() -> None:
    abnormal = alert(event("S", "ABNORMAL"))
    inc, _ = apply_alert(None, abnormal, T0)
    inc, said_ = apply_alert(inc, alert(event("S", "FAILED")), T0 + timedelta(seconds=20))
    assert said(said_) == [("update", "editable")] and said_[0].change == "S ABNORMAL → FAILED"
    again, nothing = apply_alert(inc, abnormal, T0 + timedelta(seconds=30))
    assert nothing == [] and again is inc


def test_a_group_flush_after_the_first_tells_every_target() -> None:
    flush = alert(event("D1", "FAILED"), rule="batch", incident_kind="group", key="batch|g|group@1#1")
    inc, first = apply_alert(None, flush, T0)
    second_flush = msgspec.structs.replace(alert(event("D2", "FAILED"), rule="batch", incident_kind="group",
                                                 key="batch|g|group@1#2"), incident=flush.incident)  # fmt: skip
    _, second = apply_alert(inc, second_flush, T0)
    assert said(first) == [("open", "all")] and said(second) == [("update", "all")]


def test_stuck_jobs_resolve_only_when_every_job_moved_on_then_a_new_episode_pages_again() -> None:
    batch, sub = event("B", "RUNNING", source="evs", parent=None), event("V1", "RUNNING", source="evs", parent="B")
    inc, _ = apply_alert(None, alert(batch, rule="stuck", incident_kind="stuck"), T0)
    inc, _ = apply_alert(inc, alert(sub, rule="stuck", incident_kind="stuck"), T0)
    inc, one = apply_alert(inc, alert(batch, rule="stuck", kind="resolved", incident_kind="stuck"), T0)
    assert said(one) == [("update", "editable")] and inc is not None and inc.state == "firing"
    inc, both = apply_alert(inc, alert(sub, rule="stuck", kind="resolved", incident_kind="stuck"), T0)
    assert said(both) == [("resolve", "all")] and inc is not None and inc.state == "resolved"
    later = T0 + timedelta(hours=1)
    again = alert(batch, rule="stuck", incident_kind="stuck", key="stuck|B|later", at=later)
    inc2, reopened = apply_alert(inc, again, later)
    assert said(reopened) == [("open", "all")] and inc2 is not None and inc2.episode == 2
    assert set(inc.alerts) <= set(inc2.alerts)  # a replay of the first episode is still a no-op
    assert apply_alert(inc2, alert(sub, rule="stuck", incident_kind="stuck"), later)[1] == []


def test_reminders_go_to_everyone_unless_acknowledged_or_snoozed() -> None:
    first = alert(event("S", "RUNNING"), rule="stuck", incident_kind="stuck")
    inc, _ = apply_alert(None, first, T0)
    reminder = msgspec.structs.replace(first, key=first.key + "#2", repeat=1)
    assert said(apply_alert(inc, reminder, T0)[1]) == [("remind", "all")]
    ack = Action(id="a1", incident=inc.id, kind="ack", by="@ana", at=T0, via="slack")
    acked, card = apply_action(inc, ack, T0)
    assert said(card) == [("update", "editable")] and card[0].change == "acknowledged by @ana at 08:00 UTC"
    assert apply_alert(acked, reminder, T0)[1] == []
    assert apply_action(acked, ack, T0)[1] == []  # the same click twice: once
    snooze = Action(id="a2", incident=inc.id, kind="snooze", by="@bo", at=T0, via="cli", until=T0 + timedelta(hours=1))
    snoozed, _ = apply_action(inc, snooze, T0)
    assert apply_alert(snoozed, reminder, T0 + timedelta(minutes=5))[1] == []


def test_one_batch_folds_into_one_opening_showing_the_final_state() -> None:
    inc, a = apply_alert(None, alert(event("S1", "FAILED")), T0)
    inc, b = apply_alert(inc, alert(event("J", "FAILED", source="appjob", parent=None)), T0)
    [opening] = fold([*a, *b])
    assert opening.kind == "open" and len(opening.incident.jobs) == 2
    after, [note] = notifications(inc, [*a, *b], T0)
    assert note.key == "app-failed|app/r/p/J#1/1" and note.incident.seq == after.seq == 1


@pytest.mark.parametrize(("acked", "snoozed_for", "now", "due"), [
    (False, 0, 5, None), (False, 0, 15, 0), (True, 0, 15, None), (False, 30, 15, None), (False, 30, 31, 0),
])  # fmt: skip
def test_escalation_steps_wait_for_acks_and_snoozes(acked: bool, snoozed_for: int, now: int, due: int | None) -> None:
    inc, _ = apply_alert(None, alert(event("S", "FAILED")), T0)
    assert inc is not None
    if acked:
        inc = msgspec.structs.replace(inc, state="acknowledged")
    if snoozed_for:
        inc = msgspec.structs.replace(inc, snoozed_until=T0 + timedelta(seconds=snoozed_for))
    steps = (Step(after=10, tags=("lead",)), Step(after=40, tags=("boss",)))
    assert escalation.due_step(inc, steps, T0 + timedelta(seconds=now)) == due


def test_each_escalation_step_fires_once_in_order() -> None:
    inc: Incident | None
    inc, _ = apply_alert(None, alert(event("S", "FAILED")), T0)
    assert inc is not None
    steps = (Step(after=10, tags=("lead",)), Step(after=40, tags=("boss",)))
    fired, intent = escalate(inc, 0, steps[0].tags, steps[0].after, T0 + timedelta(seconds=11))
    assert (intent.kind, intent.tags, fired.escalated) == ("escalate", ("lead",), 1)
    assert escalation.due_step(fired, steps, T0 + timedelta(seconds=39)) is None
    assert escalation.due_step(fired, steps, T0 + timedelta(seconds=41)) == 1


def test_standalone_alert_is_an_opening_or_a_resolution() -> None:
    up = standalone(alert(event("S", "FAILED")), T0)
    down = standalone(alert(event("S", "FAILED"), kind="resolved"), T0)
    assert (up.kind, up.audience, down.kind, down.incident.state) == ("open", "all", "resolve", "resolved")
