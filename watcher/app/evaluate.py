"""The evaluate stage: rules over events, with their state — stuck timers, bursts, shares,
silences, inhibition, grouping. Each alert it admits goes to ``<prefix>.alerts`` keyed by its
incident (:mod:`watcher.app.incidents` takes it from there).

The live counterpart of :class:`watcher.rules.pipeline.DryRun` (the reference semantics),
with its state in Kafka-backed Faust tables instead of dicts::

    events(key=job) --[evaluate]--> match → event alerts | stuck timers (table by job key)
        burst rule matched → bursts(key=rule+group) --[burst agent]--> windows table → alert
        sub-job of a share rule → shares(key=rule+parent) --[share agent]--> shares table → alert
        new alerts → inhibitions they start → inhibitions topic (every worker reads it whole)
        each alert → silenced? inhibited? → decisions topic (recorded, not sent)
                   → grouped rule? → grouping(key=group) --[group agent]--> groups table
                   → else → alerts(key=incident) → incidents (one page per incident)
    timer on every worker, its own partitions only:
        due stuck timers → stuck alerts (as above); due groups → one alert per flush

Each table value records the partition it belongs to (the partition of the record that
created it), so a worker's timer touches only the state of partitions it owns and writes
that partition's changelog. Replays stay harmless through deterministic keys: a stuck
episode, its reminders (``KEY#n``, as :mod:`watcher.rules.dedup` names them) and each group
flush (:func:`watcher.rules.grouping.render`) have stable keys, and an incident takes an alert
key once however often it arrives. As in the dry run, the inhibitions a batch
of new alerts starts are registered before any of them is admitted, so a burst mutes the
very event that completed it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from watcher import events as ev
from watcher.app import inhibitions as inhibition_feed
from watcher.app.inhibitions import InhibitionBook
from watcher.app.reread import Committed, Reread, RereadNet
from watcher.app.silences import SilenceBook
from watcher.app.tables import Rows
from watcher.rules import burst, grouping, inhibit, share, stuck
from watcher.rules.compile import CompiledRule
from watcher.rules.inhibit import Inhibition
from watcher.rules.silence import silenced_by

log = logging.getLogger("watcher.app")


class TimerSlot(msgspec.Struct, kw_only=True):
    """A job's stuck timers and the events-topic partition they live on."""

    partition: int
    state: stuck.JobTimers


class GroupSlot(msgspec.Struct, kw_only=True):
    """A group, its grouping-topic partition, and the alert keys it took while open."""

    partition: int
    group: grouping.Group
    seen: list[str] = msgspec.field(default_factory=list)  # a replayed record is not added twice


class BurstSlot(msgspec.Struct, kw_only=True):
    """One burst group's window and its bursts-topic partition."""

    partition: int
    window: burst.Window


class BurstHit(msgspec.Struct, frozen=True, kw_only=True):
    """A bursts-topic record: ``event`` matched burst rule ``rule``."""

    rule: str
    event: ev.JobEvent


class ShareSlot(msgspec.Struct, kw_only=True):
    """One (share rule, parent job)'s counts and its shares-topic partition."""

    partition: int
    state: share.ParentShare


class ShareHit(msgspec.Struct, frozen=True, kw_only=True):
    """A shares-topic record: ``event`` is a sub-job share rule ``rule`` counts (``matched``: it matched)."""

    rule: str
    event: ev.JobEvent
    matched: bool


_enc = msgspec.json.Encoder()
_burst_dec = msgspec.json.Decoder(BurstSlot)
_hit_dec = msgspec.json.Decoder(BurstHit)
_share_hit_dec = msgspec.json.Decoder(ShareHit)
_share_dec = msgspec.json.Decoder(ShareSlot)
_timer_dec = msgspec.json.Decoder(TimerSlot)
_group_dec = msgspec.json.Decoder(GroupSlot)


