"""Alert → (title, body) as plain text, and making untrusted text safe to send. Pure.

Job fields (messages, names, error text) come from the cloud and from whoever named the
desktop or volume, so every title and body goes through :func:`sanitize` before it leaves:

* control characters (except newline and tab) and bidi overrides are removed — they
  garble terminals and mail clients and can disguise text;
* chat mentions are defused. We send ``body_format=TEXT`` and Apprise escapes per
  channel: Slack gets ``<``/``>``/``&`` entity-escaped, HTML email gets HTML-escaped.
  Discord is not escaped at all: a plain-text ``@everyone``/``@here`` in the content pings
  the whole server, and ``<@id>``/``<@&id>`` ping users and roles. So we insert a zero-width
  space (U+200B) after the ``@`` of ``@everyone``/``@here``/``@channel``/``@all`` and after
  the ``<`` of ``<!…>``/``<@…>``/``<#…>`` — it renders the same, but no longer matches;
* it is cut to a limit with a visible marker, because chat APIs reject long messages.

Each kind of channel gets the layout that reads best there, when the rule left the body to
the default (:attr:`Alert.default_body`): **chat** (Slack, Discord, Telegram, Teams, SMS…)
a compact body — status, error, what failed, job id, where; **mail** the full body and a
footer with the alert key and time (what one quotes in a ticket); **webhook** (``json://``,
``xml://``, ``form://``, ``console://``) the full body. A rule's own body, and the bodies of
stuck, burst, share and grouped alerts, go out as written on every channel (mail adds its
footer).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from watcher.events import Alert, IncidentJob, JobEvent, Notification
from watcher.wording import event_status, job_type_name

ChannelKind = Literal["chat", "mail", "webhook"]

_WEBHOOK_PROTOCOLS = frozenset({"json", "jsons", "xml", "xmls", "form", "forms", "console"})
_MAIL_PROTOCOLS = frozenset({"mailto", "mailtos", "mailgun", "sendgrid", "ses", "sparkpost", "smtp2go", "brevo",
                             "resend", "o365", "azure", "postmark", "mailjet", "sendpulse"})  # fmt: skip

ZWSP = "\u200b"

# C0/C1 controls except \t and \n, DEL, and the bidi embedding/override/isolate marks.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_AT_MENTION = re.compile(r"@(?=(?:everyone|here|channel|all|group)\b)", re.IGNORECASE)
_BRACKET_MENTION = re.compile(r"<(?=[!@#])")

_LABEL_WIDTH = 10


def strip_controls(text: str) -> str:
    """``text`` without control characters other than newline and tab (CRLF becomes LF)."""
    return _CONTROLS.sub("", text.replace("\r\n", "\n"))


def neutralize_mentions(text: str) -> str:
    """``text`` with Slack/Discord mention syntax broken by a zero-width space."""
    return _BRACKET_MENTION.sub("<" + ZWSP, _AT_MENTION.sub("@" + ZWSP, text))


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in "… (truncated, N more characters)"."""
    if len(text) <= limit:
        return text
    keep = limit
    for _ in range(3):  # the marker's length depends on N, which depends on the marker
        marker = f"… (truncated, {len(text) - keep} more characters)"
        keep = max(0, limit - len(marker))
    marker = f"… (truncated, {len(text) - keep} more characters)"
    return (text[:keep] + marker) if len(marker) <= limit else text[:limit]


def sanitize(text: str, limit: int) -> str:
    """Untrusted text made safe to send: controls stripped, mentions defused, cut to ``limit``."""
    return truncate(neutralize_mentions(strip_controls(text)), limit)


def short_id(value: str, keep: int = 4) -> str:
    """``0bec…`` for long ids, so a title stays readable; the body carries the full id."""
    return value if len(value) <= keep + 1 else value[:keep] + "…"


