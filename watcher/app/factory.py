"""The Faust app: topics, tables, agents — the wiring diagram. The only module tree that imports Faust.

Data flow (every arrow is a Kafka topic, every box a stage object that keeps its state in Kafka)::

    [PollStage] local schedule of the targets of this worker's partitions
        --events(key = incident subject)--> [EvaluateStage] rules, stuck timers, bursts, shares,
            silences, inhibition, grouping --alerts(key = incident)--> [IncidentStage]
            --notifications(key = incident)--> [NotifyStage] --> channels, or the dlq
    actions(key = incident): ack / snooze / silence --> [IncidentStage]
    track topic --> poll-requests(key = target) --> the target's owner
    [EvaluateStage] --grouping / bursts / shares (keyed by group)--> its own agents
    silences, inhibitions: read whole by every worker; status: what each worker sees

Which worker does what is the consumer group's: all topics and tables have ``[broker]
partitions`` partitions, and the worker that holds partition p of one holds partition p of all
(co-partitioned): the targets whose ``partition_for`` is p, the incidents and notifications keyed
to p, and the table rows of p. The stages live in their own modules (``app/poll.py``,
``app/evaluate.py``, ``app/incidents.py``, ``app/notify.py``); this module only builds and
connects them.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import faust
import msgspec

from watcher import events as ev
from watcher.app import inhibitions as inhibition_feed
from watcher.app import kafka
from watcher.app import silences as silence_feed
from watcher.app.evaluate import EvaluateStage
from watcher.app.incidents import IncidentStage
from watcher.app.notify import RECONCILE_EVERY, NotifyStage
from watcher.app.outage import reachable
from watcher.app.poll import (
    Ownership,
    PollRequest,
    PollStage,
    TableJobStore,
    partition_for,
    request_decoder,
)
from watcher.app.reload import RuleReloader, refused_alert
from watcher.app.status import WORKER, StatusBoard
from watcher.app.tables import write_row
from watcher.app.topics import committed_offsets, read_from
from watcher.config import Config
from watcher.notify.channels import ChannelSet, build_interactions
from watcher.notify.dispatch import Channels
from watcher.poller.loop import Intervals
from watcher.poller.outbox import Outbox

log = logging.getLogger("watcher.app")

__all__ = ["build_app", "faust_settings", "partition_for", "TableEpisodes", "PollRequest"]

#: The agents' batches: at most this many records, waiting at most this long to fill.
BATCH, WITHIN = 500, 0.05
_req_enc = msgspec.json.Encoder()


def decode_or_warn(raw: bytes, what: str) -> ev.AnyRecord | None:
    """A record off a topic, or None (logged) when it does not decode: bad input loses nothing else."""
    try:
        return ev.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        log.warning("ignored a malformed %s: %s", what, e)
        return None


class TableEpisodes:
    """Open watcher-blind episodes (target id → start) in a table co-partitioned with the targets."""

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
        # A commit per acked record; the agents read in batches (take_events) and ack a batch at
        # once, so one commit per batch. Committing on an interval loses records across SIGKILL
        # through Faust/aiokafka offset defects (README, Performance).
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
    channels: Sequence[Any] = (),
) -> faust.App:
    """Wire the whole pipeline for one worker process; ``client``/``notifier``/``ruleset`` built if None;
    ``channels``: channels beyond the Apprise targets (Slack, the structured webhook)."""
    from watcher.app.components import build_components

    comps = build_components(config, client=client, notifier=notifier, ruleset=ruleset)
    prefix, n = config.broker.topic_prefix, config.broker.partitions
    conn = kafka.connection(config, broker_url)  # every client below: the configured TLS and SASL
    app = faust.App(config.app.id, **faust_settings(config, broker_url, embedded))
    raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    # -- topics and tables -----------------------------------------------------------------------
    def topic(name: str) -> Any:
        return app.topic(f"{prefix}.{name}", partitions=n, **raw)

    def table(name: str) -> Any:  # values are JSON strings; rows are written to explicit partitions
        return app.Table(f"{prefix}-{name}", default=None, partitions=n, key_type=str, value_type=str)

    poll_requests, events_topic, alerts_topic = topic("poll-requests"), topic("events"), topic("alerts")
    notifications_topic, actions_topic, status_topic = topic("notifications"), topic("actions"), topic("status")
    dlq_topic, track_topic, decisions_topic = topic("dlq"), topic("track"), topic("decisions")
    grouping_topic, bursts_topic, shares_topic = topic("grouping"), topic("bursts"), topic("shares")
    inhibitions_topic = app.topic(inhibition_feed.topic_name(config), partitions=n, **raw)  # read whole
    silences_topic = app.topic(silence_feed.topic_name(config), partitions=n, **raw)  # read whole
    poll_jobs, delivered, refs = table("poll-jobs"), table("delivered"), table("message-refs")
    blind_episodes, stuck_timers, groups = table("blind-episodes"), table("stuck-timers"), table("groups")
    windows, shares, incidents_table = table("burst-windows"), table("shares"), table("incidents")
    all_topics = (poll_requests, events_topic, alerts_topic, notifications_topic, actions_topic, status_topic,
                  dlq_topic, track_topic, decisions_topic, grouping_topic, bursts_topic, shares_topic,
                  inhibitions_topic, silences_topic)  # fmt: skip
    all_tables = (poll_jobs, delivered, refs, blind_episodes, stuck_timers, groups, windows, shares, incidents_table)
    app.watcher_topics = {  # type: ignore[attr-defined]
        **{t.get_topic_name(): n for t in all_topics},
        **{tb.changelog_topic.get_topic_name(): n for tb in all_tables},
    }

    # -- who owns what ---------------------------------------------------------------------------
    ownership = Ownership(app, poll_requests.get_topic_name())
    app.on_partitions_revoked.connect(ownership.revoked)
    app.on_rebalance_complete.connect(ownership.completed)

    def owned(t: Any) -> Any:
        def partitions() -> set[int] | None:
            if ownership.partitions() is None:
                return None
            name = t.get_topic_name()
            return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == name}

        return partitions

    # -- rules, silences, inhibitions ------------------------------------------------------------
    silences = silence_feed.SilenceBook(comps.silences)
    inhibitions = inhibition_feed.InhibitionBook()
    reloader = RuleReloader(list(config.rules.files), lambda rs, fs: install_rules(rs, fs))
    app.watcher_reloader = reloader  # type: ignore[attr-defined]
    comps.metrics.rules_loaded.set(len(comps.ruleset()))

    # -- the stages ------------------------------------------------------------------------------
    def reread(t: Any) -> Any:  # the re-read nets: a stage's topic, below what its agent was handed
        async def read(starts: dict[int, int]) -> list[tuple[int, int, bytes | None]]:
            return await read_from(conn, t.get_topic_name(), starts)

        async def committed(parts: set[int]) -> dict[int, int]:
            return await committed_offsets(conn, config.app.id, t.get_topic_name(), parts)

        return dict(reread=read, committed=committed)

    evaluate = EvaluateStage(
        app, comps, silences, inhibitions, timers=stuck_timers, groups=groups, windows=windows, shares=shares,
        events_topic=events_topic, alerts_topic=alerts_topic, grouping_topic=grouping_topic,
        decisions_topic=decisions_topic, bursts_topic=bursts_topic, shares_topic=shares_topic,
        inhibitions_topic=inhibitions_topic, owned=owned(events_topic), **reread(events_topic),
    )  # fmt: skip
    store = TableJobStore(poll_jobs, n)

    async def publish(batch: Sequence[ev.JobEvent]) -> None:
        await store.writes.settle(batch[0].target)  # the state recording earlier changes is durable first
        sent = [await events_topic.send(key=e.incident_subject.encode(), value=ev.encode(e)) for e in batch]
        await asyncio.gather(*sent)  # broker acks before poll state moves on

    async def probe() -> bool:
        return await reachable(conn)

    outbox = Outbox(publish, bound=config.broker.outage_buffer, probe=probe)
    comps.metrics.outage_buffer.set_function(lambda: outbox.size)
    targets = {t.id: t for t in config.targets()}
    poll = PollStage(
        targets=targets, comps=comps, store=store, outbox=outbox, partitions=n, owned=ownership.partitions,
        intervals=Intervals(fast=config.seconds(config.poll.fast), idle=config.seconds(config.poll.idle)),
        retention=config.seconds(config.poll.retention),
    )  # fmt: skip
    ownership.on_revoke.append(poll.drain)

    incidents = IncidentStage(
        comps=comps, table=incidents_table, notifications_topic=notifications_topic, silences_topic=silences_topic,
        partitions=n, owned=owned(alerts_topic), **reread(alerts_topic),
    )  # fmt: skip

    if not channels:  # Slack, signed webhooks, threaded mail (tokens and secrets from the environment)
        channel_set = ChannelSet.build(config.notify, config.slack)
        channels = channel_set.channels
        app.watcher_channel_set = channel_set  # type: ignore[attr-defined]
    notify = NotifyStage(
        comps=comps, channels=Channels(comps.notifier, channels), delivered=delivered, refs=refs,
        dlq_topic=dlq_topic, budget=config.notify.retry, owned=owned(notifications_topic),
        grace=config.seconds(config.app.shutdown_grace), **reread(notifications_topic),
    )  # fmt: skip

    async def publish_status(key: str, record: ev.AnyRecord) -> None:
        await status_topic.send(key=key.encode(), value=ev.encode(record))

    board = StatusBoard(publish_status)
    poll.outcomes.append(board.observe)

    async def publish_action(action: ev.Action) -> None:  # a click, a CLI or UI action: durable before "ok"
        await (await actions_topic.send(key=action.incident.encode(), value=ev.encode(action)))

    socket, endpoint = build_interactions(config.notify, config.slack, publish_action)
    app.watcher_interactions = endpoint  # type: ignore[attr-defined]  # mounted on the web server (runner)
    app.watcher_publish_action = publish_action  # type: ignore[attr-defined]

    def install_rules(ruleset: Any, file_silences: list[Any]) -> None:
        comps.replace_ruleset(ruleset)
        silences.from_files = list(file_silences)
        incidents.rules_changed()

    async def publish_alert(alert: ev.Alert) -> None:
        await alerts_topic.send(key=(alert.incident or alert.key).encode(), value=ev.encode(alert))

    app.watcher_components = comps  # type: ignore[attr-defined]
    app.watcher_targets = targets  # type: ignore[attr-defined]
    app.watcher_poll, app.watcher_incidents, app.watcher_notify = poll, incidents, notify  # type: ignore[attr-defined]
    app.watcher_outbox = outbox  # type: ignore[attr-defined]
    app.watcher_episodes = TableEpisodes(blind_episodes, n)  # type: ignore[attr-defined]
    app.watcher_publish_alert = publish_alert  # type: ignore[attr-defined]

    # -- agents, tasks and timers: which stage each calls ----------------------------------------
    @app.task
    async def poll_targets() -> None:
        await poll.run()

    @app.agent(poll_requests)
    async def poll_request(stream: Any) -> None:
        async for value in stream:
            try:
                poll.request(request_decoder.decode(value))
            except (msgspec.DecodeError, msgspec.ValidationError) as e:
                log.warning("ignored a malformed poll request: %s", e)

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
            request = PollRequest(target_id=tid, track=(req.job_id,), force=True)
            await poll_requests.send(key=tid.encode(), value=_req_enc.encode(request), partition=partition_for(tid, n))

    @app.timer(1.0)
    async def flush_outbox() -> None:  # changes held while the broker was away go out in order
        await outbox.flush()

    @app.timer(60.0)
    async def forget_old_state() -> None:
        poll.evict()
        incidents.evict()

    @app.task
    async def follow_silences() -> None:
        await silence_feed.follow(silences, conn, silence_feed.topic_name(config))

    @app.task
    async def follow_inhibitions() -> None:
        await silence_feed.follow(inhibitions, conn, inhibition_feed.topic_name(config))

    @app.timer(2.0)  # every worker watches the rule files it was started with
    async def reload_rules() -> None:
        result = reloader.check()
        if result is None:
            return
        comps.metrics.rule_reloads.labels("applied" if result else "refused").inc()
        comps.metrics.rules_loaded.set(len(comps.ruleset()))
        if result is False and config.health.notify_rule_errors and reloader.last_error:
            # Every worker sees the same change and sends the same key: one incident.
            await publish_alert(refused_alert(reloader.last_error, datetime.now(UTC), config.health.tags))

    @app.agent(events_topic)
    async def evaluate_events(stream: Any) -> None:
        await silences.ready.wait()  # no alert before every silence and inhibition is known
        await inhibitions.ready.wait()
        # In batches: Faust acks a batch's records once the loop asks for the next batch, so each
        # is handled before its offset can be committed (at-least-once), one commit per batch.
        async for batch in stream.take_events(BATCH, within=WITHIN):
            for event in batch:
                evaluate.net.saw(event.message.partition, event.message.offset)
                record = decode_or_warn(event.value, "event")
                if isinstance(record, ev.JobEvent):
                    await evaluate.on_event(record, event.message.partition)
            await evaluate.durable()  # the timers these events started, on the broker before the batch is acked

    @app.agent(grouping_topic)
    async def group(stream: Any) -> None:
        async for event in stream.events():
            alert = decode_or_warn(event.value, "grouped alert")
            if isinstance(alert, ev.Alert):
                await evaluate.on_grouped(alert, event.message.partition)

    async def count(stream: Any, handle: Any, what: str) -> None:
        async for event in stream.events():
            try:
                await handle(event.value, event.message.partition)
            except (msgspec.DecodeError, msgspec.ValidationError) as e:
                log.warning("ignored a malformed %s: %s", what, e)

    @app.agent(bursts_topic)
    async def count_bursts(stream: Any) -> None:
        await count(stream, evaluate.on_burst_hit, "burst hit")

    @app.agent(shares_topic)
    async def count_shares(stream: Any) -> None:
        await count(stream, evaluate.on_share_hit, "share hit")

    @app.timer(0.5)  # every worker: each fires the due timers and groups of its own partitions
    async def stage_timers() -> None:
        await evaluate.tick()

    alerts_name = alerts_topic.get_topic_name()
    incident_inputs = app.topic(alerts_name, actions_topic.get_topic_name(), **raw)

    @app.agent(incident_inputs)
    async def keep_incidents(stream: Any) -> None:
        async for batch in stream.take_events(BATCH, within=WITHIN):
            await incidents.on_batch((e.message.topic == alerts_name, e.message.partition, e.message.offset,
                                      decode_or_warn(e.value, "alert or action")) for e in batch)  # fmt: skip

    @app.timer(0.1)
    async def settle_and_escalate() -> None:  # pages of incidents that gathered their jobs; escalations
        await incidents.tick()

    @app.agent(notifications_topic)
    async def deliver(stream: Any) -> None:
        async for batch in stream.take_events(BATCH, within=WITHIN):
            records = []
            for e in batch:
                record = decode_or_warn(e.value, "notification")
                if isinstance(record, ev.Notification):
                    records.append((e.message.partition, e.message.offset, record))
            await notify.on_batch(records)

    @app.timer(RECONCILE_EVERY)
    async def reconcile() -> None:  # the re-read nets: records left without an effect by a crash
        await evaluate.reconcile()
        await incidents.reconcile()
        await notify.reconcile()

    @app.timer(10.0)
    async def publish_statuses() -> None:
        if ownership.partitions() is None:
            return
        board.own(poll.generation)
        for tid in sorted(poll.mine):
            memo = poll.memos.get(tid)
            if memo is not None:
                health = comps.blind.targets.get(tid)
                await board.offer(tid, board.target_status(targets[tid], memo, health.blind_since if health else None))
        reloads = reloader.last_error
        worker = ev.WorkerStatus(
            worker=WORKER, started_at=board.started, broker=outbox.state, outage_buffer=outbox.size,  # type: ignore[arg-type]
            targets=len(poll.mine), rules_loaded=len(comps.ruleset()),
            last_reload=f"refused: {reloads}" if reloads else "", eval_errors=dict(comps.ruleset().eval_errors),
            updated_at=datetime.now(UTC),
        )  # fmt: skip
        await board.offer(f"worker:{WORKER}", worker)

    if socket is not None:

        @app.task
        async def slack_socket_mode() -> None:  # clicks on the cards, without a public URL
            await socket.start()

    @app.on_before_shutdown.connect
    async def finish_deliveries(_: Any, **__: Any) -> None:
        await notify.stop()
        if socket is not None:
            await socket.close()
        channel_set = getattr(app, "watcher_channel_set", None)
        if channel_set is not None:
            await channel_set.close()

    app.watcher_started = time.time()  # type: ignore[attr-defined]
    return app
