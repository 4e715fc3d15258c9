"""The incident card in Slack Block Kit, and the short thread replies under it. Pure.

Sits in notify between :mod:`watcher.notify.summary` (the facts, sanitized) and
:mod:`watcher.notify.slack` (which posts and edits). Slack's ``mrkdwn`` treats ``<…>`` as
links and mentions (``<!channel>``, ``<@U1>``, ``<!subteam^S1>``) and ``&`` as an entity, so
every fact from the cloud or from people goes through :func:`mrkdwn` — Slack's documented
escaping of ``&``, ``<``, ``>`` — after :func:`~watcher.notify.summary.clean` has stripped
control characters and defused ``@here``-style words; only this module writes ``<…>`` tokens,
and only with values it made (a date, a user-group id checked at config load, a console URL
whose values are percent-encoded). Text is never a template: ``{{7*7}}`` stays ``{{7*7}}``.

Block Kit limits kept here: header 150 characters, section text 3,000, a field 2,000, button
text 75 and value 2,000, confirm texts 100/300/30.

Buttons: ``action_id`` says what (:data:`ACTIONS`), ``value`` is the incident id.
Imports the event contract, :mod:`watcher.notify.summary` and :mod:`watcher.notify.render`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from watcher.events import Incident, Notification
from watcher.notify import summary as s
from watcher.notify.render import sanitize, truncate

Block = dict[str, Any]

#: action_id → (action kind, seconds): what each button does. The incident id is the value.
ACTIONS: dict[str, tuple[str, int]] = {
    "watcher_ack": ("ack", 0),
    "watcher_unack": ("unack", 0),
    "watcher_snooze_1h": ("snooze", 3600),
    "watcher_snooze_4h": ("snooze", 4 * 3600),
    "watcher_silence_1h": ("silence", 3600),
    "watcher_silence_4h": ("silence", 4 * 3600),
    "watcher_silence_24h": ("silence", 24 * 3600),
}
ACTIONS_BLOCK = "watcher_actions"
_VALUE_LIMIT = 2000
_SECTION = 3000
_HEADER = 150

SEVERITY_MARK = {"critical": ":red_circle:", "error": ":large_orange_circle:", "warning": ":large_yellow_circle:",
                 "info": ":large_blue_circle:"}  # fmt: skip
KIND_MARK = {"update": ":arrows_counterclockwise:", "resolve": ":white_check_mark:", "escalate": ":rotating_light:",
             "remind": ":alarm_clock:", "open": ":large_orange_circle:"}  # fmt: skip


class Card(msgspec.Struct, frozen=True):
    """What ``chat.postMessage``/``chat.update`` take: fallback ``text`` and the ``blocks``."""

    text: str
    blocks: list[Block]


def mrkdwn(text: str) -> str:
    """Slack's escaping for text inside mrkdwn: ``&`` ``<`` ``>`` become entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def safe(text: str | None, limit: int = 200) -> str:
    """Hostile text → one inert mrkdwn line (cleaned, then escaped)."""
    return mrkdwn(s.clean(text, limit))


def slack_date(value: datetime, ref: datetime) -> str:
    """A date token Slack shows in the reader's time zone (``today at 8:02 AM``), UTC as fallback."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return f"<!date^{int(aware.timestamp())}^{{date_short_pretty}} at {{time}}|{s.when(value, ref)}>"


def _text(kind: str, text: str) -> dict[str, Any]:
    return {"type": kind, "text": text} | ({"emoji": True} if kind == "plain_text" else {})


def _section(text: str) -> Block:
    return {"type": "section", "text": _text("mrkdwn", truncate(text, _SECTION))}


def header_text(incident: Incident) -> str:
    """``ERROR · [FAILED] createDesktops in project 0bec… (cn-north-4)`` (plain text)."""
    word = "RESOLVED" if incident.state == "resolved" else incident.severity.upper()
    return truncate(f"{word} · {s.title(incident)}", _HEADER)


def state_text(incident: Incident, now: datetime) -> str:
    """The card's state line, in mrkdwn, times as Slack date tokens."""
    return s.state_line(incident, now, fmt=slack_date, who=safe)


def _facts(incident: Incident, now: datetime) -> Block:
    lasted = "Lasted" if incident.state == "resolved" else "Firing for"
    fields = [("Severity", incident.severity), ("Where", mrkdwn(s.where(incident))),
              (lasted, s.fmt_duration(s.duration(incident, now))), ("Jobs", s.job_count_line(incident)),
              ("Rule", safe(incident.rule))]  # fmt: skip
    codes = s.error_codes(incident)
    if codes:
        fields.append(("Error codes", ", ".join(mrkdwn(c) for c in codes)))
    return {"type": "section", "fields": [_text("mrkdwn", truncate(f"*{k}*\n{v}", 2000)) for k, v in fields]}


