"""What a notification about an incident says, whatever the channel: the facts (state line,
where, how long, error codes, the jobs, links) as plain text, and the mail layout. Pure.

Sits in notify between the incident record (:class:`~watcher.events.Incident`) and each channel's
layout: :mod:`watcher.notify.cards` turns these facts into Slack Block Kit, :mod:`watcher.notify.mail`
sends :func:`mail_text`, :mod:`watcher.notify.webhook` puts :func:`job_links` in its document.
Every string from the cloud or from people (job messages, desktop names, user names) is hostile:
it goes through :func:`watcher.notify.render.sanitize` here, and each layout escapes for its
own markup on top. Times are UTC; a card lets Slack show them in the reader's time zone.

Imports the event contract and :mod:`watcher.notify.render` only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from urllib.parse import quote

import msgspec

from watcher.events import Incident, IncidentJob, Notification
from watcher.notify.render import iso_utc, sanitize, strip_controls, truncate

_FIELD = 200  # a name, a user, an error code
_MESSAGE = 300  # one job's error message, in a list of jobs

#: The first words of a notification, by kind (mail's first line, a thread reply's lead).
KIND_LEAD = {"open": "Opened", "update": "Updated", "resolve": "Resolved", "escalate": "Escalated",
             "remind": "Reminder: still firing"}  # fmt: skip


class Link(msgspec.Struct, frozen=True):
    title: str
    url: str


def clean(text: str | None, limit: int = _FIELD) -> str:
    """Hostile text made one safe line: controls stripped, mentions defused, cut to ``limit``."""
    return sanitize(" ".join(strip_controls(text or "").split()), limit)


def fmt_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``1 h 14 min``, ``2 d 3 h``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    m = s // 60
    if m < 60:
        return f"{m} min"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(h, 24)
    return f"{d} d {h} h" if h else f"{d} d"


def when(value: datetime, ref: datetime) -> str:
    """``08:02 UTC`` on ``ref``'s day, ``2026-11-23 08:02 UTC`` on another."""
    text = iso_utc(value)  # 2026-11-23T08:02:00Z
    day, clock = text[:10], text[11:16]
    return f"{clock} UTC" if day == iso_utc(ref)[:10] else f"{day} {clock} UTC"


TimeFormat = Callable[[datetime, datetime], str]


def duration(incident: Incident, now: datetime) -> float:
    end = incident.resolved_at or now
    return (end - incident.opened_at).total_seconds()


def state_line(incident: Incident, now: datetime, fmt: TimeFormat = when, who: Callable[[str], str] = clean) -> str:
    """One line on where the incident stands: resolved, acknowledged, snoozed, or firing."""
    if incident.state == "resolved":
        at = incident.resolved_at or incident.updated_at
        return f"Resolved at {fmt(at, now)} after {fmt_duration(duration(incident, now))}"
    if incident.state == "acknowledged":
        by = who(incident.acknowledged_by or "someone")
        at = f" at {fmt(incident.acknowledged_at, now)}" if incident.acknowledged_at else ""
        return f"Acknowledged by {by}{at}"
    line = f"Firing since {fmt(incident.opened_at, now)}"
    if incident.snoozed_until is not None and incident.snoozed_until > now:
        by = f" by {who(incident.snoozed_by)}" if incident.snoozed_by else ""
        line = f"Snoozed until {fmt(incident.snoozed_until, now)}{by} · " + line[0].lower() + line[1:]
    if incident.escalated:
        line += f" · escalated (step {incident.escalated})"
    return line


def title(incident: Incident) -> str:
    """The incident's one-line title: its own, else ``[SEVERITY] rule: subject``."""
    return clean(incident.title or f"[{incident.severity.upper()}] {incident.rule}: {incident.subject}", 250)


def where(incident: Incident) -> str:
    parts = [p for p in (incident.region, f"project {incident.project_id}" if incident.project_id else "") if p]
    return clean(" · ".join(parts)) or "-"


def error_codes(incident: Incident, limit: int = 8) -> list[str]:
    """The distinct error codes of the jobs still failing (all jobs, once resolved), in order."""
    jobs = [j for j in incident.jobs if j.firing] or list(incident.jobs)
    codes = list(dict.fromkeys(clean(j.error_code, 80) for j in jobs if j.error_code))
    return codes[:limit] + ([f"+{len(codes) - limit} more"] if len(codes) > limit else [])


def firing_jobs(incident: Incident) -> int:
    return sum(1 for j in incident.jobs if j.firing)


def job_count_line(incident: Incident) -> str:
    """``3 failing of 20 jobs`` (``more_jobs`` included), or ``1 job``."""
    total = len(incident.jobs) + incident.more_jobs
    noun = "job" if total == 1 else "jobs"
    if incident.state == "resolved":
        return f"{total} {noun}"
    return f"{firing_jobs(incident) + incident.more_jobs} failing of {total} {noun}"


