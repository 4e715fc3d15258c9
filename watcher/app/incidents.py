"""The incident stage: alerts and actions in, incidents kept in Kafka, notifications out.

Where it sits: rules → alerts(key = incident) → **incidents** → notifications(key = incident) →
notify. The pure decisions are in :mod:`watcher.incidents.model`; this object holds the state:

* the ``<prefix>-incidents`` table (incident id → :class:`~watcher.events.Incident`), each row in
  the partition its alerts arrive on (alerts, actions and notifications are all keyed by incident
  id, so one worker owns everything about an incident);
* a lock: the agent's batches and the escalation timer change the same rows.

Order, for at-least-once without a second page: a batch's notifications are produced and acked
first, the incident rows written after. A crash in between replays the batch against the old
rows, which yields the same notification keys (delivered once per target by the notify stage's
marks); a crash after leaves rows that already hold the alert keys, so the replay is a no-op.

Actions (``ack``, ``unack``, ``snooze``, ``silence``) come from Slack, the HTTP endpoint, the CLI
and the status page through ``<prefix>.actions``; a ``silence`` also creates the silence
(``rule`` and job type of the incident, for the chosen time) on ``<prefix>.silences``.

Incidents leave the table ``[incidents] retention`` after their last change once resolved, or
after ``keep`` if nobody ever resolves them (a failed job's incident stays until then).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from aiokafka.partitioner import murmur2

from watcher import events as ev
from watcher.app.reread import Committed, Reread, RereadNet
from watcher.app.tables import Rows
from watcher.incidents import escalation
from watcher.incidents.model import Intent, apply_action, apply_alert, escalate, fold, label, notifications
from watcher.rules.silence import Silence, similar_silence

log = logging.getLogger("watcher.app")

#: How long a new incident gathers the alerts about it that are still on their way before its page
#: goes out: the events of one poll (a job and its sub-jobs) reach the incident stage within
#: milliseconds of each other, but can fall into two of its batches. Gathered, they are one page
#: naming every failed job; the row records it (``settling``), so a successor sends it if we die.
SETTLE = 0.5

_dec = msgspec.json.Decoder(ev.Incident)
_silence_enc = msgspec.json.Encoder()


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` (what the producer chose for it)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def similar_for(incident: ev.Incident, action: ev.Action) -> Silence:
    """The silence a "Silence similar" action makes: this incident's rule and job type(s)."""
    until = action.until or action.at + timedelta(hours=1)
    silence = similar_silence(incident, id=action.silence_id or f"s-{action.id}", by=action.by, at=action.at,
                              until=until)  # fmt: skip
    return msgspec.structs.replace(silence, origin=action.via)