class EvaluateStage:
    """What the evaluate, grouping, burst and share agents and the stage timer call; one per worker."""

    def __init__(
        self, app: Any, comps: Any, silences: SilenceBook, inhibitions: InhibitionBook, *, timers: Any,
        groups: Any, windows: Any, shares: Any, events_topic: Any, alerts_topic: Any, grouping_topic: Any,
        decisions_topic: Any, bursts_topic: Any, shares_topic: Any, inhibitions_topic: Any,
        owned: Callable[[], set[int] | None] | None = None, reread: Reread | None = None,
        committed: Committed | None = None,
    ) -> None:  # fmt: skip
        self.app, self.comps, self.silences, self.inhibitions = app, comps, silences, inhibitions
        self.timers, self.groups, self.windows, self.bursts_topic = timers, groups, windows, bursts_topic
        self.shares, self.shares_topic, self.inhibitions_topic = shares, shares_topic, inhibitions_topic
        self.events_topic, self.alerts_topic = events_topic, alerts_topic
        self.grouping_topic, self.decisions_topic = grouping_topic, decisions_topic
        self.rows = Rows()  # the stuck timers, burst windows, shares and groups written, until durable
        # Events leave no trace to check; the net only takes the records of a stream that stopped.
        self.net = RereadNet(what="events", owned=owned or (lambda: None), reread=reread or _nothing,
                             committed=committed or _none, handled=lambda _: True, recover=self._recover,
                             stopped_only=True)  # fmt: skip

    # -- rules ----------------------------------------------------------------------------

    @property
    def by_name(self) -> dict[str, CompiledRule]:
        rules = self.comps.ruleset().rules
        if getattr(self, "_named_rules", None) is not rules:  # rebuilt once per (re)load, not per event
            self._named_rules, self._by_name = rules, {r.name: r for r in rules}
        return self._by_name

    # -- the evaluate agent ---------------------------------------------------------------

    async def durable(self) -> None:
        """Return once the rows the events so far wrote are on the broker (before their batch is acked)."""
        await self.rows.durable()

    async def _recover(self, record: Any, partition: int) -> None:
        if isinstance(record, ev.JobEvent):
            self.comps.metrics.recovered.inc()
            await self.on_event(record, partition)
            await self.rows.durable()

    async def reconcile(self) -> int:
        """One round of the re-read net (a stopped stream's events); how many it evaluated."""
        return await self.net.round()

    async def on_event(self, event: ev.JobEvent, partition: int) -> None:
        """Match ``event``; start/end its stuck timers; pass every alert through the stages.
        The agent calls :meth:`durable` after each batch."""
        now = datetime.now(UTC)
        rules = self.comps.ruleset()
        by_name = self.by_name
        produced = [(by_name[a.rule], a) for a in rules.evaluate(event, now)]  # event rules (metered)
        if any(r.kind in ("stuck", "burst", "share") for r in rules.rules):
            matched = rules.matching(event)
            names = {r.name for r in matched}
            produced += self._stuck_event(event, names, partition, now)
            for rule in matched:  # a burst counts per group: on to the partition of its group
                if rule.kind == "burst":
                    hit = BurstHit(rule=rule.name, event=event)
                    await self.bursts_topic.send(key=burst.burst_key(rule, event).encode(), value=_enc.encode(hit))
            for rule in rules.rules:  # a share counts every sub-job of a parent: on to the parent's partition
                if rule.kind == "share" and share.counts_toward(rule, event):
                    key = share.share_key(rule.name, event)
                    assert key is not None  # counts_toward: the event has a parent
                    value = _enc.encode(ShareHit(rule=rule.name, event=event, matched=rule.name in names))
                    await self.shares_topic.send(key=key.encode(), value=value)
        await self.admit_all(produced, now)

    async def admit_all(self, produced: list[tuple[CompiledRule, ev.Alert]], now: datetime) -> None:
        """Register what the alerts inhibit, then admit each (DryRun._decide)."""
        for rule, alert in produced:
            await self._publish_inhibitions(self.inhibitions.started(rule, alert, now))
        for rule, alert in produced:
            await self.admit(rule, alert, now)

    async def _publish_inhibitions(self, changed: list[Inhibition]) -> None:
        for i in changed:
            log.info("inhibition %s until %s: %s", i.id, i.until or "resolved", i.describe())
            await self.inhibitions_topic.send(key=i.id.encode(), value=inhibition_feed.encode(i))

    def _stuck_event(
        self, event: ev.JobEvent, names: set[str], partition: int, now: datetime
    ) -> list[tuple[CompiledRule, ev.Alert]]:
        rules = [r for r in self.comps.ruleset().rules if r.kind == "stuck"]
        if not rules:
            return []
        raw = self.timers.get(event.job_key)
        before = _timer_dec.decode(raw).state if raw else None
        state, resolved = stuck.on_event(before, event, rules, names, now)
        if state is not None:
            self.rows.write(self.timers, event.job_key, _dump(TimerSlot(partition=partition, state=state)), partition)
        elif before is not None:
            self.rows.write(self.timers, event.job_key, None, partition)
        by_name = {r.name: r for r in rules}
        return [(by_name[a.rule], a) for a in resolved]

    async def admit(self, rule: CompiledRule, alert: ev.Alert, now: datetime) -> None:
        """silence → group or send (DryRun._admit; dedup is the notifier's per-key delivery)."""
        stats = self.comps.stats
        stats.fired += 1
        if (s := silenced_by(alert, self.silences.all(), now)) is not None:
            stats.silenced += 1
            await self._record(alert, "silenced", s.describe(), now)
            return
        if (i := inhibit.inhibited_by(alert, self.inhibitions.all(), now)) is not None:
            stats.inhibited += 1
            await self._record(alert, "inhibited", i.describe(), now)
            return
        if rule.options.grouping is not None:
            stats.grouped += 1
            key, _ = grouping.group_key(alert, rule.options.grouping)
            await self.grouping_topic.send(key=key.encode(), value=ev.encode(alert))
            return
        await self.publish(alert)

    async def publish(self, alert: ev.Alert) -> None:
        """An admitted alert, on to its incident (the alerts topic is keyed by incident)."""
        await self.alerts_topic.send(key=(alert.incident or alert.key).encode(), value=ev.encode(alert))

    async def _record(self, alert: ev.Alert, result: Any, reason: str, now: datetime) -> None:
        log.info("alert %s %s: %s", alert.key, result, reason)
        decision = ev.Decision(alert=alert, result=result, reason=reason, decided_at=now)
        await self.decisions_topic.send(key=alert.key.encode(), value=ev.encode(decision))

    # -- the burst agent ------------------------------------------------------------------

    async def on_burst_hit(self, raw: bytes, partition: int) -> None:
        """Count one match in its group's window; a burst alert when an episode starts."""
        hit = _hit_dec.decode(raw)
        rule = self.by_name.get(hit.rule)
        if rule is None or rule.kind != "burst":
            return
        key = burst.burst_key(rule, hit.event)
        slot = self.windows.get(key)
        now = datetime.now(UTC)
        window, alerts = burst.on_event(_burst_dec.decode(slot).window if slot else None, hit.event, rule, now)
        self.rows.write(self.windows, key, _dump(BurstSlot(partition=partition, window=window)), partition)
        if window.episode is not None and not alerts and rule.options.inhibits:  # a burst going on keeps its cover
            until = hit.event.observed_at + timedelta(seconds=rule.options.burst_within)  # poller events are UTC
            source = burst.episode_key(rule.name, burst.group_values(hit.event, rule.options.burst_by), window.episode)
            await self._publish_inhibitions(self.inhibitions.extended(source, until, now))
        await self.admit_all([(rule, a) for a in alerts], now)
        await self.rows.durable()

    # -- the share agent ------------------------------------------------------------------

    async def on_share_hit(self, raw: bytes, partition: int) -> None:
        """Count one sub-job toward its parent's share; a share alert when the share is reached."""
        hit = _share_hit_dec.decode(raw)
        rule = self.by_name.get(hit.rule)
        key = share.share_key(hit.rule, hit.event)
        if rule is None or rule.kind != "share" or key is None:
            return
        slot = self.shares.get(key)
        now = datetime.now(UTC)
        state, alerts = share.on_event(_share_dec.decode(slot).state if slot else None, hit.event, rule, hit.matched, now)
        self.rows.write(self.shares, key, _dump(ShareSlot(partition=partition, state=state)), partition)
        if hit.matched and state.fired_at is not None and not alerts and rule.options.inhibits:
            source = share.alert_key(rule.name, hit.event)
            await self._publish_inhibitions(self.inhibitions.extended(source, now + inhibit.HOLD, now))
        await self.admit_all([(rule, a) for a in alerts], now)
        await self.rows.durable()

    # -- the grouping agent ---------------------------------------------------------------

    async def on_grouped(self, alert: ev.Alert, partition: int) -> None:
        """Hold ``alert`` in its group until the group's due time."""
        rule = self.by_name.get(alert.rule)
        spec = rule.options.grouping if rule else None
        if spec is None:  # the rule lost its group_by (a rules reload): send as it is
            await self.publish(alert)
            return
        key, _ = grouping.group_key(alert, spec)
        raw = self.groups.get(key)
        slot = _group_dec.decode(raw) if raw else None
        if slot is not None and alert.key in slot.seen:
            return
        group = grouping.add(slot.group if slot else None, alert, spec, datetime.now(UTC))
        seen = [*(slot.seen if slot else []), alert.key]
        self.rows.write(self.groups, key, _dump(GroupSlot(partition=partition, group=group, seen=seen)), partition)
        await self.rows.durable()

    # -- the timer ------------------------------------------------------------------------

    def _owned(self, topic: Any) -> set[int]:
        name = topic.get_topic_name()
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == name}

    async def tick(self) -> None:
        """Fire the due stuck timers and flush the due groups of the partitions this worker owns."""
        if getattr(self.app, "in_recovery", False):
            return
        now = datetime.now(UTC)
        by_name = self.by_name
        self.inhibitions.prune(now)
        mine = self._owned(self.events_topic)
        for key in list(self.timers.data.keys()):
            raw = self.timers.data.get(key)  # re-read: an agent may have moved it meanwhile
            if not raw or (slot := _timer_dec.decode(raw)).partition not in mine:
                continue
            due = stuck.due_at(slot.state, by_name)
            if due is None or due > now:
                continue
            state, alerts = stuck.on_tick(slot.state, by_name, now)
            self.rows.write(self.timers, key, _dump(TimerSlot(partition=slot.partition, state=state)), slot.partition)
            produced = []
            for alert in alerts:
                sends = state.timers[alert.rule].sends
                if sends > 1:  # a reminder: a new key, as dedup.admit names it
                    alert = msgspec.structs.replace(alert, key=f"{alert.key}#{sends}", repeat=sends - 1)
                produced.append((by_name[alert.rule], alert))
            await self.admit_all(produced, now)
        mine = self._owned(self.bursts_topic)
        for key in list(self.windows.data.keys()):  # drop the windows that drained
            raw = self.windows.data.get(key)
            if not raw or (bslot := _burst_dec.decode(raw)).partition not in mine:
                continue
            rule = by_name.get(key.split("|", 1)[0])
            if rule is None or burst.expired(bslot.window, rule, now):
                self.rows.write(self.windows, key, None, bslot.partition)
        mine = self._owned(self.grouping_topic)
        for key in list(self.groups.data.keys()):
            raw = self.groups.data.get(key)
            if not raw or (slot := _group_dec.decode(raw)).partition not in mine:
                continue
            await self._flush(key, slot, by_name, now)

    async def _flush(self, key: str, slot: GroupSlot, by_name: dict[str, CompiledRule], now: datetime) -> None:
        rule = by_name.get(slot.group.rule)
        spec = rule.options.grouping if rule else None
        if spec is None or not grouping.due(slot.group, spec, now):
            return
        after, alerts = grouping.flush(slot.group, spec, now)
        if after is None:  # nothing new for a whole interval: the group closes
            self.rows.write(self.groups, key, None, slot.partition)
            return
        # State first (in memory, synchronously): an alert the agent adds while we await
        # below joins the next flush, and the changelog written last carries both.
        self.groups.data[key] = _dump(GroupSlot(partition=slot.partition, group=after, seen=slot.seen))
        keep = []
        for alert in alerts:  # a silence or inhibition that began meanwhile still applies
            if (s := silenced_by(alert, self.silences.all(), now)) is not None:
                await self._record(alert, "silenced", s.describe(), now)
            elif (i := inhibit.inhibited_by(alert, self.inhibitions.all(), now)) is not None:
                await self._record(alert, "inhibited", i.describe(), now)
            else:
                keep.append(alert)
        if keep:
            message = grouping.render(after, keep, now, after.flushes)
            # Sent before the changelog: a crash in between re-flushes under the same key,
            # which its incident takes once.
            await self.publish(message)
        self.rows.write(self.groups, key, self.groups.data.get(key), slot.partition)


def _dump(slot: TimerSlot | GroupSlot | BurstSlot | ShareSlot) -> str:
    return _enc.encode(slot).decode()


async def _nothing(starts: dict[int, int]) -> list[tuple[int, int, bytes | None]]:
    return []


async def _none(parts: set[int]) -> dict[int, int]:
    return {}
