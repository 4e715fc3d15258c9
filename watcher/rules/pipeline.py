"""The rule pipeline as one pure machine: the dry run, and the reference the Faust agents follow.

Per event, with the event's ``observed_at`` as the clock::

    advance the clock: fire due stuck timers, send due groups (in time order)
    match → event alerts | stuck timers (resolved notices) | burst windows | parent shares
          → inhibitions the new alerts start → per alert: dedup → silence → inhibit
          → group (group_by) or send
    at a group's due time: re-check silences and inhibitions, then one message

Every step is logged (:class:`Entry`: the rules matched, each alert's :class:`Outcome` and
why), so ``watcher rules test`` shows what would be sent and ``watcher explain JOB_KEY``
(:func:`explain`) why a job did or did not notify. The state dicts on :class:`DryRun` are
exactly what a deployment keeps in Kafka tables (see each stage's module). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec

from watcher.events import Alert, JobEvent
from watcher.rules import burst, dedup, grouping, inhibit, share, stuck
from watcher.rules.compile import CompiledRule
from watcher.rules.engine import RuleSet, make_alert
from watcher.rules.silence import Silence, silenced_by
from watcher.rules.templates import utc

Result = Literal["sent", "grouped", "deduplicated", "silenced", "inhibited"]


class Outcome(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What became of one alert, and why."""

    key: str
    rule: str
    kind: str
    job_key: str
    result: Result
    reason: str = ""
    group: str | None = None


class Member(msgspec.Struct, frozen=True, array_like=True):
    key: str
    job_key: str


class Message(msgspec.Struct, kw_only=True):
    """A notification that would be delivered, and the alerts it carries."""

    at: datetime
    alert: Alert
    members: list[Member]


