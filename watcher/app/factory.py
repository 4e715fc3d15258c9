"""The Faust app: topics, tables, agents. The only module tree that imports Faust.

Data flow (every arrow is a Kafka topic, every box keeps its state in Kafka)::

    leader timer --ticks(key=target)--> [poll agent] --events(key=job)--> [rules agent]
        --alerts(key=alert key)--> [notify agent] --(undeliverable)--> dlq
    [rules agent] --grouping(key=group)--> [group agent]; silenced --> decisions
    [rules agent] --bursts(key=rule+group)--> [burst agent] --> alerts or grouping
    [rules agent] --shares(key=rule+parent job)--> [share agent] --> alerts or grouping
    any stage --inhibitions(key=id)--> every worker, read whole (as silences)
    track topic --> [track agent] --ticks--> poll agent
    silences topic --> every worker, read whole; stage timer: due stuck timers and groups

The rule stages (stuck timers, silences, grouping) live in :mod:`watcher.app.stages`.

Scale-out is the consumer group's: a target's ticks always go to one partition, so the
worker owning that partition is the only one polling it, and its poll state (tables
co-partitioned with the ticks topic) moves with the partition when a worker dies.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import faust
import msgspec

from watcher import events as ev
from watcher.app import inhibitions as inhibition_feed
from watcher.app import kafka
from watcher.app import silences as silence_feed
from watcher.app.outage import BrokerWatch, complete_within
from watcher.app.reload import RuleReloader, refused_alert
from watcher.app.stages import Stages, write_row
from watcher.app.topics import read_from
from watcher.config import Config
from watcher.errors import BrokerError
from watcher.notify.retry import DeliveryOutcome
from watcher.poller.diff import JobState
from watcher.poller.loop import Intervals, poll_target
from watcher.poller.outbox import Outbox
from watcher.poller.schedule import TargetState
from watcher.sources.base import Target

log = logging.getLogger("watcher.app")


class Tick(msgspec.Struct, frozen=True, kw_only=True):
    """Asks the owner of a target's partition to poll it if due (and to track new job ids)."""

    target_id: str
    track: tuple[str, ...] = ()
    force: bool = False


_tick_enc = msgspec.json.Encoder()
_tick_dec = msgspec.json.Decoder(Tick)
_state_dec = msgspec.json.Decoder(TargetState)
_job_dec = msgspec.json.Decoder(JobState)


def decode_or_warn(raw: bytes, what: str) -> ev.AnyRecord | None:
    """A record off a topic, or None (logged) when it does not decode: bad input loses nothing else."""
    try:
        return ev.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        log.warning("ignored a malformed %s: %s", what, e)
        return None


#: How often each worker re-reads its alerts partitions for undelivered alerts, and how old an
#: alert must be before that re-read delivers it (younger ones are the notify agent's).
RECONCILE_EVERY = 10.0
RECONCILE_AFTER = 15.0
#: The rules agent's batches: at most this many events, waiting at most this long to fill.
EVALUATE_BATCH, EVALUATE_WITHIN = 500, 0.05


def partition_for(target_id: str, partitions: int) -> int:
    """Stable across processes and restarts (unlike hash())."""
    return zlib.crc32(target_id.encode()) % partitions


class StateWrites:
    """Each target's poll-state changelog sends still in flight; its next publish awaits them.

    Why: the state that recorded a target's previous changes must be durable before newer
    changes go out. Else a successor reading older state would publish RUNNING→FAILED again
    as WAITING→FAILED, a different alert key, and page twice for one failure."""

    def __init__(self) -> None:
        self._pending: dict[str, list[Any]] = {}

    def add(self, target_id: str, sent: Any) -> None:
        pending = [f for f in self._pending.get(target_id, ()) if not f.done()]  # a quiet target's list stays short
        self._pending[target_id] = [*pending, sent]

    async def settle(self, target_id: str) -> None:
        await asyncio.gather(*self._pending.pop(target_id, []))


