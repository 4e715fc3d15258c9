"""``watcher explain JOB_KEY --config FILE``: one job's story, from what the topics hold.

The offline explain (:func:`watcher.rules.pipeline.explain`) dry-runs an events file. This
one asks the running deployment: it reads, to their current ends,

* ``<prefix>.events`` — the job's status changes as published (and the rules in the
  config's rule files that match each one now);
* ``<prefix>.alerts`` / ``.grouping`` — the alerts fired for the job, and those held in a
  group (with the group's messages, and whether they went out);
* ``<prefix>.decisions`` — what was silenced or inhibited, and why;
* the delivered table's changelog — which alert keys were delivered or dead-lettered;

and prints, per event, the rules it matched and, per alert key, what became of it. It reads
each topic whole, so on a large deployment it takes a while; it changes nothing.
"""

from __future__ import annotations

import asyncio
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
    marks: dict[str, str] = field(default_factory=dict)  # alert key -> "1" (delivered) | "dead"


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
    story = Story(job_key)

    def mine(alert: ev.Alert) -> bool:
        return alert.event.job_key == job_key

    events, alerts, held, decisions, marks = await asyncio.gather(
        read_topic(conn, f"{prefix}.events", lambda _k, v: _record(v)),
        read_topic(conn, f"{prefix}.alerts", lambda _k, v: _record(v)),
        read_topic(conn, f"{prefix}.grouping", lambda _k, v: _record(v)),
        read_topic(conn, f"{prefix}.decisions", lambda _k, v: _record(v)),
        read_topic(conn, delivered_changelog(config), lambda k, v: (_text(k), _text(v))),
    )
    story.events = [e for e in events if isinstance(e, ev.JobEvent) and e.job_key == job_key]
    story.grouped = {a.key: a for a in held if isinstance(a, ev.Alert) and mine(a)}
    story.decisions = {d.alert.key: d for d in decisions if isinstance(d, ev.Decision) and mine(d.alert)}
    for a in alerts:
        if isinstance(a, ev.Alert) and mine(a) and "|group@" not in a.key:
            story.alerts[a.key] = a
        elif isinstance(a, ev.Alert) and "|group@" in a.key:
            story.messages.setdefault(a.key.split("|group@", 1)[0], []).append(a.key)
    for key, value in marks:
        if key and key.endswith("|*") and value:
            story.marks[key[:-2]] = value
    return story


def _fate(story: Story, key: str) -> str:
    if (d := story.decisions.get(key)) is not None:
        return f"{d.result}: {d.reason}"
    mark = story.marks.get(key)
    if mark == "1":
        return "delivered"
    if mark == "dead":
        return "dead-lettered (see `watcher dlq list`)"
    return "published, not delivered yet"


def format_story(story: Story, config: Config, rules: RuleSet) -> str:
    """The story as text: each event with the rules (in the current rule files) it matches,
    then each alert key and what became of it."""
    by_name = {r.name: r for r in rules.rules}
    lines = [f"job {story.job_key} (live, from the {config.broker.topic_prefix}.* topics)"]
    if not story.events:
        lines.append(f"no event of this job on {config.broker.topic_prefix}.events")
    for e in sorted(story.events, key=lambda e: e.observed_at):
        change = f"{e.prev_status} → {e.status}" if e.prev_status else f"{e.status} (first seen)"
        matched = ", ".join(r.name for r in rules.matching(e)) or "no rule matches"
        lines.append(f"{utc(e.observed_at)}  {change}: {matched}")
    keys = list(dict.fromkeys([*story.alerts, *story.grouped, *story.decisions]))
    if story.events and not keys:
        lines.append("no alert was fired for this job")
    for key in keys:
        alert = story.alerts.get(key) or story.grouped.get(key) or story.decisions[key].alert
        lines.append(f"alert {key} ({alert.rule}, {alert.kind})")
        if key in story.grouped and key not in story.decisions:
            rule = by_name.get(alert.rule)
            spec = rule.options.grouping if rule is not None else None
            group = grouping.group_key(alert, spec)[0] if spec is not None else None
            lines.append(f"    grouped in {group or '(a group of a rule that no longer groups)'}")
            sent = story.messages.get(group or "", [])
            lines += [f"    group message {m}: {_fate(story, m)}" for m in sent]
            if not sent:
                lines.append("    the group has sent no message yet")
        else:
            lines.append(f"    {_fate(story, key)}")
    return "\n".join(lines)


async def explain_live(config: Config, job_key: str) -> str:
    rules, _ = load_book(list(config.rules.files))
    return format_story(await read_story(config, job_key), config, rules)
