"""Grouping: many alerts of one rule become one message per group of ``group_by`` fields.

::

    - name: desktop-creation-failed
      when: FAILED createDesktops
      group_by: [project_id, job_type, parent_job_id]
      group_wait: 30s        # hold a new group's first alert this long for company
      group_interval: 5m     # then send what else arrived at most this often

As in Alertmanager: a group's first alert waits ``group_wait``; everything that arrived by
then goes out as one message; later arrivals wait until ``group_interval`` after the last
message. A group with nothing new for ``group_interval`` after its last message is closed
(the next alert opens a new one and waits ``group_wait`` again). A message for one alert
is that alert, unchanged; for more, :func:`render` writes the count, the error codes with
counts and the first :data:`FIRST_JOBS` jobs.

State: one :class:`Group` per (rule, kind, group values), keyed by :attr:`Group.key`. The
pending alerts are kept until their message goes out so that a silence or an inhibition
that starts meanwhile still mutes them. Pure.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import msgspec

from watcher.events import MAX_MEMBERS, Alert
from watcher.rules.burst import describe, group_values
from watcher.rules.options import Grouping

#: Jobs listed by name in a grouped message.
FIRST_JOBS = 10
NO_CODE = "(no error code)"


class Group(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One group: its identity, its pending alerts, and when it last sent."""

    key: str
    rule: str
    values: dict[str, str]
    opened: datetime
    pending: list[Alert] = msgspec.field(default_factory=list)
    last_flush: datetime | None = None
    flushes: int = 0


def group_key(alert: Alert, grouping: Grouping) -> tuple[str, dict[str, str]]:
    """(state key, group values) of ``alert``: rule, kind and the ``group_by`` values."""
    values = group_values(alert.event, grouping.by)
    return "|".join([alert.rule, alert.kind, *(f"{k}={v}" for k, v in values.items())]), values


def add(group: Group | None, alert: Alert, grouping: Grouping, now: datetime) -> Group:
    """``group`` (a new one when None) with ``alert`` pending."""
    if group is None:
        key, values = group_key(alert, grouping)
        return Group(key=key, rule=alert.rule, values=values, opened=now, pending=[alert])
    return Group(
        key=group.key, rule=group.rule, values=group.values, opened=group.opened,
        pending=[*group.pending, alert], last_flush=group.last_flush, flushes=group.flushes,
    )  # fmt: skip


def due_at(group: Group, grouping: Grouping) -> datetime:
    """When the group next sends (with alerts pending) or closes (without)."""
    if group.last_flush is None:
        return group.opened + timedelta(seconds=grouping.wait)
    return group.last_flush + timedelta(seconds=grouping.interval)


def due(group: Group, grouping: Grouping, now: datetime) -> bool:
    return now >= due_at(group, grouping)


def flush(group: Group, grouping: Grouping, now: datetime) -> tuple[Group | None, list[Alert]]:
    """Take the pending alerts out of a due group: (the group after, or None if closed; the alerts)."""
    if not group.pending:
        return None, []  # nothing new for a whole interval: close
    after = Group(key=group.key, rule=group.rule, values=group.values, opened=group.opened,
                  last_flush=now, flushes=group.flushes + 1)  # fmt: skip
    return after, list(group.pending)


def incident_of(group: Group) -> str:
    """The incident a group's messages are about: the group, from its opening (a group that closed
    and opens again later is a new incident)."""
    return f"{group.key}|group@{group.opened.strftime('%Y%m%dT%H%M%SZ')}"


def render(group: Group, alerts: list[Alert], now: datetime, seq: int) -> Alert:
    """One message for ``alerts`` (the ones of a flush still to send); one alert is itself, as the group's."""
    members = tuple(a.event for a in alerts[:MAX_MEMBERS])
    if len(alerts) == 1:
        return msgspec.structs.replace(alerts[0], incident=incident_of(group), incident_kind="group", members=members)
    first, n = alerts[0], len(alerts)
    codes = Counter(a.event.error_code or NO_CODE for a in alerts)
    code_text = ", ".join(f"{code} ×{k}" for code, k in sorted(codes.items(), key=lambda c: (-c[1], c[0])))
    lines = [
        f"{n} alerts of rule {group.rule}, grouped by {describe(group.values)}.",
        f"Error codes: {code_text}",
        f"First {min(n, FIRST_JOBS)} jobs:",
        *(f"- {_job_line(a)}" for a in alerts[:FIRST_JOBS]),
    ]
    if n > FIRST_JOBS:
        lines.append(f"…and {n - FIRST_JOBS} more.")
    return Alert(
        key=f"{group.key}|group@{group.opened.strftime('%Y%m%dT%H%M%SZ')}#{seq}",
        rule=group.rule,
        kind=first.kind,
        severity=first.severity,
        tags=first.tags,
        title=f"{first.title} (+{n - 1} more)",
        body="\n".join(lines),
        event=first.event,
        count=sum(a.count for a in alerts),
        fired_at=now,
        incident=incident_of(group),
        incident_kind="group",
        members=members,
    )


def _job_line(alert: Alert) -> str:
    e = alert.event
    label = (
        e.entities.desktop_name or e.entities.volume_name or e.entities.resource_name
        or e.entities.desktop_id or e.entities.volume_id
    )  # fmt: skip
    parts = [e.job_id, label, e.status, e.error_code, e.message]
    return " ".join(p for p in parts if p)
