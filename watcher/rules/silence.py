"""Silences: mute the alerts a CEL expression matches, for a span of time, with a reason.

A silence matches on the alert's event fields (the same names rules use) plus ``rule``,
``severity`` and ``kind`` (firing | resolved)::

    silences:
      - match: 'project_id == "0bec…" && job_type == "createDesktops"'
        starts: 2026-11-23T08:00:00Z
        for: 2h                      # or ends: …; neither means until removed
        comment: planned pool rebuild
        created_by: ops

:class:`Silence` is plain data (JSON-encodable) so silences can live in a Kafka table that
every worker reads; the compiled CEL program is cached by its text, never stored. A
silenced alert is not dropped without trace: :func:`silenced_by` names the silence, and the
pipeline records it. Pure: imports the CEL machinery and the event contract.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cel
import msgspec

from watcher.duration import parse_duration
from watcher.errors import RuleError
from watcher.events import Alert, Incident
from watcher.rules import marks
from watcher.rules.expr import compile_expression, make_context
from watcher.rules.fields import event_context
from watcher.rules.schema import SourceSilence

#: Names a silence sees beyond the event's fields, with sample values for the load-time check.
ALERT_FIELDS: dict[str, Any] = {"rule": "sample", "severity": "error", "kind": "firing"}


class Silence(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One silence: what it matches, when it applies, and who made it why."""

    id: str
    match: str
    starts: datetime | None = None  # None: since always
    ends: datetime | None = None  # None: until expired
    comment: str = ""
    created_by: str = ""
    origin: str = ""  # "file.yaml:12" for a file silence, "cli" for one made at run time

    def active(self, now: datetime) -> bool:
        return (self.starts is None or self.starts <= now) and (self.ends is None or now < self.ends)

    def describe(self) -> str:
        span = f"{_when(self.starts, 'always')} → {_when(self.ends, 'until expired')}"
        who = f" by {self.created_by}" if self.created_by else ""
        note = f": {self.comment}" if self.comment else ""
        return f"silence {self.id} ({self.match}; {span}{who}){note}"


def _when(value: datetime | None, default: str) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else default


@functools.lru_cache(maxsize=1024)
def compiled(match: str) -> tuple[cel.Program, frozenset[str]]:
    """The CEL program of a match expression (raises RuleError with line/col in the text)."""
    return compile_expression(match, ALERT_FIELDS)


def matches(silence: Silence, alert: Alert) -> bool:
    """True when ``silence``'s expression holds for ``alert`` (an evaluation error is no match)."""
    program, functions = compiled(silence.match)
    variables = {**event_context(alert.event), "rule": alert.rule, "severity": alert.severity, "kind": alert.kind}
    try:
        return program.execute(make_context(variables, functions)) is True
    except Exception:  # data-dependent: a null field in arithmetic, say
        return False


def silenced_by(alert: Alert, silences: Iterable[Silence], now: datetime) -> Silence | None:
    """The first active silence that matches ``alert``, or None."""
    for silence in silences:
        if silence.active(now) and matches(silence, alert):
            return silence
    return None


def new_silence(
    match: str,
    now: datetime,
    *,
    duration: str | float | None = None,
    comment: str = "",
    created_by: str = "",
    id: str | None = None,
) -> Silence:
    """A run-time silence starting at ``now`` (``watcher silence add``); the match must compile."""
    compiled(match)
    ends = now + timedelta(seconds=parse_duration(duration)) if duration is not None else None
    sid = id or hashlib.sha256(f"{match}\x00{now.isoformat()}".encode()).hexdigest()[:12]
    return Silence(id=sid, match=match, starts=now, ends=ends, comment=comment, created_by=created_by, origin="cli")


def cel_string(value: str) -> str:
    """``value`` as a CEL string literal. JSON's escapes (``\\"``, ``\\\\``, ``\\uXXXX`` for controls)
    are CEL's too, so hostile text (a job type from the cloud) stays one literal."""
    return json.dumps(value, ensure_ascii=False)


def similar_match(rule: str, job_types: Iterable[str]) -> str:
    """The match of "Silence similar": this rule and these job types (any, when none is known)."""
    types = sorted({t for t in job_types if t})
    expr = f"rule == {cel_string(rule)}"
    if len(types) == 1:
        expr += f" && job_type == {cel_string(types[0])}"
    elif types:
        expr += f" && job_type in [{', '.join(cel_string(t) for t in types)}]"
    return expr


def similar_silence(incident: Incident, *, id: str, by: str, at: datetime, until: datetime) -> Silence:
    """The silence a "Silence similar" click on ``incident``'s card creates: its rule and job
    type(s), from ``at`` to ``until``, ``created_by`` the clicker (an ``Action`` with kind silence)."""
    match = similar_match(incident.rule, (j.job_type for j in incident.jobs))
    compiled(match)
    return Silence(id=id, match=match, starts=at, ends=until, comment=f"silence similar to incident {incident.id}",
                   created_by=by, origin="slack")


def expire(silence: Silence, now: datetime) -> Silence:
    """The silence ended at ``now`` (kept, so what it muted stays explained)."""
    return msgspec.structs.replace(silence, ends=min(silence.ends or now, now))


def silence_from_spec(item: SourceSilence) -> Silence:
    """A file silence, checked: its match compiles, its span makes sense. Errors point at the key."""
    spec = item.spec
    try:
        compiled(spec.match)
    except RuleError as e:
        node = marks.child(item.node, "match") or item.node
        line, col = marks.text_position(node, e.line, e.col)
        raise RuleError(e.reason, file=item.file, line=line, col=col) from None
    starts, ends = _utc(spec.starts), _utc(spec.ends)
    if spec.for_ is not None:
        if ends is not None:
            raise item.error("for", "a silence has 'ends' or 'for', not both")
        if starts is None:
            raise item.error("for", "'for' needs 'starts' in a file (a run-time silence starts now)")
        try:
            ends = starts + timedelta(seconds=parse_duration(spec.for_))
        except ValueError as e:
            raise item.error("for", f"for: {e}") from None
    if starts is not None and ends is not None and ends <= starts:
        raise item.error("ends", "a silence must end after it starts")
    origin = f"{item.file}:{item.line}"
    return Silence(
        id=spec.id or f"{Path(item.file).name}:{item.line}",
        match=spec.match,
        starts=starts,
        ends=ends,
        comment=spec.comment,
        created_by=spec.created_by,
        origin=origin,
    )


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)  # YAML timestamps without an offset are UTC