class TableStore:
    """PollStore over two Faust tables, writing the changelog of one known partition (each
    send recorded in ``writes``)."""

    def __init__(self, targets: Any, jobs: Any, partition: int, writes: StateWrites | None = None) -> None:
        self.targets, self.jobs, self.partition = targets, jobs, partition
        self.writes = writes if writes is not None else StateWrites()

    def target_state(self, target_id: str) -> TargetState | None:
        raw = self.targets.get(target_id)
        return _state_dec.decode(raw) if raw else None

    def job_state(self, target_id: str, job_id: str) -> JobState | None:
        raw = self.jobs.get(f"{target_id}|{job_id}")
        return _job_dec.decode(raw) if raw else None

    def _put(self, target_id: str, table: Any, key: str, value: str) -> None:
        table.data[key] = value
        self.writes.add(target_id, table.send_changelog(self.partition, key, value))

    def put_target_state(self, target_id: str, state: TargetState) -> None:
        self._put(target_id, self.targets, target_id, _tick_enc.encode(state).decode())

    def put_job_state(self, target_id: str, job_id: str, state: JobState) -> None:
        self._put(target_id, self.jobs, f"{target_id}|{job_id}", _tick_enc.encode(state).decode())


class TableEpisodes:
    """Open watcher-blind episodes (target id → start) in a table co-partitioned with the ticks."""

    def __init__(self, table: Any, partitions: int) -> None:
        self.table, self.partitions = table, partitions

    def get(self, target_id: str) -> float | None:
        raw = self.table.data.get(target_id)
        return float(raw) if raw else None

    def put(self, target_id: str, episode: float) -> None:
        write_row(self.table, target_id, repr(episode), partition_for(target_id, self.partitions))

    def drop(self, target_id: str) -> None:
        write_row(self.table, target_id, None, partition_for(target_id, self.partitions))


def faust_settings(config: Config, broker_url: str, embedded: bool) -> dict[str, Any]:
    settings: dict[str, Any] = dict(
        # broker and broker_credentials (TLS, SASL): the same connection every other client uses
        **kafka.faust_settings(kafka.connection(config, broker_url)),
        # create_topics = false: the cluster admin made them (`watcher topics plan`), the runner checked them
        topic_allow_declare=config.broker.create_topics,
        store="memory://",
        # State lives in Kafka; Faust's data dir only holds scratch files, never in the cwd.
        datadir=tempfile.mkdtemp(prefix="watcher-faust-"),
        web_enabled=config.app.web_port > 0,
        web_port=config.app.web_port or 6066,
        web_host="127.0.0.1",
        topic_partitions=config.broker.partitions,
        topic_replication_factor=config.broker.replication_factor,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        # A commit per acked record (the rules agent acks a batch at once: one commit per batch
        # there). Committing on an interval loses alerts across SIGKILL through Faust/aiokafka
        # offset defects that per-record commits mostly hide (README, Performance: never-committed partitions are
        # not rewound after an assignment; commits past a record still in flight). A fix for
        # them (0f49571, reverted) still lost some, so stay with per-record commits.
        broker_commit_every=1,
        broker_commit_interval=0.5,
        stream_wait_empty=False,
        producer_acks=-1,
        broker_session_timeout=config.seconds(config.broker.session_timeout),
        broker_heartbeat_interval=max(0.5, config.seconds(config.broker.session_timeout) / 6),
    )
    if embedded:
        from watcher.app.broker import FAUST_SETTINGS_FOR_TANSU

        settings.update(FAUST_SETTINGS_FOR_TANSU)
    return settings