class Entry(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One step of the run: an event, a timer firing, or a group sending."""

    at: datetime
    trigger: Literal["event", "timer", "flush"]
    job_key: str | None = None
    change: str = ""
    matched: list[str] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)
    alerts: list[Outcome] = msgspec.field(default_factory=list)
    message: str | None = None
    members: list[Member] = msgspec.field(default_factory=list)


class DryRun:
    """Feed events in time order (:meth:`feed`), then :meth:`finish`; read :attr:`log`, :attr:`messages`."""

    def __init__(self, rules: RuleSet, silences: Iterable[Silence] = ()) -> None:
        self.rules = rules
        self.by_name: dict[str, CompiledRule] = {r.name: r for r in rules.rules}
        self.stuck_rules = [r for r in rules.rules if r.kind == "stuck"]
        self.share_rules = [r for r in rules.rules if r.kind == "share"]
        self.silences: list[Silence] = list(silences)
        # Stage state, each keyed as its Kafka table would be.
        self.timers: dict[str, stuck.JobTimers] = {}  # job key
        self.windows: dict[str, burst.Window] = {}  # rule|group values
        self.shares: dict[str, share.ParentShare] = {}  # rule|parent job key
        self.sent: dict[str, dedup.Sent] = {}  # alert key
        self.inhibitions: dict[str, inhibit.Inhibition] = {}  # inhibition id
        self.groups: dict[str, grouping.Group] = {}  # rule|kind|group values
        self.log: list[Entry] = []
        self.messages: list[Message] = []
        self.clock: datetime | None = None

    def run(self, events: Iterable[JobEvent], until: datetime | None = None) -> DryRun:
        """Feed ``events`` sorted by ``observed_at``, then finish; returns self."""
        for event in sorted(events, key=lambda e: _utc(e.observed_at)):
            self.feed(event)
        self.finish(until)
        return self

    def feed(self, event: JobEvent) -> Entry:
        now = _utc(event.observed_at)
        self.advance(now)
        matched = self.rules.matching(event)
        names = {r.name for r in matched}
        change = f"{event.prev_status} → {event.status}" if event.prev_status else f"{event.status} (first seen)"
        entry = Entry(at=now, trigger="event", job_key=event.job_key, change=change, matched=[r.name for r in matched])
        produced = [(r, make_alert(r, event, now)) for r in matched if r.kind == "event"]
        produced += self._stuck(event, names, now, entry)
        for rule in matched:
            if rule.kind == "burst":
                produced += self._burst(rule, event, now)
        for rule in self.share_rules:
            if share.counts_toward(rule, event):
                produced += self._share(rule, event, rule.name in names, now)
        self._decide(entry, produced, now)
        return entry

    def advance(self, to: datetime) -> None:
        """Move the clock to ``to``, firing timers and sending groups at their own due times."""
        while (step := self._next_due()) is not None and step[0] <= to:
            self._at(*step)
        self.clock = max(self.clock or to, to)

    def finish(self, until: datetime | None = None) -> None:
        """Advance to ``until`` (if given), then send every group still holding alerts."""
        if until is not None:
            self.advance(_utc(until))
        while pending := [g for g in self.groups.values() if g.pending]:
            group = min(pending, key=lambda g: self._group_due(g))
            self._flush(group, max(self._group_due(group), self.clock or self._group_due(group)))

    # -- stages -----------------------------------------------------------------------

    def _stuck(self, event: JobEvent, names: set[str], now: datetime, entry: Entry) -> list[tuple[CompiledRule, Alert]]:
        before = self.timers.get(event.job_key)
        state, resolved = stuck.on_event(before, event, self.stuck_rules, names, now)
        old, new = set(before.timers) if before else set(), set(state.timers) if state else set()
        entry.notes += [f"timer started: {n} ({event.status} since {utc(now)})" for n in sorted(new - old)]
        entry.notes += [f"timer ended: {n}" for n in sorted(old - new)]
        if state is None:
            self.timers.pop(event.job_key, None)
        else:
            self.timers[event.job_key] = state
        return [(self.by_name[a.rule], a) for a in resolved]

    def _burst(self, rule: CompiledRule, event: JobEvent, now: datetime) -> list[tuple[CompiledRule, Alert]]:
        key = burst.burst_key(rule, event)
        window, alerts = burst.on_event(self.windows.get(key), event, rule, now)
        self.windows[key] = window
        if window.episode is not None and not alerts:  # a burst going on keeps its cover
            until = _utc(event.observed_at) + timedelta(seconds=rule.options.burst_within)
            source = burst.episode_key(rule.name, burst.group_values(event, rule.options.burst_by), window.episode)
            self.inhibitions = inhibit.extend(self.inhibitions, source, until)
        return [(rule, a) for a in alerts]

    def _share(self, rule: CompiledRule, event: JobEvent, hit: bool, now: datetime) -> list[tuple[CompiledRule, Alert]]:
        key = share.share_key(rule.name, event)
        assert key is not None
        state, alerts = share.on_event(self.shares.get(key), event, rule, hit, now)
        self.shares[key] = state
        if hit and state.fired_at is not None and not alerts:
            source = share.alert_key(rule.name, event)
            self.inhibitions = inhibit.extend(self.inhibitions, source, now + inhibit.HOLD)
        return [(rule, a) for a in alerts]

    def _decide(self, entry: Entry, produced: Sequence[tuple[CompiledRule, Alert]], now: datetime) -> None:
        for rule, alert in produced:  # covers first: a burst mutes the very event that started it
            self.inhibitions = inhibit.apply(self.inhibitions, rule, alert, now)
        for rule, alert in produced:
            entry.alerts.append(self._admit(rule, alert, now))
        self.log.append(entry)

    def _admit(self, rule: CompiledRule, alert: Alert, now: datetime) -> Outcome:
        def outcome(result: Result, reason: str = "", group: str | None = None, key: str = alert.key) -> Outcome:
            return Outcome(key=key, rule=alert.rule, kind=alert.kind, job_key=alert.event.job_key,
                           result=result, reason=reason, group=group)  # fmt: skip

        state, passed, why = dedup.admit(self.sent.get(alert.key), alert, rule.options.repeat, now)
        if passed is None:
            return outcome("deduplicated", why)
        if state is not None:
            self.sent[alert.key] = state
        if muted := self._muted(passed, now):
            return outcome(muted[0], muted[1], key=passed.key)
        if rule.options.grouping is not None:
            key, _ = grouping.group_key(passed, rule.options.grouping)
            self.groups[key] = grouping.add(self.groups.get(key), passed, rule.options.grouping, now)
            return outcome("grouped", group=key, key=passed.key)
        self._send(passed, [passed], now)
        return outcome("sent", why if why == "repeat" else "", key=passed.key)

    def _muted(self, alert: Alert, now: datetime) -> tuple[Result, str] | None:
        if (s := silenced_by(alert, self.silences, now)) is not None:
            return "silenced", s.describe()
        if (i := inhibit.inhibited_by(alert, self.inhibitions.values(), now)) is not None:
            return "inhibited", i.describe()
        return None

    def _send(self, message: Alert, members: list[Alert], now: datetime) -> None:
        self.messages.append(Message(at=now, alert=message, members=[Member(a.key, a.event.job_key) for a in members]))

    # -- the clock --------------------------------------------------------------------

    def _group_due(self, group: grouping.Group) -> datetime:
        return grouping.due_at(group, self._grouping(group))

    def _grouping(self, group: grouping.Group) -> grouping.Grouping:
        spec = self.by_name[group.rule].options.grouping
        assert spec is not None
        return spec

    def _next_due(self) -> tuple[datetime, str, str] | None:
        """(when, "timer"|"group", state key) of the earliest pending step; timers before groups."""
        steps = [(t, "0timer", k) for k, s in self.timers.items() if (t := stuck.due_at(s, self.by_name)) is not None]
        steps += [(self._group_due(g), "1group", k) for k, g in self.groups.items()]
        if not steps:
            return None
        when, what, key = min(steps)
        return when, what[1:], key

    def _at(self, when: datetime, what: str, key: str) -> None:
        self.clock = max(self.clock or when, when)
        if what == "group":
            self._flush(self.groups[key], when)
            return
        state, alerts = stuck.on_tick(self.timers[key], self.by_name, when)
        self.timers[key] = state
        entry = Entry(at=when, trigger="timer", job_key=key, notes=[f"timer fired: {a.rule}" for a in alerts])
        self._decide(entry, [(self.by_name[a.rule], a) for a in alerts], when)

    def _flush(self, group: grouping.Group, now: datetime) -> None:
        after, alerts = grouping.flush(group, self._grouping(group), now)
        if after is None:
            del self.groups[group.key]
            return
        self.groups[group.key] = after
        entry = Entry(at=now, trigger="flush", notes=[f"group {group.key}: {len(alerts)} pending"])
        keep = []
        for alert in alerts:  # a silence or inhibition that began meanwhile still applies
            if muted := self._muted(alert, now):
                entry.alerts.append(Outcome(key=alert.key, rule=alert.rule, kind=alert.kind,
                                            job_key=alert.event.job_key, result=muted[0], reason=muted[1],
                                            group=group.key))  # fmt: skip
            else:
                keep.append(alert)
        if keep:
            message = grouping.render(after, keep, now, after.flushes)
            self._send(message, keep, now)
            entry.message = message.key
            entry.members = [Member(a.key, a.event.job_key) for a in keep]
        self.log.append(entry)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def explain(job_key: str, log: Sequence[Entry]) -> str:
    """Why ``job_key`` did or did not notify, step by step, from a run's log."""
    lines = [f"job {job_key}"]
    events = 0
    for entry in log:
        mine = [o for o in entry.alerts if o.job_key == job_key]
        in_message = any(m.job_key == job_key for m in entry.members)
        if entry.job_key != job_key and not mine and not in_message:
            continue
        when = utc(entry.at)
        if entry.trigger == "event" and entry.job_key == job_key:
            events += 1
            matched = ", ".join(entry.matched) if entry.matched else "no rule matched"
            lines.append(f"{when}  {entry.change}: {matched}")
        elif entry.trigger == "timer":
            lines.append(f"{when}  timer")
        elif entry.trigger == "flush":
            lines.append(f"{when}  group send")
        lines += [f"    {note}" for note in entry.notes if entry.job_key == job_key]
        for o in mine:
            why = f": {o.reason}" if o.reason and o.result != "sent" else ""
            where = f" {o.group}" if o.group and o.result == "grouped" else ""
            lines.append(f"    {o.rule} ({o.kind}) → {o.result}{where}{why}")
        if in_message:
            n = len(entry.members)
            lines.append(f"    sent in message {entry.message} ({n} alert{'s' if n != 1 else ''})")
    if events == 0:
        lines.append("no event of this job in the log")
    elif not any(o.job_key == job_key for e in log for o in e.alerts):
        lines.append(f"{events} event(s), none matched a rule that fired: nothing to notify")
    return "\n".join(lines)
