"""Alert or action in, incident and what to tell whom out. Pure.

The unit people are paged about is the incident: a rule's firing about one *subject* (a job
with its sub-jobs, a ``group_by`` group, a stuck episode, a burst, a share, a blind target).
:func:`apply_alert` decides, for each alert about an incident:

============================  =====================  ============================================
the incident                  the alert              what is said (:class:`Intent`)
============================  =====================  ============================================
none, or resolved             firing                 ``open`` to every routed target (a page);
                                                     a resolved incident starts a new episode
firing / acknowledged         firing, same job       ``update`` to editable channels only (a Slack
                              or a sibling           card edits itself; mail and webhooks hear
                                                     nothing: one failure, one page)
firing / acknowledged         a group's next flush   ``update`` to every target: new failures
firing                        a reminder (repeat)    ``remind`` to every target, unless
                                                     acknowledged or snoozed
firing / acknowledged         resolved, last job     ``resolve`` to every target
firing / acknowledged         resolved, others left  ``update`` to editable channels
any                           already merged (key)   nothing: a replayed record is a no-op
============================  =====================  ============================================

:func:`apply_action` records who acknowledged, snoozed or silenced it (an ``update`` for the
editable channels: the card shows "Acknowledged by @ana at 08:02"). Several changes of one
incident in one batch of records are folded by :func:`fold` into as few notifications as say
the same: an ``open`` followed by updates is one ``open`` showing the final state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from msgspec.structs import replace as revise

from watcher.events import (
    Action,
    Alert,
    Audience,
    Incident,
    IncidentJob,
    JobEvent,
    Notification,
    NotificationKind,
    notification_key,
)

#: Jobs an incident lists in full; more are counted in ``more_jobs``.
MAX_JOBS = 200
#: Alert and action keys an incident remembers, so that a replayed record changes nothing.
MAX_KEYS = 500
_SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}


@dataclass(frozen=True)
class Intent:
    """Something to tell about an incident: what kind, to whom, and the incident as it stands."""

    kind: NotificationKind
    audience: Audience
    incident: Incident
    change: str = ""
    alert: Alert | None = None
    tags: tuple[str, ...] = ()


def job_of(event: JobEvent, now: datetime, *, firing: bool = True, first_seen: datetime | None = None) -> IncidentJob:
    return IncidentJob(
        job_key=event.job_key, source=event.source, job_id=event.job_id, parent_job_id=event.parent_job_id,
        job_type=event.job_type, status=event.status, phase=event.phase, prev_status=event.prev_status,
        error_code=event.error_code, message=event.message, entities=event.entities, counts=event.counts,
        firing=firing, first_seen=first_seen or now, updated=now,
    )  # fmt: skip


def _events(alert: Alert) -> tuple[JobEvent, ...]:
    return alert.members or (alert.event,)


def label(job: IncidentJob | JobEvent) -> str:
    """A short name for a job: its desktop, volume or server name, else its id."""
    ent = job.entities
    return ent.desktop_name or ent.volume_name or ent.resource_name or job.job_id


def _merge_jobs(
    jobs: tuple[IncidentJob, ...], more: int, events: tuple[JobEvent, ...], now: datetime, *, firing: bool
) -> tuple[tuple[IncidentJob, ...], int, list[str]]:
    """``jobs`` with ``events``' jobs updated or added; (jobs, more_jobs, what changed).

    A job is known by its id: the same App server job seen through two APIs is one job."""
    by_key = {j.job_id: j for j in jobs}
    changes: list[str] = []
    for event in events:
        old = by_key.get(event.job_id)
        if old is None:
            if len(by_key) >= MAX_JOBS:
                more += 1
                changes.append(f"{label(event)} {event.status}")
                continue
            by_key[event.job_id] = job_of(event, now, firing=firing)
            changes.append(f"{label(event)} {event.status}")
        elif old.status != event.status or old.firing != firing:
            by_key[event.job_id] = job_of(event, now, firing=firing, first_seen=old.first_seen)
            changes.append(f"{label(event)} {old.status} → {event.status}" if old.status != event.status
                           else f"{label(event)} {'firing again' if firing else 'resolved'}")  # fmt: skip
    return tuple(by_key.values()), more, changes


def _remember(keys: tuple[str, ...], key: str) -> tuple[str, ...]:
    return (*keys, key)[-MAX_KEYS:]


def _severity(a: str, b: str) -> str:
    return a if _SEVERITY_RANK.get(a, 2) >= _SEVERITY_RANK.get(b, 2) else b


def open_incident(alert: Alert, now: datetime, episode: int = 1) -> Incident:
    """A new incident (or a new episode of a resolved one) opened by ``alert``."""
    event = alert.event
    jobs, more, _ = _merge_jobs((), 0, _events(alert), now, firing=True)
    return Incident(
        id=alert.incident, episode=episode, rule=alert.rule, kind=alert.incident_kind,  # type: ignore[arg-type]
        subject=alert.incident.split("|", 1)[-1], severity=alert.severity, tags=alert.tags,
        source=event.source, region=event.region, project_id=event.project_id, title=alert.title,
        opened_at=now, updated_at=now, jobs=jobs, more_jobs=more + max(0, alert.count - len(_events(alert))),
        alerts=(alert.key,), last_alert=alert,
    )  # fmt: skip


def snoozed(incident: Incident, now: datetime) -> bool:
    return incident.snoozed_until is not None and now < incident.snoozed_until


def apply_alert(incident: Incident | None, alert: Alert, now: datetime) -> tuple[Incident | None, list[Intent]]:
    """``incident`` after ``alert``, and what to tell about it (see the module table)."""
    if incident is not None and alert.key in incident.alerts:
        return incident, []
    if incident is None or incident.state == "resolved":
        if alert.kind == "resolved":  # nothing open to resolve (a late or replayed notice)
            return incident, []
        episode = incident.episode + 1 if incident is not None else 1
        opened = open_incident(alert, now, episode)
        if incident is not None:  # an earlier episode's alerts stay known: a replay of one is still a no-op
            opened = revise(opened, alerts=_remember(incident.alerts, alert.key))
        what = ", ".join(f"{label(j)} {j.status}" for j in opened.jobs[:3])
        return opened, [Intent("open", "all", opened, change=what, alert=alert)]

    firing = alert.kind == "firing"
    jobs, more, changes = _merge_jobs(incident.jobs, incident.more_jobs, _events(alert), now, firing=firing)
    after = revise(
        incident, jobs=jobs, more_jobs=more, updated_at=now, alerts=_remember(incident.alerts, alert.key),
        last_alert=alert, severity=_severity(incident.severity, alert.severity) if firing else incident.severity,
    )  # fmt: skip
    if not firing:
        if any(j.firing for j in jobs):
            return after, [Intent("update", "editable", after, change="; ".join(changes), alert=alert)]
        resolved = revise(after, state="resolved", resolved_at=now)
        return resolved, [Intent("resolve", "all", resolved, change="resolved", alert=alert)]
    if alert.repeat:
        if incident.state != "firing" or snoozed(incident, now):
            return after, []  # acknowledged or snoozed: no reminders
        return after, [Intent("remind", "all", after, change=f"still {alert.event.status} (reminder)", alert=alert)]
    if alert.incident_kind == "group":  # a group's next flush: failures nobody heard of yet
        return after, [Intent("update", "all", after, change=f"{alert.count} more", alert=alert)]
    if changes:
        return after, [Intent("update", "editable", after, change="; ".join(changes), alert=alert)]
    return after, []


def apply_action(incident: Incident | None, action: Action, now: datetime) -> tuple[Incident | None, list[Intent]]:
    """``incident`` after someone acted on it, and the card update that shows it."""
    key = f"action:{action.id}"
    if incident is None or key in incident.alerts:
        return incident, []
    base = revise(incident, alerts=_remember(incident.alerts, key), updated_at=now)
    at = action.at.strftime("%H:%M UTC")
    if action.kind == "ack":
        if incident.state == "resolved":
            return base, []
        after = revise(base, state="acknowledged", acknowledged_by=action.by, acknowledged_at=action.at)
        change = f"acknowledged by {action.by} at {at}"
    elif action.kind == "unack":
        if incident.state != "acknowledged":
            return base, []
        after = revise(base, state="firing", acknowledged_by=None, acknowledged_at=None)
        change = f"acknowledgement withdrawn by {action.by} at {at}"
    elif action.kind == "snooze":
        until = action.until or action.at + timedelta(hours=1)
        after = revise(base, snoozed_until=until, snoozed_by=action.by)
        change = f"snoozed until {until.strftime('%H:%M UTC')} by {action.by}"
    else:  # silence: the silence itself is on the silences topic; this is the record of it
        until = f" until {action.until.strftime('%Y-%m-%d %H:%M UTC')}" if action.until else ""
        after = base
        change = f"similar alerts silenced{until} by {action.by}"
    return after, [Intent("update", "editable", after, change=change)]


def escalate(incident: Incident, step: int, tags: tuple[str, ...], after: float, now: datetime) -> tuple[Incident, Intent]:
    """``incident`` with escalation step ``step`` fired, and the notification that reaches ``tags``."""
    from watcher.duration import format_duration

    fired = revise(incident, escalated=step + 1, updated_at=now)
    change = f"not acknowledged after {format_duration(after)}: escalated to {', '.join(tags)}"
    return fired, Intent("escalate", "all", fired, change=change, alert=incident.last_alert, tags=tags)


def fold(intents: list[Intent]) -> list[Intent]:
    """One incident's intents of one batch, folded: updates join the open or update before them."""
    out: list[Intent] = []
    for it in intents:
        prev = out[-1] if out else None
        if prev is not None and it.kind == "update" and prev.kind in ("open", "update"):
            audience: Audience = "all" if "all" in (prev.audience, it.audience) else "editable"
            change = "; ".join(c for c in (prev.change, it.change) if c)
            out[-1] = replace(prev, incident=it.incident, change=change, audience=audience,
                              alert=it.alert if prev.kind == "update" and it.alert else prev.alert)  # fmt: skip
        else:
            out.append(it)
    return out


def notifications(incident: Incident, intents: list[Intent], now: datetime) -> tuple[Incident, list[Notification]]:
    """Number ``intents`` (folded) in ``incident``'s episode: the notifications, and the incident after."""
    seq = incident.seq
    out: list[Notification] = []
    for it in fold(intents):
        seq += 1
        snapshot = revise(it.incident, seq=seq)
        out.append(Notification(
            key=notification_key(snapshot.id, snapshot.episode, seq), kind=it.kind, incident=snapshot,
            alert=it.alert, change=it.change, audience=it.audience, tags=it.tags, created_at=now,
        ))  # fmt: skip
    return revise(incident, seq=seq), out


def standalone(alert: Alert, now: datetime) -> Notification:
    """The notification an alert makes on its own (no incident table: tools and tests): an
    opening for an open alert, a resolution for a resolved one."""
    incident = open_incident(alert, now)
    if alert.kind == "resolved":
        incident = revise(incident, state="resolved", resolved_at=now)
    _, notes = notifications(incident, [Intent("resolve" if alert.kind == "resolved" else "open", "all", incident,
                                               alert=alert)], now)  # fmt: skip
    return notes[0]