def iso_utc(value: datetime) -> str:
    """``2026-11-23T12:00:00Z``; a naive time is taken to be UTC already."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _headline(alert: Alert) -> str:
    event = alert.event
    if alert.kind == "resolved":
        return "RESOLVED"
    return event.status.upper() if event.phase == "other" else event.phase.upper()


def default_title(alert: Alert) -> str:
    """``[FAILED] createDesktops in project 0bec… (cn-north-4)``."""
    event = alert.event
    job = job_type_name(event.source, event.job_type)
    return f"[{_headline(alert)}] {job} in project {short_id(event.project_id)} ({event.region})"


def _pair(name: str | None, ident: str | None) -> str | None:
    if name and ident and name != ident:
        return f"{name} ({ident})"
    return name or ident


def _status_line(event: JobEvent) -> str:
    if event.source == "script" and event.counts is not None and event.counts.failed:
        return event_status(event)  # "2 of 5 desktops failed (task RUNNING → FINISH)", not a bare FINISH
    line = f"{event.prev_status or '(new)'} → {event.status}"
    # The phase helps when the API's word is opaque ("0", "FINISH"); "other" says nothing.
    if event.phase != "other" and event.status.upper() != event.phase.upper():
        line += f" ({event.phase})"
    if event.change == "vanished":
        line += ", no longer listed by the API"
    return line


def default_lines(alert: Alert) -> list[tuple[str, str]]:
    """The labelled facts of the default body, in display order; empty facts are left out."""
    e, ent = alert.event, alert.event.entities
    error = ": ".join(x for x in (e.error_code, e.message) if x)
    job_id = e.job_id + (f" (parent {e.parent_job_id})" if e.parent_job_id else "")
    volume = _pair(ent.volume_name, ent.volume_id)
    if volume and ent.size_gb is not None:
        volume += f", {ent.size_gb} GB"
    counts = e.counts
    rows: list[tuple[str, str | None]] = [
        ("Job", f"{job_type_name(e.source, e.job_type) if e.job_type else '-'} ({e.source})"),
        ("Status", _status_line(e)),
        ("Project", e.project_id),
        ("Region", e.region),
        ("Job ID", job_id),
        ("Began", iso_utc(e.begin_time) if e.begin_time else None),
        ("Ended", iso_utc(e.end_time) if e.end_time else None),
        ("Error", error or None),
        ("Desktop", _pair(ent.desktop_name, ent.desktop_id)),
        ("User", ent.user_name),
        ("Pool", _pair(ent.desktop_pool_name, ent.desktop_pool_id)),
        ("Volume", volume),
        ("Resource", _pair(ent.resource_name, ent.resource_id)),
        ("Scripts", ", ".join(ent.scripts) or None),
        ("Tasks", f"{counts.success} succeeded, {counts.failed} failed, {counts.skipped} skipped" if counts else None),
        ("Seen", f"{alert.count} times" if alert.count > 1 else None),
        ("Rule", f"{alert.rule} ({alert.severity})"),
    ]
    return [(label, value) for label, value in rows if value]


def default_body(alert: Alert) -> str:
    """Plain-text body: one ``Label:    value`` line per fact, readable in Slack and email."""
    lines = [f"{label + ':':<{_LABEL_WIDTH}}{value}" for label, value in default_lines(alert)]
    if alert.kind == "resolved":
        lines.insert(0, f"Resolved: {alert.event.job_type or 'the job'} is now {alert.event.status}.")
    return "\n".join(lines)


def channel_kind(plugin: Any) -> ChannelKind:
    """What kind of channel an Apprise service is, from its URL schemes."""
    schemes = {str(getattr(plugin, a, None) or "") for a in ("protocol", "secure_protocol")}
    for attr in ("protocol", "secure_protocol"):  # some plugins declare a tuple of schemes
        value = getattr(plugin, attr, None)
        if isinstance(value, tuple | list):
            schemes |= {str(v) for v in value}
    if schemes & _WEBHOOK_PROTOCOLS:
        return "webhook"
    if schemes & _MAIL_PROTOCOLS:
        return "mail"
    return "chat"


_CHAT_FACTS = ("Status", "Error", "Desktop", "Pool", "Volume", "Resource", "Tasks", "Job ID")


def chat_body(alert: Alert) -> str:
    """The compact default body for chat: what happened, to what, and where, in a few lines."""
    facts = dict(default_lines(alert))
    lines = [f"{label}: {facts[label]}" for label in _CHAT_FACTS if label in facts]
    e = alert.event
    lines.append(f"{e.source} · project {e.project_id} ({e.region}) · rule {alert.rule}")
    return "\n".join(lines)


def mail_footer(alert: Alert) -> str:
    """What one quotes in a ticket: the alert key and when it fired."""
    return f"\n\n--\nAlert {alert.key}, fired {iso_utc(alert.fired_at)} by watcher."


def body_for(alert: Alert, kind: ChannelKind) -> str:
    """The body for a ``kind`` channel: chat gets the compact layout of a default body."""
    body = alert.body or default_body(alert)
    if kind == "chat" and (alert.default_body or not alert.body):
        return chat_body(alert)
    if kind == "mail":
        return body + mail_footer(alert)
    return body


def render(
    alert: Alert, *, title_limit: int = 250, body_limit: int = 4000, kind: ChannelKind = "webhook"
) -> tuple[str, str]:
    """The (title, body) to send on a ``kind`` channel, sanitized and cut to limits."""
    title = alert.title or default_title(alert)
    body = body_for(alert, kind)
    # A title is one line everywhere (mail Subject, chat headline).
    title = " ".join(strip_controls(title).split())
    return sanitize(title, title_limit), sanitize(body, body_limit)


# -- notifications about incidents ----------------------------------------------------------

#: Jobs an incident section lists by name (the rest are counted).
SECTION_JOBS = 20


def notification_alert(notification: Notification) -> Alert:
    """The alert whose text a non-editable channel sends for ``notification``: the alert behind
    the change, marked as an escalation or a resolution where that is what it is."""
    inc = notification.incident
    base = notification.alert or inc.last_alert or _alert_of(inc)
    if notification.kind == "resolve" and base.kind != "resolved":
        return msgspec.structs.replace(
            base, kind="resolved", title=f"[RESOLVED] {inc.title}", default_body=False,
            body=f"Resolved: every job of this incident moved on.\nIncident {inc.id}",
        )  # fmt: skip
    if notification.kind == "escalate":
        return msgspec.structs.replace(
            base, title=f"[ESCALATED] {base.title}", default_body=False,
            body=f"{notification.change}.\n\n{base.body or default_body(base)}",
        )  # fmt: skip
    return base


def _alert_of(inc: Any) -> Alert:
    """An alert standing for an incident that carries none (a hand-made record): its first job."""
    from watcher.events import JobEvent, job_key

    j = inc.jobs[0] if inc.jobs else None
    event = JobEvent(
        source=j.source if j else inc.source, region=inc.region, project_id=inc.project_id,
        job_key=j.job_key if j else job_key(inc.source, inc.region, inc.project_id, inc.subject),
        job_id=j.job_id if j else inc.subject, parent_job_id=j.parent_job_id if j else None,
        job_type=j.job_type if j else "", status=j.status if j else inc.state.upper(),
        phase=j.phase if j else "other", error_code=j.error_code if j else None, message=j.message if j else None,
        entities=j.entities if j else _no_entities(),
        observed_at=inc.updated_at,
    )  # fmt: skip
    return Alert(key=inc.id, rule=inc.rule, severity=inc.severity, tags=inc.tags, title=inc.title, body="",
                 event=event, fired_at=inc.opened_at, incident=inc.id, default_body=True)  # fmt: skip


def _no_entities() -> Any:
    from watcher.events import Entities

    return Entities()


def _job_line(job: IncidentJob) -> str:
    ent = job.entities
    name = ent.desktop_name or ent.volume_name or ent.resource_name
    error = ": ".join(x for x in (job.error_code, job.message) if x)
    parts = [job.job_id, f"({name})" if name else None, job.status, error or None]
    return "- " + " ".join(p for p in parts if p)


def incident_section(notification: Notification) -> str:
    """"In this incident" — the jobs an opening, reminder or escalation stands for, when it
    covers more than the one its alert is about (a job and its failed sub-jobs: one page, all
    named). Empty otherwise, and for groups, whose own message lists their jobs."""
    inc = notification.incident
    total = len(inc.jobs) + inc.more_jobs
    if notification.kind not in ("open", "remind", "escalate") or inc.kind == "group" or total <= 1:
        return ""
    lines = [f"In this incident ({total} jobs):", *(_job_line(j) for j in inc.jobs[:SECTION_JOBS])]
    if total > SECTION_JOBS:
        lines.append(f"…and {total - SECTION_JOBS} more.")
    return "\n".join(lines)
