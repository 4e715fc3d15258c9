"""``watcher explain JOB_KEY --config FILE``: one job's story, from what the topics hold.

The offline explain (:func:`watcher.rules.pipeline.explain`) dry-runs an events file. This
one asks the running deployment: it reads, to their current ends,

* ``<prefix>.events`` — the job's status changes as published (and the rules in the
  config's rule files that match each one now);
* ``<prefix>.alerts`` / ``.grouping`` — the alerts fired for the job, and those held in a
  group (with the group's messages);
* ``<prefix>.decisions`` — what was silenced or inhibited, and why;
* ``<prefix>.notifications`` and the delivered table's changelog — what each incident the job
  is part of told whom: opened, updated, resolved, escalated; delivered per target, or
  dead-lettered;

and prints, per event, the rules it matched, per alert what became of it, and per incident its
notifications. It reads each topic whole, so on a large deployment it takes a while; it
changes nothing. The story is data first (:func:`collect`, :func:`story_lines`) and text
second (:func:`format_story`), so the status page (:mod:`watcher.ui`) tells the same story
from its in-memory view.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from watcher import events as ev
from watcher.app.preflight import tool_connection
from watcher.app.topics import read_topic
from watcher.config import Config
from watcher.rules import grouping
from watcher.rules.engine import RuleSet, load_book
from watcher.rules.templates import utc


@dataclass
class Story:
    """What the topics hold about one job."""

    job_key: str
    events: list[ev.JobEvent] = field(default_factory=list)
    alerts: dict[str, ev.Alert] = field(default_factory=dict)  # alert key -> alert (on .alerts)
    grouped: dict[str, ev.Alert] = field(default_factory=dict)  # alert key -> alert (on .grouping)
    decisions: dict[str, ev.Decision] = field(default_factory=dict)  # alert key -> the latest decision
    messages: dict[str, list[str]] = field(default_factory=dict)  # group key -> its message keys
    marks: dict[str, str] = field(default_factory=dict)  # notification key -> "1" (delivered) | "dead"
    targets: dict[str, list[str]] = field(default_factory=dict)  # notification key -> targets that accepted
    notifications: dict[str, list[ev.Notification]] = field(default_factory=dict)  # incident -> its notes


@dataclass(frozen=True)
class Line:
    """One line of a story: its text and depth (the CLI indents, the status page nests), and
    what it is about, so a page can link it (``alert``, ``incident``) or mark a mute."""

    text: str
    depth: int = 0
    kind: str = "note"  # "title" | "event" | "alert" | "incident" | "notification" | "fate" | "note"
    ref: str = ""  # the alert key, incident id or notification key the line is about
    muted: bool = False  # silenced, inhibited or deduplicated: the reason is in the text


def _record(raw: bytes | None) -> ev.AnyRecord | None:
    try:
        return ev.decode(raw or b"")
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def delivered_changelog(config: Config) -> str:
    """The changelog topic of the worker's delivered table (Faust: ``<app id>-<table>-changelog``)."""
    return f"{config.app.id}-{config.broker.topic_prefix}-delivered-changelog"


async def read_story(config: Config, job_key: str) -> Story:
    conn = await tool_connection(config, "the live explain needs")
    prefix = config.broker.topic_prefix
    records = await asyncio.gather(
        read_topic(conn, f"{prefix}.events", lambda _k, v: _record(v)),
        read_topic(conn, f"{prefix}.alerts", lambda _k, v: _record(v)),
        read_topic(conn, f"{prefix}.grouping", lambda _k, v: _record(v)),
        read_topic(conn, f"{prefix}.decisions", lambda _k, v: _record(v)),
        read_topic(conn, delivered_changelog(config), lambda k, v: (_text(k), _text(v))),
        read_topic(conn, f"{prefix}.notifications", lambda _k, v: _record(v)),
    )
    return collect(job_key, *records)


