"""``watcher explain JOB_KEY --config FILE``: one job's story, from what the topics hold.

The offline explain (:func:`watcher.rules.pipeline.explain`) dry-runs an events file. This
one asks the running deployment: it reads, to their current ends,

* ``<prefix>.events`` — the job's status changes as published (and the rules in the
  config's rule files that match each one now);
* ``<prefix>.alerts`` / ``.grouping`` — the alerts fired for the job, and those held in a
  group (with the group's messages, and whether they went out);
* ``<prefix>.decisions`` — what was silenced or inhibited, and why;
* the delivered table's changelog — which alert keys were delivered or dead-lettered;

* ``<prefix>.notifications`` — the incident notifications that carried each alert, and the
  delivered marks of each (``<notification key>|*`` and ``|<target>``);

and prints, per event, the rules it matched and, per alert key, what became of it. It reads
each topic whole, so on a large deployment it takes a while; it changes nothing. The story
is data first (:func:`collect`, :func:`story_lines`) and text second (:func:`format_story`),
so the status page (:mod:`watcher.ui`) tells the same story from its in-memory view.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from watcher import events as ev
from watcher.app.topics import read_topic
from watcher.config import Config
from watcher.errors import BrokerError
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
    marks: dict[str, str] = field(default_factory=dict)  # alert/notification key -> "1" (delivered) | "dead"
    accepted: dict[str, list[str]] = field(default_factory=dict)  # notification key -> targets that accepted
    notifications: dict[str, list[ev.Notification]] = field(default_factory=dict)  # alert key -> those carrying it


@dataclass(frozen=True)
class Line:
    """One line of a story: its text and depth (the CLI indents, the status page nests), and
    what it is about, so a page can link it (``job``, ``alert``, ``incident``) or mark a mute."""

    text: str
    depth: int = 0
    kind: str = "note"  # "title" | "event" | "alert" | "incident" | "fate" | "note"
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
    if not config.broker.url:
        raise BrokerError("the live explain needs a [broker] url: the embedded broker lives inside `watcher run`")
    bootstrap, prefix = config.broker.url.split("://", 1)[-1], config.broker.topic_prefix
    events, alerts, held, decisions, marks, notes = await asyncio.gather(
        read_topic(bootstrap, f"{prefix}.events", lambda _k, v: _record(v)),
        read_topic(bootstrap, f"{prefix}.alerts", lambda _k, v: _record(v)),
        read_topic(bootstrap, f"{prefix}.grouping", lambda _k, v: _record(v)),
        read_topic(bootstrap, f"{prefix}.decisions", lambda _k, v: _record(v)),
        read_topic(bootstrap, delivered_changelog(config), lambda k, v: (_text(k), _text(v))),
        read_topic(bootstrap, f"{prefix}.notifications", lambda _k, v: _record(v)),
    )
    return collect(job_key, events, alerts, held, decisions, marks, notes)


def collect(
    job_key: str,
    events: Iterable[object],
    alerts: Iterable[object],
    held: Iterable[object] = (),
    decisions: Iterable[object] = (),
    marks: Iterable[tuple[str | None, str | None]] = (),
    notifications: Iterable[object] = (),
) -> Story:
    """One job's story from the records of each topic, in topic order (the latest record of
    a key wins); records of other jobs and of other kinds are passed over. Pure: the CLI
    feeds it whole topics, the status page its in-memory view."""
    story = Story(job_key)

    def mine(alert: ev.Alert) -> bool:
        return alert.event.job_key == job_key

    story.events = [e for e in events if isinstance(e, ev.JobEvent) and e.job_key == job_key]
    story.grouped = {a.key: a for a in held if isinstance(a, ev.Alert) and mine(a)}
    story.decisions = {d.alert.key: d for d in decisions if isinstance(d, ev.Decision) and mine(d.alert)}
    for a in alerts:
        if isinstance(a, ev.Alert) and mine(a) and "|group@" not in a.key:
            story.alerts[a.key] = a
        elif isinstance(a, ev.Alert) and "|group@" in a.key:
            story.messages.setdefault(a.key.split("|group@", 1)[0], []).append(a.key)
    for n in notifications:
        if isinstance(n, ev.Notification) and n.alert is not None and mine(n.alert):
            story.notifications.setdefault(n.alert.key, []).append(n)
    for key, value in marks:
        if not key or not value or "|" not in key:
            continue
        head, target = key.rsplit("|", 1)
        if target == "*":
            story.marks[head] = value
        elif value == "1":
            story.accepted.setdefault(head, []).append(target)
    return story


def _fate(story: Story, key: str) -> str:
    if (d := story.decisions.get(key)) is not None:
        return f"{d.result}: {d.reason}"
    mark = story.marks.get(key)
    if mark == "1":
        return "delivered"
    if mark == "dead":
        return "dead-lettered (see `watcher dlq list`)"
    if story.accepted.get(key):
        return f"delivered to {', '.join(sorted(story.accepted[key]))} so far"
    return "published, not delivered yet"


def story_lines(story: Story, prefix: str, rules: RuleSet) -> list[Line]:
    """The story as lines: each event with the rules (in the current rule files) it matches,
    then each alert key and what became of it. ``prefix`` is the topic prefix."""
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
        if alert.incident and key not in story.decisions:  # a muted alert never reached the incident stage
            lines.append(Line(f"incident {alert.incident}", 1, "incident", alert.incident))
        if key in story.grouped and key not in story.decisions:
            rule = by_name.get(alert.rule)
            spec = rule.options.grouping if rule is not None else None
            group = grouping.group_key(alert, spec)[0] if spec is not None else None
            lines.append(Line(f"grouped in {group or '(a group of a rule that no longer groups)'}", 1, "fate"))
            sent = story.messages.get(group or "", [])
            lines += [Line(f"group message {m}: {_fate(story, m)}", 1, "fate", m) for m in sent]
            if not sent:
                lines.append(Line("the group has sent no message yet", 1, "fate"))
        elif key not in story.decisions and key not in story.marks and story.notifications.get(key):
            lines += [Line(f"notification {n.key} ({n.kind}): {_fate(story, n.key)}", 1, "fate", n.key)
                      for n in story.notifications[key]]  # fmt: skip
        else:
            lines.append(Line(_fate(story, key), 1, "fate", key, muted=key in story.decisions))
    return lines


def format_story(story: Story, config: Config, rules: RuleSet) -> str:
    """The story as the CLI prints it: one line each, nested lines indented by four spaces."""
    return "\n".join("    " * line.depth + line.text for line in story_lines(story, config.broker.topic_prefix, rules))


async def explain_live(config: Config, job_key: str) -> str:
    rules, _ = load_book(list(config.rules.files))
    return format_story(await read_story(config, job_key), config, rules)