def job_target(job: IncidentJob) -> str:
    """What the job acted on: desktop, volume, resource, pool or user (name and id), or ""."""
    e = job.entities
    for name, ident in ((e.desktop_name, e.desktop_id), (e.volume_name, e.volume_id),
                        (e.resource_name, e.resource_id), (e.desktop_pool_name, e.desktop_pool_id)):  # fmt: skip
        if name or ident:
            return clean(name or ident)
    return clean(e.user_name)


def job_status(job: IncidentJob) -> str:
    """``ABNORMAL → FAILED`` (or just ``FAILED``), and ``(recovered)`` once it stopped firing."""
    status = clean(job.status, 40)
    if job.prev_status and job.prev_status != job.status:
        status = f"{clean(job.prev_status, 40)} → {status}"
    return status + ("" if job.firing else " (recovered)")


def job_error(job: IncidentJob) -> str:
    return ": ".join(x for x in (clean(job.error_code, 80), clean(job.message, _MESSAGE)) if x)


def job_line(job: IncidentJob) -> str:
    """``createDesktops 8a7f… desk-01: ABNORMAL → FAILED — WKS.0001: quota exceeded`` (plain text)."""
    head = " ".join(x for x in (clean(job.job_type or job.source, 80), clean(job.job_id, 80), job_target(job)) if x)
    error = job_error(job)
    return f"{head}: {job_status(job)}" + (f" — {error}" if error else "")


def shown_jobs(incident: Incident, limit: int) -> tuple[list[IncidentJob], int]:
    """The first ``limit`` jobs, failing ones first (in their order), and how many are not shown."""
    ordered = [j for j in incident.jobs if j.firing] + [j for j in incident.jobs if not j.firing]
    return ordered[:limit], max(0, len(ordered) - limit) + incident.more_jobs


def job_link(job: IncidentJob, incident: Incident, templates: Mapping[str, str]) -> str | None:
    """The console URL of ``job`` from the ``[notify] links`` template of its source, or None.
    Every value is percent-encoded: job ids come from the cloud."""
    template = templates.get(job.source)
    if not template:
        return None
    values = {"region": incident.region, "project_id": incident.project_id, "job_id": job.job_id,
              "parent_job_id": job.parent_job_id or job.job_id, "source": job.source}  # fmt: skip
    return template.format(**{k: quote(v or "", safe="") for k, v in values.items()})


def incident_links(incident: Incident, templates: Mapping[str, str]) -> list[Link]:
    """The incident's links: the console page of its first job (failing first), if configured."""
    jobs, _ = shown_jobs(incident, 1)
    url = job_link(jobs[0], incident, templates) if jobs else None
    return [Link("Open in console", url)] if url else []


def kind_lead(notification: Notification) -> str:
    """``Escalated (step 2)``, ``Resolved``…: what this notification is."""
    lead = KIND_LEAD[notification.kind]
    if notification.kind == "escalate":
        lead += f" (step {notification.incident.escalated})" if notification.incident.escalated else ""
    return lead


def change_line(notification: Notification) -> str:
    """``Updated: APS-02 FAILED``: the kind and what changed (sanitized, one line)."""
    change = clean(notification.change, 500)
    return f"{kind_lead(notification)}: {change}" if change else kind_lead(notification)


def mail_subject(notification: Notification) -> str:
    """The incident's title, the same for all its mail (``Re: `` after the first): mail clients
    that thread by subject (Gmail, Outlook) need it stable."""
    base = title(notification.incident)
    return base if notification.kind == "open" else f"Re: {base}"


def mail_text(notification: Notification, *, links: Mapping[str, str] = {}, jobs: int = 25,
              limit: int = 4000) -> tuple[str, str]:
    """The (subject, body) of the mail about ``notification``: what changed, the facts, the jobs."""
    inc, now = notification.incident, notification.created_at
    rows = [("State", state_line(inc, now)), ("Severity", inc.severity), ("Rule", clean(inc.rule)),
            ("Where", where(inc)), ("Duration", fmt_duration(duration(inc, now))),
            ("Errors", ", ".join(error_codes(inc)))]  # fmt: skip
    lines = [change_line(notification), ""]
    lines += [f"{label + ':':<10}{value}" for label, value in rows if value]
    shown, more = shown_jobs(inc, jobs)
    if shown:
        lines += ["", f"Jobs ({job_count_line(inc)}):"]
        lines += [f"  - {job_line(j)}" for j in shown]
        if more:
            lines.append(f"  …and {more} more")
    found = incident_links(inc, links)
    if found:
        lines += ["", *[f"{link.title}: {link.url}" for link in found]]
    alert = notification.alert or inc.last_alert
    if alert is not None and alert.body and not alert.default_body:
        lines += ["", sanitize(alert.body, 2000)]
    footer = (f"\n\n--\nIncident {clean(inc.id, 500)}, episode {inc.episode}, notification {inc.seq} "
              f"({notification.kind}), {iso_utc(now)}, by watcher.")
    body = truncate("\n".join(lines), max(1, limit - len(footer))) + footer
    return mail_subject(notification), body