def build_app(
    config: Config,
    broker_url: str,
    *,
    embedded: bool = False,
    client: Any = None,
    notifier: Any = None,
    ruleset: Any = None,
) -> faust.App:
    """Wire the whole pipeline for one worker process; ``client``/``notifier``/``ruleset`` built if None."""
    from watcher.app.components import build_components

    comps = build_components(config, client=client, notifier=notifier, ruleset=ruleset)
    prefix = config.broker.topic_prefix
    n = config.broker.partitions
    app = faust.App(config.app.id, **faust_settings(config, broker_url, embedded))
    raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    ticks = app.topic(f"{prefix}.ticks", partitions=n, **raw)
    events_topic = app.topic(f"{prefix}.events", partitions=n, **raw)
    alerts_topic = app.topic(f"{prefix}.alerts", partitions=n, **raw)
    dlq_topic = app.topic(f"{prefix}.dlq", partitions=n, **raw)
    track_topic = app.topic(f"{prefix}.track", partitions=n, **raw)

    table_kw = dict(partitions=n, key_type=str, value_type=str)  # json-serialized strings both ways
    poll_targets = app.Table(f"{prefix}-poll-targets", default=None, **table_kw)
    poll_jobs = app.Table(f"{prefix}-poll-jobs", default=None, **table_kw)
    delivered = app.Table(f"{prefix}-delivered", default=None, **table_kw)
    blind_episodes = app.Table(f"{prefix}-blind-episodes", default=None, **table_kw)  # by target, as ticks
    # The stateful rule stages (watcher.app.stages): stuck timers by job key (co-partitioned
    # with events), groups by group key (co-partitioned with the grouping topic).
    grouping_topic = app.topic(f"{prefix}.grouping", partitions=n, **raw)
    decisions_topic = app.topic(f"{prefix}.decisions", partitions=n, **raw)
    stuck_timers = app.Table(f"{prefix}-stuck-timers", default=None, **table_kw)
    groups = app.Table(f"{prefix}-groups", default=None, **table_kw)
    bursts_topic = app.topic(f"{prefix}.bursts", partitions=n, **raw)  # key: rule + burst group
    windows = app.Table(f"{prefix}-burst-windows", default=None, **table_kw)
    shares_topic = app.topic(f"{prefix}.shares", partitions=n, **raw)  # key: rule + parent job key
    shares = app.Table(f"{prefix}-shares", default=None, **table_kw)
    inhibitions_topic = app.topic(inhibition_feed.topic_name(config), partitions=n, **raw)  # read whole

    app.watcher_topics = {  # type: ignore[attr-defined]
        **{t.get_topic_name(): n for t in (ticks, events_topic, alerts_topic, dlq_topic, track_topic)},
        **{tb.changelog_topic.get_topic_name(): n for tb in (poll_targets, poll_jobs, delivered, blind_episodes)},
        **{t.get_topic_name(): n for t in (grouping_topic, decisions_topic, bursts_topic, shares_topic)},
        **{tb.changelog_topic.get_topic_name(): n for tb in (stuck_timers, groups, windows, shares)},
        silence_feed.topic_name(config): n,
        inhibition_feed.topic_name(config): n,
    }
    silences = silence_feed.SilenceBook(comps.silences)
    inhibitions = inhibition_feed.InhibitionBook()

    def install_rules(ruleset: Any, file_silences: list[Any]) -> None:
        comps.replace_ruleset(ruleset)
        silences.from_files = list(file_silences)

    reloader = RuleReloader(list(config.rules.files), install_rules)
    app.watcher_reloader = reloader  # type: ignore[attr-defined]

    comps.metrics.rules_loaded.set(len(comps.ruleset()))

    @app.timer(2.0)  # every worker watches the rule files it was started with
    async def reload_rules() -> None:
        result = reloader.check()
        if result is None:
            return
        comps.metrics.rule_reloads.labels("applied" if result else "refused").inc()
        comps.metrics.rules_loaded.set(len(comps.ruleset()))
        if result is False and config.health.notify_rule_errors and reloader.last_error:
            # Every worker sees the same change and sends the same key: delivered once.
            alert = refused_alert(reloader.last_error, datetime.now(UTC), config.health.tags)
            await alerts_topic.send(key=alert.key.encode(), value=ev.encode(alert))
    stages = Stages(
        app, comps, silences, inhibitions, timers=stuck_timers, groups=groups, windows=windows, shares=shares,
        events_topic=events_topic, alerts_topic=alerts_topic, grouping_topic=grouping_topic,
        decisions_topic=decisions_topic, bursts_topic=bursts_topic, shares_topic=shares_topic,
        inhibitions_topic=inhibitions_topic,
    )  # fmt: skip
    targets: dict[str, Target] = {t.id: t for t in config.targets()}
    intervals = Intervals(fast=config.seconds(config.poll.fast), idle=config.seconds(config.poll.idle))
    inflight: set[str] = set()
    shutdown_grace = config.seconds(config.app.shutdown_grace)
    app.watcher_components = comps  # type: ignore[attr-defined]
    app.watcher_episodes = TableEpisodes(blind_episodes, n)  # type: ignore[attr-defined]

    async def publish_alert(alert: ev.Alert) -> None:
        await alerts_topic.send(key=alert.key.encode(), value=ev.encode(alert))

    app.watcher_publish_alert = publish_alert  # type: ignore[attr-defined]
    app.watcher_targets = targets  # type: ignore[attr-defined]

    state_writes = StateWrites()

    async def publish(batch: Sequence[ev.JobEvent]) -> None:
        await state_writes.settle(batch[0].target)  # the state recording earlier changes is durable first
        futs = [await events_topic.send(key=e.job_key.encode(), value=ev.encode(e)) for e in batch]
        await asyncio.gather(*futs)  # broker acks before poll state moves on

    # While the broker is away: hold changes with their (not yet durable) poll state, and poll
    # without ticks, which travel through the broker too (watcher.poller.outbox, app.outage).
    outbox = Outbox(publish, bound=config.broker.outage_buffer)
    comps.metrics.outage_buffer.set_function(lambda: outbox.size)
    conn = kafka.connection(config, broker_url)  # every client below: the configured TLS and SASL
    broker_watch = BrokerWatch(conn, stale=max(3.0, 4 * config.seconds(config.poll.tick)))
    app.watcher_outbox = outbox  # type: ignore[attr-defined]

    async def poll_one(target_id: str, partition: int, track: Sequence[str] = (), force: bool = False) -> None:
        target = targets.get(target_id)
        if target is None or target_id in inflight:
            return
        inflight.add(target_id)
        try:
            durable = TableStore(poll_targets, poll_jobs, partition, state_writes)
            outcome = await poll_target(
                target, comps.source(target.source), comps.client, outbox.store(target_id, durable),
                outbox.publisher(target_id, durable), intervals=intervals, track=track, force=force,
            )
            if outcome.polled:
                comps.stats.polls += 1
                comps.stats.events += outcome.events
        except Exception:  # never let one target kill the agent
            log.exception("poll of %s crashed", target_id)
        finally:
            inflight.discard(target_id)

    @app.timer(config.seconds(config.poll.tick))
    async def poll_while_broker_away() -> None:
        await outbox.flush()
        if not await broker_watch.check():
            return
        mine = {tp.partition for tp in app.consumer.assignment() if tp.topic == ticks.get_topic_name()}
        for tid in targets:  # the partitions this worker held when the broker went: nobody else polls them
            if (p := partition_for(tid, n)) in mine:
                await poll_one(tid, p)

    @app.timer(config.seconds(config.poll.tick), on_leader=True)
    async def schedule_ticks() -> None:
        for tid in targets:
            await ticks.send(key=tid.encode(), value=_tick_enc.encode(Tick(target_id=tid)), partition=partition_for(tid, n))

    @app.agent(ticks, concurrency=8)
    async def poll(stream: Any) -> None:
        async for event in stream.events():
            broker_watch.saw_tick()
            tick = _tick_dec.decode(event.value)
            await poll_one(tick.target_id, event.message.partition, tick.track, tick.force)

    @app.agent(track_topic)
    async def track(stream: Any) -> None:
        async for value in stream:
            req = decode_or_warn(value, "track request")
            if not isinstance(req, ev.TrackRequest):
                continue
            tid = comps.target_for(req, targets)
            if tid is None:
                log.warning(
                    "cannot track %s job %s: no [[watch]] for source=%s region=%s project=%s in the config",
                    req.source, req.job_id, req.source, req.region, req.project_id,
                )
                continue
            tick = Tick(target_id=tid, track=(req.job_id,), force=True)
            await ticks.send(key=tid.encode(), value=_tick_enc.encode(tick), partition=partition_for(tid, n))

    @app.task
    async def follow_silences() -> None:
        await silence_feed.follow(silences, conn, silence_feed.topic_name(config))

    @app.task
    async def follow_inhibitions() -> None:
        await silence_feed.follow(inhibitions, conn, inhibition_feed.topic_name(config))

    @app.agent(events_topic)
    async def evaluate(stream: Any) -> None:
        await silences.ready.wait()  # no alert before every silence and inhibition is known
        await inhibitions.ready.wait()
        # In batches: Faust acks a batch's events once the loop asks for the next batch, so each
        # is handled before its offset can be committed (at-least-once), and one commit covers
        # the batch instead of one commit round trip per event (~7x the events/s: make bench).
        async for batch in stream.take_events(EVALUATE_BATCH, within=EVALUATE_WITHIN):
            for event in batch:
                record = decode_or_warn(event.value, "event")
                if isinstance(record, ev.JobEvent):
                    await stages.on_event(record, event.message.partition)

    @app.agent(grouping_topic)
    async def group(stream: Any) -> None:
        async for event in stream.events():
            alert = decode_or_warn(event.value, "grouped alert")
            if isinstance(alert, ev.Alert):
                await stages.on_grouped(alert, event.message.partition)

    async def count(stream: Any, handle: Any, what: str) -> None:
        async for event in stream.events():
            try:
                await handle(event.value, event.message.partition)
            except (msgspec.DecodeError, msgspec.ValidationError) as e:
                log.warning("ignored a malformed %s: %s", what, e)

    @app.agent(bursts_topic)
    async def count_bursts(stream: Any) -> None:
        await count(stream, stages.on_burst_hit, "burst hit")

    @app.agent(shares_topic)
    async def count_shares(stream: Any) -> None:
        await count(stream, stages.on_share_hit, "share hit")

    @app.timer(0.5)  # every worker: each fires the due timers and groups of its own partitions
    async def stage_timers() -> None:
        await stages.tick()

    # A target that stays down must not hold up the alerts behind it: an alert whose retries
    # would keep its notify slot waiting past [notify.retry] inline_seconds goes on retrying in
    # a task of its own. Nothing durable is needed for that: until it is marked delivered or dead,
    # the alert on the topic is the truth, and the re-read below finds it after a crash.
    parked: dict[str, asyncio.Task[None]] = {}  # alert key -> its retries, off the notify queue
    reconciled: dict[int, int] = {}  # alerts partition -> where the re-read (below) looks next

    @app.agent(alerts_topic, concurrency=4)
    async def notify(stream: Any) -> None:
        async for event in stream.events():
            alert = decode_or_warn(event.value, "alert")
            if not isinstance(alert, ev.Alert) or alert.key in inflight:
                continue
            await deliver_held(alert, event.message.partition, event.message.offset)

    async def deliver_held(alert: ev.Alert, partition: int, offset: int) -> None:
        """``deliver_once`` with the alert's key held: no other path delivers it meanwhile."""
        inflight.add(alert.key)
        try:  # a stopping worker lets it finish (and be marked): its successor must not resend it
            await complete_within(deliver_once(alert, partition, offset), shutdown_grace, f"alert {alert.key}")
        finally:
            if alert.key not in parked:
                inflight.discard(alert.key)

    async def deliver_once(alert: ev.Alert, partition: int, offset: int) -> None:
        """Deliver to each routed target once: per-target marks survive a crash mid-alert."""
        mark = delivered.get(f"{alert.key}|*")
        if mark == "1" or (mark is not None and not alert.replay):
            comps.stats.deduped += 1
            return
        started = time.time()
        outcome = await attempt(alert, partition, 0, started)
        if outcome.later is None:
            await settle(alert, partition, outcome)
        else:
            parked[alert.key] = asyncio.ensure_future(retry_off_queue(alert, partition, offset, outcome, started))

    async def attempt(alert: ev.Alert, partition: int, attempts: int, started: float) -> DeliveryOutcome:
        """Send to the routed targets that have no mark yet, retrying for up to ``inline_seconds``."""
        prefix_ = f"{alert.key}|"
        already = {t for t in comps.notifier.target_ids(alert) if delivered.get(prefix_ + t)}

        def mark(target_id: str) -> None:
            delivered.data[prefix_ + target_id] = "1"
            delivered.send_changelog(partition, prefix_ + target_id, "1")

        return await comps.notifier.deliver_with_retry(  # type: ignore[no-any-return]
            alert, already_ok=already, on_success=mark, attempts=attempts, started=started,
            hold=config.notify.retry.inline_seconds,
        )  # fmt: skip

    async def retry_off_queue(alert: ev.Alert, partition: int, offset: int, outcome: DeliveryOutcome,
                              started: float) -> None:  # fmt: skip
        """The rest of an alert's retries, each round when due, while this worker owns its partition."""
        try:
            while outcome.later is not None:
                await asyncio.sleep(outcome.later)
                if partition not in owned_alerts_partitions():  # its new owner's re-read takes it over
                    log.info("alert %s: partition %d moved, leaving its retries to its new owner", alert.key, partition)
                    rewind_reread(partition, offset)
                    return
                work = attempt(alert, partition, outcome.attempts, started)
                outcome = await complete_within(work, shutdown_grace, f"alert {alert.key}")
            await settle(alert, partition, outcome)
        except Exception:  # never lose it silently: the re-read finds it again
            log.exception("retrying alert %s crashed; the re-read of %s takes it up", alert.key, alerts_topic.get_topic_name())
            rewind_reread(partition, offset)
        finally:
            parked.pop(alert.key, None)
            inflight.discard(alert.key)

    @app.on_before_shutdown.connect
    async def stop_parked_retries(_: Any, **__: Any) -> None:
        """Stopping: a retry round under way gets ``shutdown_grace``; the alerts stay unmarked for a successor."""
        tasks = list(parked.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def owned_alerts_partitions() -> set[int]:
        name = alerts_topic.get_topic_name()
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == name}

    def rewind_reread(partition: int, offset: int) -> None:
        """An alert left undelivered here: the re-read of its partition looks at it again."""
        if partition in reconciled:
            reconciled[partition] = min(reconciled[partition], offset)

    async def settle(alert: ev.Alert, partition: int, outcome: DeliveryOutcome) -> None:
        """Mark the alert delivered, or dead-letter it: either way no worker sends it again."""
        done_key = f"{alert.key}|*"
        if outcome.delivered:
            delivered.data[done_key] = "1"
            delivered.send_changelog(partition, done_key, "1")
            comps.stats.sent += 1
            comps.on_delivered(alert)
        else:
            dead = ev.DeadLetter(
                alert=alert, reason=outcome.reason, attempts=outcome.attempts,
                failed_targets=tuple(outcome.failed_targets), failed_at=datetime.now(UTC),
            )
            await dlq_topic.send(key=alert.key.encode(), value=ev.encode(dead))
            delivered.data[done_key] = "dead"
            delivered.send_changelog(partition, done_key, "dead")
            comps.stats.dead += 1
            log.error("alert %s dead-lettered: %s", alert.key, outcome.reason)
        await app.producer.flush()  # shrink the window in which a crash could resend

    # Across a crash Faust can leave an alert unread for good (README, Performance: partitions
    # never committed are not rewound; commits past an alert still in flight). The delivered
    # table is the truth, so each worker re-reads the alerts partitions it owns and delivers
    # what has no mark. Younger alerts are left to the stream, and looked at next round.

    @app.timer(RECONCILE_EVERY)
    async def reconcile_alerts() -> None:
        if getattr(app, "in_recovery", False):
            return
        name = alerts_topic.get_topic_name()
        owned = owned_alerts_partitions()
        for p in set(reconciled) - owned:  # moved to another worker: it looks from the start
            del reconciled[p]
        if broker_watch.away:
            return
        try:
            records = await read_from(conn, name, {p: reconciled.get(p, 0) for p in owned})
        except (BrokerError, OSError, TimeoutError) as e:  # the broker away: the next round looks again
            log.info("re-reading %s for undelivered alerts failed, trying again later: %s", name, e)
            return
        now, young = datetime.now(UTC), set()
        for partition, offset, value in records:
            record = decode_or_warn(value or b"", "alert")
            alert = record if isinstance(record, ev.Alert) else None
            if partition in young or (alert and (now - alert.fired_at).total_seconds() < RECONCILE_AFTER):
                young.add(partition)
                continue
            reconciled[partition] = offset + 1
            if alert is None or alert.replay or alert.key in inflight or delivered.get(f"{alert.key}|*") is not None:
                continue
            log.warning("alert %s is on %s but was never delivered: delivering it now", alert.key, name)
            await deliver_held(alert, partition, offset)

    app.watcher_started = time.time()  # type: ignore[attr-defined]
    return app