def collect(
    job_key: str,
    events: Iterable[object],
    alerts: Iterable[object],
    held: Iterable[object] = (),
    decisions: Iterable[object] = (),
    marks: Iterable[tuple[str | None, str | None]] = (),
    notes: Iterable[object] = (),
) -> Story:
    """One job's story from the records of each topic, in topic order; records of other jobs
    and of other kinds are passed over. Pure: the CLI feeds it whole topics, the status page
    its in-memory view."""
    story = Story(job_key)

    def mine(alert: ev.Alert) -> bool:
        return alert.event.job_key == job_key

    story.events = [e for e in events if isinstance(e, ev.JobEvent) and e.job_key == job_key]
    story.grouped = {a.key: a for a in held if isinstance(a, ev.Alert) and mine(a)}
    story.decisions = {d.alert.key: d for d in decisions if isinstance(d, ev.Decision) and mine(d.alert)}
    for a in alerts:
        if not isinstance(a, ev.Alert):
            continue
        if a.incident_kind == "group":
            story.messages.setdefault(a.incident.split("|group@", 1)[0], []).append(a.key)
        if mine(a) or any(m.job_key == job_key for m in a.members):
            story.alerts.setdefault(a.key, a)
    incidents = {a.incident for a in story.alerts.values() if a.incident}
    for n in notes:
        if isinstance(n, ev.Notification) and n.incident.id in incidents:
            story.notifications.setdefault(n.incident.id, []).append(n)
    for key, value in marks:
        if not key or not value:
            continue
        note, _, target = key.rpartition("|")
        if target == "*":
            story.marks[note] = value
        elif value == "1":
            story.targets.setdefault(note, []).append(target)
    return story


def _fate(story: Story, key: str) -> str:
    """What became of a notification (by key)."""
    mark = story.marks.get(key)
    accepted = story.targets.get(key, [])
    if mark == "1":
        return f"delivered to {', '.join(accepted)}" if accepted else "nothing to tell here (no target edits in place)"
    if mark == "dead":
        got = f"; accepted by {', '.join(accepted)}" if accepted else ""
        return f"dead-lettered (see `watcher dlq list`){got}"
    return f"not delivered yet{'; accepted by ' + ', '.join(accepted) if accepted else ''}"


def story_lines(story: Story, prefix: str, rules: RuleSet) -> list[Line]:
    """The story as lines: each event with the rules (in the current rule files) it matches,
    then each alert key and what became of it, then each incident's notifications."""
    by_name = {r.name: r for r in rules.rules}
    lines = [Line(f"job {story.job_key} (live, from the {prefix}.* topics)", kind="title", ref=story.job_key)]
    if not story.events:
        lines.append(Line(f"no event of this job on {prefix}.events"))
    for e in sorted(story.events, key=lambda e: e.observed_at):
        change = f"{e.prev_status} → {e.status}" if e.prev_status else f"{e.status} (first seen)"
        matched = ", ".join(r.name for r in rules.matching(e)) or "no rule matches"
        lines.append(Line(f"{utc(e.observed_at)}  {change}: {matched}", kind="event"))
    keys = list(dict.fromkeys([*story.alerts, *story.grouped, *story.decisions]))
    if story.events and not keys:
        lines.append(Line("no alert was fired for this job"))
    for key in keys:
        alert = story.alerts.get(key) or story.grouped.get(key) or story.decisions[key].alert
        lines.append(Line(f"alert {key} ({alert.rule}, {alert.kind})", kind="alert", ref=key))
        if (d := story.decisions.get(key)) is not None:
            lines.append(Line(f"{d.result}: {d.reason}", 1, "fate", key, muted=True))
        elif key in story.grouped and key not in story.alerts:
            rule = by_name.get(alert.rule)
            spec = rule.options.grouping if rule is not None else None
            group = grouping.group_key(alert, spec)[0] if spec is not None else None
            lines.append(Line(f"grouped in {group or '(a group of a rule that no longer groups)'}", 1, "fate"))
            if not story.messages.get(group or ""):
                lines.append(Line("the group has sent no message yet", 1, "fate"))
        elif alert.incident:
            lines.append(Line(f"→ incident {alert.incident}", 1, "incident", alert.incident))
    for incident_id, notes in story.notifications.items():
        last = notes[-1].incident
        lines.append(Line(f"incident {incident_id} ({last.rule}, {last.state}, {len(last.jobs) + last.more_jobs} job(s))",
                          kind="incident", ref=incident_id))  # fmt: skip
        for n in notes:
            who = "editable targets" if n.audience == "editable" else "every target"
            change = f": {n.change}" if n.change else ""
            lines.append(Line(f"{n.kind} {n.key.rsplit('#', 1)[-1]} to {who}{change}", 1, "notification", n.key))
            lines.append(Line(_fate(story, n.key), 2, "fate", n.key))
    return lines


def format_story(story: Story, config: Config, rules: RuleSet) -> str:
    """The story as the CLI prints it: one line each, nested lines indented by four spaces a level."""
    return "\n".join("    " * line.depth + line.text for line in story_lines(story, config.broker.topic_prefix, rules))


async def explain_live(config: Config, job_key: str) -> str:
    rules, _ = load_book(list(config.rules.files))
    return format_story(await read_story(config, job_key), config, rules)