class IncidentStage:
    """Keeps incidents and says what to notify (see the module docstring)."""

    def __init__(
        self, *, comps: Any, table: Any, notifications_topic: Any, silences_topic: Any, partitions: int,
        owned: Callable[[], set[int] | None], retention: float = 86400.0, keep: float = 7 * 86400.0,
        reread: Reread | None = None, committed: Committed | None = None,
    ) -> None:  # fmt: skip
        self.comps, self.table, self.partitions, self.owned = comps, table, partitions, owned
        self.net = RereadNet(what="alerts and actions", owned=owned, reread=reread or _nothing,
                             committed=committed or _none, handled=self._left_a_trace, recover=self._recover)  # fmt: skip
        self.notifications_topic, self.silences_topic = notifications_topic, silences_topic
        self.retention, self.keep = retention, keep
        self.lock = asyncio.Lock()
        self.rows = Rows()  # incident rows written, until the broker has them
        # When each incident of this worker's partitions may next escalate: the timer looks only here.
        self._due: dict[str, tuple[int, datetime]] = {}
        self._settling: dict[str, tuple[int, datetime]] = {}  # just opened: when its page goes out
        self._indexed: frozenset[int] | None = None

    # -- the table ---------------------------------------------------------------------------

    def get(self, incident_id: str) -> ev.Incident | None:
        raw = self.table.data.get(incident_id)
        return _dec.decode(raw) if raw else None

    def _put(self, incident: ev.Incident | None, incident_id: str, partition: int) -> None:
        value = ev.encode(incident).decode() if incident is not None else None
        self.rows.write(self.table, incident_id, value, partition)
        self._index(incident_id, partition, incident)

    def _steps(self, rule_name: str) -> tuple[Any, ...]:
        ruleset = self.comps.ruleset()
        if getattr(self, "_rules_of", None) is not ruleset:
            self._rules_of, self._by_name = ruleset, {r.name: r for r in ruleset.rules}
        rule = self._by_name.get(rule_name)
        return rule.options.escalate if rule is not None else ()

    def rules_changed(self) -> None:
        """Reloaded rules may escalate differently: rebuild the index at the next tick."""
        self._indexed = None

    def _index(self, incident_id: str, partition: int, incident: ev.Incident | None) -> None:
        if incident is not None and incident.settling:
            self._settling[incident_id] = (partition, incident.opened_at + timedelta(seconds=SETTLE))
        else:
            self._settling.pop(incident_id, None)
        due = escalation.due_at(incident, self._steps(incident.rule)) if incident is not None else None
        if due is None:
            self._due.pop(incident_id, None)
        else:
            self._due[incident_id] = (partition, due)

    def _reindex(self, parts: set[int]) -> None:
        self._due.clear()
        self._settling.clear()
        for incident_id, raw in list(self.table.data.items()):
            if raw and (partition := partition_of(incident_id, self.partitions)) in parts:
                self._index(incident_id, partition, _dec.decode(raw))
        self._indexed = frozenset(parts)

    # -- the agent ---------------------------------------------------------------------------

    async def on_batch(self, records: Iterable[tuple[bool, int, int, ev.AnyRecord | None]]) -> int:
        """The agent's batch: (from the alerts topic?, partition, offset, record); notifications made."""
        batch, handed = [], []
        for alerts, partition, offset, record in records:
            if alerts:  # the net re-reads the alerts topic (actions are few, and leave their trace too)
                handed.append((partition, offset))
            if record is not None:
                batch.append((partition, record))
        made = await self.on_records(batch)
        # Only now: while a batch is being applied its alerts have no trace yet, and a net round
        # in between must leave them to the agent (it did not, under load: a false "reached no
        # incident" and a second, idempotent, application).
        for partition, offset in handed:
            self.net.saw(partition, offset)
        return made

    async def on_records(self, records: Iterable[tuple[int, ev.AnyRecord]]) -> int:
        """One batch of alerts and actions (with their partitions); notifications made."""
        async with self.lock:
            now = datetime.now(UTC)
            work: dict[str, tuple[int, ev.Incident | None, ev.Incident | None, list[Intent]]] = {}
            silences: list[Silence] = []
            for partition, record in records:
                if isinstance(record, ev.Alert):
                    incident_id = record.incident or record.key
                    if not record.incident:  # written before incidents existed: its own incident
                        record = msgspec.structs.replace(record, incident=incident_id)
                elif isinstance(record, ev.Action):
                    incident_id = record.incident
                else:
                    continue
                _, before, current, intents = work.get(incident_id) or (partition, *(2 * (self.get(incident_id),)), [])
                if isinstance(record, ev.Alert):
                    current, said = apply_alert(current, record, now)
                    self._count_alert(record, said)
                else:
                    if record.kind == "silence" and current is not None and record.id not in _actions(current):
                        silences.append(similar_for(current, record))
                    if current is None:
                        log.warning("action %s on unknown incident %s ignored", record.kind, incident_id)
                    current, said = apply_action(current, record, now)
                work[incident_id] = (partition, before, current, [*intents, *said])
            return await self._commit(work, silences, now)

    async def _commit(
        self, work: dict[str, tuple[int, ev.Incident | None, ev.Incident | None, list[Intent]]],
        silences: list[Silence], now: datetime,
    ) -> int:  # fmt: skip
        sent: list[Any] = []
        rows: list[tuple[str, int, ev.Incident | None]] = []
        made = 0
        for silence in silences:
            sent.append(await self.silences_topic.send(key=silence.id.encode(), value=_silence_enc.encode(silence)))
        for incident_id, (partition, before, current, intents) in work.items():
            if current is None or current == before:
                continue
            intents = fold(intents)
            if current.settling or any(i.kind == "open" for i in intents):
                # Gathering: the page goes out when it settles (tick), with every job known by then.
                current = msgspec.structs.replace(current, settling=True)
                intents = []
            if intents:
                current, notes = notifications(current, intents, now)
                made += await self._send(incident_id, notes, sent)
            rows.append((incident_id, partition, current))
        await self._write_after(sent, rows)
        return made

    async def _send(self, incident_id: str, notes: Iterable[ev.Notification], sent: list[Any]) -> int:
        """Send ``notes`` (their futures into ``sent``); how many."""
        n = 0
        for note in notes:
            self._count(note)
            sent.append(await self.notifications_topic.send(key=incident_id.encode(), value=ev.encode(note)))
            n += 1
        return n

    async def _write_after(self, sent: list[Any], rows: Iterable[tuple[str, int, ev.Incident | None]]) -> None:
        """Every record sent durable before a row says it was made; then the rows, on the broker
        before the records that made them are acked."""
        await asyncio.gather(*sent)
        for incident_id, partition, incident in rows:
            self._put(incident, incident_id, partition)
        await self.rows.durable()

    def _count_alert(self, alert: ev.Alert, said: list[Intent]) -> None:
        stats = self.comps.stats
        if alert.incident_kind == "group":
            stats.group_messages += 1  # its member alerts were counted as grouped
        elif alert.incident_kind == "health":
            stats.notices += 1
        elif any(i.kind == "open" for i in said):
            stats.paged += 1
        else:
            stats.merged += 1

    def _count(self, note: ev.Notification) -> None:
        stats = self.comps.stats
        if note.kind == "open":
            stats.opened += 1
        elif note.kind == "resolve":
            stats.resolved += 1
        elif note.audience == "editable":
            stats.updated += 1
        log.info("incident %s: %s (%s) %s", note.incident.id, note.kind, note.audience, note.change)
        for hook in self.comps.incident_hooks:
            hook(note)

    # -- the timer ---------------------------------------------------------------------------

    def _mine(self) -> set[int] | None:
        return self.owned()

    async def tick(self, now: datetime | None = None) -> int:
        """Send the pages of the incidents that settled, and fire the escalation steps that are due,
        on the incidents of this worker's partitions."""
        parts = self._mine()
        if parts is None:
            return 0
        now = now or datetime.now(UTC)
        async with self.lock:
            if self._indexed != frozenset(parts):  # partitions moved (or rules reloaded): look again
                self._reindex(parts)
            made = await self._settle(parts, now)
        rules = {r.name: r for r in self.comps.ruleset().rules}
        if not any(r.options.escalate for r in rules.values()):
            return made
        async with self.lock:
            work: dict[str, tuple[int, ev.Incident | None, ev.Incident | None, list[Intent]]] = {}
            for incident_id, (partition, due) in list(self._due.items()):
                if due > now or partition not in parts:
                    continue
                incident = self.get(incident_id)
                if incident is None:
                    continue
                rule = rules.get(incident.rule)
                steps = rule.options.escalate if rule else ()
                step = escalation.due_step(incident, steps, now)
                if step is None:
                    continue
                after, intent = escalate(incident, step, steps[step].tags, steps[step].after, now)
                work[incident_id] = (partition, incident, after, [intent])
                self.comps.stats.escalated += 1
            return made + (await self._commit(work, [], now) if work else 0)

    async def _settle(self, parts: set[int], now: datetime) -> int:
        """The pages of the incidents whose gathering time is over: the opening, as the incident
        stands now (and its resolution, in the rare case it resolved meanwhile)."""
        sent: list[Any] = []
        rows: list[tuple[str, int, ev.Incident]] = []
        made = 0
        for incident_id, (partition, due) in list(self._settling.items()):
            if due > now or partition not in parts:
                continue
            incident = self.get(incident_id)
            if incident is None or not incident.settling:
                self._settling.pop(incident_id, None)
                continue
            settled = msgspec.structs.replace(incident, settling=False)
            firing = msgspec.structs.replace(settled, state="firing", resolved_at=None)
            what = ", ".join(f"{label(j)} {j.status}" for j in settled.jobs[:3])
            intents = [Intent("open", "all", firing, change=what, alert=settled.last_alert)]
            if settled.state == "resolved":
                intents.append(Intent("resolve", "all", settled, change="resolved", alert=settled.last_alert))
            settled, notes = notifications(settled, intents, now)
            made += await self._send(incident_id, notes, sent)
            rows.append((incident_id, partition, settled))
        await self._write_after(sent, rows)
        return made

    def evict(self, now: datetime | None = None) -> int:
        """Forget incidents of this worker's partitions that are long over."""
        parts = self._mine()
        if parts is None:
            return 0
        now = now or datetime.now(UTC)
        dropped = 0
        for incident_id, raw in list(self.table.data.items()):
            if not raw or (partition := partition_of(incident_id, self.partitions)) not in parts:
                continue
            incident = _dec.decode(raw)
            age = now - incident.updated_at
            if (incident.state == "resolved" and age > timedelta(seconds=self.retention)) or age > timedelta(
                seconds=self.keep
            ):
                self._put(None, incident_id, partition)
                dropped += 1
        return dropped


    # -- the re-read net ---------------------------------------------------------------------

    def _left_a_trace(self, record: Any) -> bool:
        """Whether ``record`` reached its incident (or is too old to judge: its incident may have
        left the table)."""
        if isinstance(record, ev.Alert):
            if (datetime.now(UTC) - record.fired_at).total_seconds() > self.retention:
                return True
            incident = self.get(record.incident or record.key)
            return incident is not None and (record.key in incident.alerts or incident.opened_at > record.fired_at)
        if isinstance(record, ev.Action):
            incident = self.get(record.incident)
            return incident is None or f"action:{record.id}" in incident.alerts
        return True

    async def _recover(self, record: Any, partition: int) -> None:
        what = record.key if isinstance(record, ev.Alert) else f"action {record.id}"
        log.warning("%s reached no incident (its worker stopped, or the stream skipped it): applying it now", what)
        self.comps.metrics.recovered.inc()
        await self.on_records([(partition, record)])

    async def reconcile(self) -> int:
        return await self.net.round()


async def _nothing(starts: dict[int, int]) -> list[tuple[int, int, bytes | None]]:
    return []


async def _none(parts: set[int]) -> dict[int, int]:
    return {}


def _actions(incident: ev.Incident) -> set[str]:
    return {k[len("action:"):] for k in incident.alerts if k.startswith("action:")}