def jobs_text(incident: Incident, limit: int, links: Mapping[str, str] = {}) -> str:
    """The jobs as mrkdwn bullets (failing first), then ``…and N more``; within one section's limit."""
    shown, more = s.shown_jobs(incident, limit)
    lines: list[str] = []
    budget = _SECTION - 40  # room for the "…and N more" line
    for i, job in enumerate(shown):
        job_id = safe(job.job_id, 80)
        url = s.job_link(job, incident, links)
        ident = f"<{mrkdwn(url)}|{job_id}>" if url else job_id
        head = " ".join(x for x in (f"*{safe(job.job_type or job.source, 80)}*", ident, mrkdwn(s.job_target(job))) if x)
        error = mrkdwn(s.job_error(job))
        line = f"• {head}: {mrkdwn(s.job_status(job))}" + (f" — {error}" if error else "")
        if sum(len(x) + 1 for x in lines) + len(line) > budget:
            more += len(shown) - i
            break
        lines.append(line)
    if more:
        lines.append(f"…and {more} more")
    return "\n".join(lines)


def _buttons(incident: Incident) -> Block | None:
    if incident.state == "resolved" or len(incident.id) > _VALUE_LIMIT:
        return None  # a resolved card has nothing left to act on; an id Slack cannot carry gets no buttons
    ack = ("watcher_unack", "Unacknowledge", None) if incident.state == "acknowledged" else \
        ("watcher_ack", "Acknowledge", "primary")
    specs = [ack, ("watcher_snooze_1h", "Snooze 1h", None), ("watcher_snooze_4h", "Snooze 4h", None),
             ("watcher_silence_1h", "Silence similar 1h", None), ("watcher_silence_4h", "Silence similar 4h", None),
             ("watcher_silence_24h", "Silence similar 24h", None)]  # fmt: skip
    elements = []
    for action_id, label, style in specs:
        button: Block = {"type": "button", "action_id": action_id, "text": _text("plain_text", label),
                         "value": incident.id}  # fmt: skip
        if style:
            button["style"] = style
        if action_id.startswith("watcher_silence"):
            hours = ACTIONS[action_id][1] // 3600
            button["confirm"] = {
                "title": _text("plain_text", f"Silence for {hours}h?"),
                "text": _text("mrkdwn", truncate(f"New alerts of rule *{safe(incident.rule, 80)}* for the same job "
                                                 f"type are muted for {hours} h. The silence is recorded with "
                                                 "your name.", 300)),
                "confirm": _text("plain_text", "Silence"),
                "deny": _text("plain_text", "Cancel"),
            }
        elements.append(button)
    return {"type": "actions", "block_id": ACTIONS_BLOCK, "elements": elements}


def card(notification: Notification, *, jobs: int = 10, links: Mapping[str, str] = {}) -> Card:
    """The incident card as ``notification`` left the incident: header, facts, jobs, state, buttons."""
    inc, now = notification.incident, notification.created_at
    blocks: list[Block] = [{"type": "header", "text": _text("plain_text", header_text(inc))}, _facts(inc, now)]
    listed = jobs_text(inc, jobs, links)
    if listed:
        blocks.append(_section(listed))
    alert = notification.alert or inc.last_alert
    if alert is not None and alert.body and not alert.default_body:  # the rule's own words
        blocks.append(_section(mrkdwn(sanitize(alert.body, 1500))))
    context = [_text("mrkdwn", state_text(inc, now))]
    context += [_text("mrkdwn", f"<{mrkdwn(link.url)}|{link.title}>") for link in s.incident_links(inc, links)]
    blocks.append({"type": "context", "elements": context})
    buttons = _buttons(inc)
    if buttons:
        blocks.append(buttons)
    mark = KIND_MARK["resolve"] if inc.state == "resolved" else SEVERITY_MARK.get(inc.severity, "")
    text = truncate(f"{mark} {mrkdwn(header_text(inc))} — {mrkdwn(s.state_line(inc, now))}", 3000)
    return Card(text=text, blocks=blocks)


def reply_text(notification: Notification, mention_group: str = "") -> str:
    """The short thread reply saying what changed; an escalation mentions ``mention_group``."""
    line = f"{KIND_MARK.get(notification.kind, '')} {mrkdwn(s.change_line(notification))}".strip()
    if notification.kind == "escalate" and mention_group:
        line = f"<!subteam^{mention_group}> {line}"
    return line
