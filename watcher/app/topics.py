"""Every topic the deployment needs, in one list; creating or checking them; reading one whole.

:func:`topic_specs` is the single source of truth for the topics and changelogs a deployment
uses (names, partitions, ``cleanup.policy``, retention): ``watcher run`` creates them from it
(``[broker] create_topics = true``) or checks them against it (``false``: the cluster admin
created them from ``watcher topics plan``, which prints it). When the pipeline gains or drops a
topic or table, change :data:`TOPICS` / :data:`TABLES` here; a unit test fails while the Faust
app declares a topic this list does not name.

Why create them up front at all: Faust declares its topics itself, but a broker that
auto-creates topics on a metadata request (Tansu does, with 4 partitions) can win the race and
leave co-partitioned topics and tables with different counts.

Topic configs: ``cleanup.policy`` and ``retention.ms`` go in the CreateTopics request. Tansu
(the embedded broker) accepts and reports them, though it compacts nothing; a broker that
refuses a config (INVALID_CONFIG, POLICY_VIOLATION) gets the topic without configs and a
WARNING naming what it should have had.

May import: :mod:`watcher.app.kafka`, :mod:`watcher.config`, :mod:`watcher.errors`; aiokafka lazily.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar

import msgspec

from watcher.app.kafka import KafkaConnection
from watcher.config import Config
from watcher.errors import BrokerError

T = TypeVar("T")

log = logging.getLogger("watcher.app")

CleanupPolicy = Literal["compact", "delete"]


class TopicSpec(msgspec.Struct, frozen=True):
    """One topic as the cluster must hold it."""

    name: str
    partitions: int
    cleanup_policy: CleanupPolicy = "delete"
    retention_ms: int | None = None  # delete-policy topics: [broker] retention; None: the broker's default
    purpose: str = ""

    def configs(self) -> dict[str, str]:
        out = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None and self.cleanup_policy == "delete":
            out["retention.ms"] = str(self.retention_ms)
        return out


#: ``<topic_prefix>.<name>``: (name, cleanup.policy, purpose). Compacted: latest state per key.
TOPICS: tuple[tuple[str, CleanupPolicy, str], ...] = (
    ("events", "delete", "job status changes (key: the job's incident subject)"),
    ("alerts", "delete", "alerts the rules fired (key: incident id)"),
    ("notifications", "delete", "what to send about each incident (key: incident id)"),
    ("actions", "delete", "ack / unack / snooze / silence from Slack, HTTP, CLI, UI (key: incident id)"),
    ("status", "compact", "latest TargetStatus / WorkerStatus (key: target id or worker:<host:pid>)"),
    ("decisions", "delete", "what was silenced or inhibited, and why"),
    ("dlq", "delete", "dead letters: notifications a target never accepted"),
    ("silences", "compact", "run-time silences, latest record per id; every worker reads it whole"),
    ("inhibitions", "compact", "inhibitions, latest record per id; every worker reads it whole"),
    ("track", "delete", "by-id jobs to follow (watcher track)"),
    ("poll-requests", "delete", "requests to poll a target now"),
    ("grouping", "delete", "alerts held for a group (key: group key)"),
    ("bursts", "delete", "burst hits (key: rule + burst group)"),
    ("shares", "delete", "share hits (key: rule + parent job)"),
)
#: Faust tables ``<topic_prefix>-<name>``; each has the compacted changelog ``<app id>-<table>-changelog``.
TABLES: tuple[tuple[str, str], ...] = (
    ("poll-jobs", "each job's last seen state, per target"),
    ("delivered", "delivered marks: <notification key>|<target id> and <notification key>|*"),
    ("blind-episodes", "open watcher-blind episodes (key: target id)"),
    ("stuck-timers", "stuck timers (key: job key)"),
    ("groups", "open alert groups (key: group key)"),
    ("burst-windows", "burst windows (key: rule + burst group)"),
    ("shares", "share counts (key: rule + parent job)"),
    ("incidents", "incidents (key: incident id)"),
    ("message-refs", "sent messages that can be edited later (key: incident id + target)"),
)


def leader_topic(config: Config) -> str:
    """Faust's leader election topic (``faust.assignor.leader_assignor``): one partition."""
    return f"{config.app.id}-__assignor-__leader"


def changelog_topic(config: Config, table: str) -> str:
    """The changelog Faust keeps for table ``<prefix>-<table>``: ``<app id>-<prefix>-<table>-changelog``."""
    return f"{config.app.id}-{config.broker.topic_prefix}-{table}-changelog"


def topic_specs(config: Config) -> list[TopicSpec]:
    """Every topic and changelog a deployment of ``config`` uses, with the shape it must have."""
    prefix, n = config.broker.topic_prefix, config.broker.partitions
    retention = int(config.seconds(config.broker.retention) * 1000)

    def spec(name: str, partitions: int, policy: CleanupPolicy, purpose: str) -> TopicSpec:
        return TopicSpec(name, partitions, policy, retention if policy == "delete" else None, purpose)

    out = [spec(f"{prefix}.{name}", n, policy, purpose) for name, policy, purpose in TOPICS]
    out += [spec(changelog_topic(config, t), n, "compact", f"changelog of table {prefix}-{t}: {purpose}")
            for t, purpose in TABLES]  # fmt: skip
    out.append(spec(leader_topic(config), 1, "delete", "Faust's leader election (no records)"))
    return out


def _specs(topics: Iterable[TopicSpec] | Mapping[str, int]) -> list[TopicSpec]:
    if isinstance(topics, Mapping):
        return [TopicSpec(name, n) for name, n in topics.items()]
    return list(topics)


async def ensure_topics(
    conn: KafkaConnection, topics: Iterable[TopicSpec] | Mapping[str, int], *, create: bool = True,
    replication: int = 1, timeout: float = 30.0, plan: str = "watcher topics plan --config FILE",
) -> None:  # fmt: skip
    """Create the missing ``topics`` (``create``), then check every one has its partition count
    (and warn where the broker shows the wrong cleanup.policy). BrokerError lists every missing
    or wrong topic in one line.

    ``topics``: specs, or ``{name: partitions}`` (delete policy, the broker's default retention).
    ``plan``: the command that prints them, for the message.
    """
    from aiokafka.admin import NewTopic
    from aiokafka.errors import KafkaError

    specs = {s.name: s for s in _specs(topics)}
    admin = conn.admin(request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
        existing = set(await admin.list_topics())
        missing = [s for s in specs.values() if s.name not in existing]
        if create and missing:
            refused = await _create(admin, [NewTopic(s.name, s.partitions, replication, topic_configs=s.configs())
                                            for s in missing])  # fmt: skip
            if refused:  # a broker that takes no topic configs: the topics without them, said out loud
                log.warning("the broker refused the topic configs of %s (%s): created them without; set "
                            "cleanup.policy and retention.ms as `watcher topics plan` prints",
                            ", ".join(refused), "; ".join(sorted(set(refused.values()))))  # fmt: skip
                still = await _create(admin, [NewTopic(name, specs[name].partitions, replication) for name in refused])
                if still:
                    raise BrokerError(f"cannot create topics on {conn.bootstrap}: {'; '.join(still.values())}")
            log.info("created topics: %s", ", ".join(s.name for s in missing))
            existing |= {s.name for s in missing}
        problems = [f"missing {name}" for name in specs if name not in existing]
        problems += await _shape_problems(admin, [specs[name] for name in specs if name in existing])
    except (TimeoutError, KafkaError, OSError) as e:
        raise BrokerError(f"cannot prepare topics on {conn.bootstrap}: {e!r}") from e
    finally:
        await admin.close()
    if problems:
        how = (f"create them as `{plan}` prints" if not create else
               "use the count the topics were created with, or a new topic_prefix")
        raise BrokerError(f"{len(problems)} topic(s) missing or wrong on {conn.bootstrap}: {'; '.join(problems)} "
                          f"({how})")  # fmt: skip


async def ensure_planned(conn: KafkaConnection, config: Config, *names: str) -> None:
    """Before a tool produces to ``names``: create them as planned (``create_topics``) or check
    they exist. Producing to a missing topic would let a broker that auto-creates topics make it
    with its default partition count, and ``watcher run`` would then refuse the mismatch."""
    specs = [s for s in topic_specs(config) if s.name in names]
    await ensure_topics(conn, specs, create=config.broker.create_topics, replication=config.broker.replication_factor,
                        plan=f"watcher topics plan --config {config.path or 'FILE'}")  # fmt: skip


_ALREADY_EXISTS, _TOPIC_AUTHORIZATION_FAILED, _INVALID_CONFIG, _POLICY_VIOLATION = 36, 29, 40, 44


async def _create(admin: Any, topics: list[Any]) -> dict[str, str]:
    """Create ``topics``; {name: reason} of those the broker refused for their configs.
    BrokerError for any other refusal (authorization, invalid partitions...)."""
    from aiokafka.errors import for_code

    if not topics:
        return {}
    response = await admin.create_topics(topics)
    refused, failed = {}, []
    for topic, code, message, *_ in response.topic_errors:
        if code in (0, _ALREADY_EXISTS):
            continue
        reason = message or for_code(code).__name__
        if code in (_INVALID_CONFIG, _POLICY_VIOLATION):
            refused[topic] = reason
        elif code == _TOPIC_AUTHORIZATION_FAILED:
            failed.append(f"{topic}: not allowed to create it (topic authorization failed)")
        else:
            failed.append(f"{topic}: {reason}")
    if failed:
        hint = (" — grant Create, or have the topics created from `watcher topics plan` and set "
                "[broker] create_topics = false") if any("authorization" in f for f in failed) else ""
        raise BrokerError(f"cannot create topics: {'; '.join(failed)}{hint}")
    return refused


async def _shape_problems(admin: Any, specs: list[TopicSpec]) -> list[str]:
    """What differs from ``specs`` among existing topics: partition counts. Compaction, where the
    broker answers DescribeConfigs, only gets a WARNING: a changelog that deletes records loses
    table state, but topics made before the plan compacted them still work."""
    if not specs:
        return []
    want = {s.name: s for s in specs}
    problems = []
    for d in await admin.describe_topics(list(want)):
        have = len(d.get("partitions", []))
        if have and have != want[d["topic"]].partitions:
            problems.append(f"{d['topic']} has {have} partitions, want {want[d['topic']].partitions}")
    compacted = [s.name for s in specs if s.cleanup_policy == "compact"]
    for name, policy in (await _cleanup_policies(admin, compacted)).items():
        if "compact" not in policy.split(","):  # not fatal: topics made before the plan said so
            log.warning("topic %s has cleanup.policy=%s but holds latest-state records: its old records go after "
                        "retention. Fix: kafka-configs.sh --alter --entity-type topics --entity-name %s "
                        "--add-config cleanup.policy=compact", name, policy, name)  # fmt: skip
    return problems


async def _cleanup_policies(admin: Any, names: list[str]) -> dict[str, str]:
    """cleanup.policy of each topic the broker describes (none, if it may not or cannot)."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
    from aiokafka.errors import KafkaError

    if not names:
        return {}
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    except (KafkaError, TimeoutError) as e:  # DescribeConfigs not granted, or not supported: partitions only
        log.debug("cannot describe topic configs: %s", e)
        return {}
    out = {}
    for response in responses:
        for error_code, _msg, _type, name, entries, *_ in response.resources:
            if error_code:
                continue
            for entry in entries:
                if entry[0] == "cleanup.policy" and entry[1]:
                    out[name] = entry[1]
    return out


async def read_topic(
    conn: KafkaConnection, topic: str, decode: Callable[[bytes | None, bytes | None], T | None], idle: float = 1.5,
    deadline: float = 30.0,
) -> list[T]:
    """``decode(key, value)`` of every record on ``topic`` (None: skipped), partition by partition
    in offset order; reads to the end offsets it found at the start, then stops."""
    parts = await partitions_of(conn, topic)
    records = await _read(conn, topic, dict.fromkeys(parts, 0), idle, deadline)
    return [item for m in records if (item := decode(m.key, m.value)) is not None]


async def read_from(
    conn: KafkaConnection, topic: str, starts: dict[int, int], idle: float = 0.5, deadline: float = 30.0
) -> list[tuple[int, int, bytes | None]]:
    """(partition, offset, value) of every record of ``topic``'s partitions in ``starts``, from
    each start offset to the end offset found at the start, in offset order per partition."""
    return [(m.partition, m.offset, m.value) for m in await _read(conn, topic, starts, idle, deadline)]


async def _read(conn: KafkaConnection, topic: str, starts: dict[int, int], idle: float, deadline: float) -> list[Any]:
    """The records of the partitions in ``starts``, each from its start offset (or the first one
    the broker still keeps, when retention removed older ones) to the end offset found at the start."""
    from aiokafka import TopicPartition
    from aiokafka.errors import KafkaError

    # "earliest": an offset no longer on the broker resets to the first kept one, not to the end.
    consumer = conn.consumer(enable_auto_commit=False, group_id=None, auto_offset_reset="earliest")
    out: list[Any] = []
    try:
        await consumer.start()
        tps = [TopicPartition(topic, p) for p in sorted(starts)]
        if not tps:
            return out
        consumer.assign(tps)
        firsts, ends = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(starts[tp.partition], firsts[tp]))
        stop_at = time.monotonic() + deadline
        while time.monotonic() < stop_at:
            positions = [await consumer.position(tp) for tp in tps]
            if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                break
            for tp, msgs in (await consumer.getmany(timeout_ms=int(idle * 1000))).items():
                out += [m for m in msgs if m.offset < ends[tp]]
    except KafkaError as e:
        raise BrokerError(f"cannot read {topic} from {conn.bootstrap}: {e}") from e
    finally:
        await _stop(consumer)
    return out


async def committed_offsets(conn: KafkaConnection, group: str, topic: str, partitions: set[int]) -> dict[int, int]:
    """The offsets consumer group ``group`` committed on ``topic``'s ``partitions`` (absent: none yet)."""
    from aiokafka import TopicPartition
    from aiokafka.errors import KafkaError

    admin = conn.admin(request_timeout_ms=10000)
    try:
        await admin.start()
        offsets = await admin.list_consumer_group_offsets(group, partitions=[TopicPartition(topic, p) for p in partitions])
    except KafkaError as e:
        raise BrokerError(f"cannot read the committed offsets of {group} on {topic}: {e}") from e
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if meta is not None and meta.offset >= 0}


async def partitions_of(conn: KafkaConnection, topic: str) -> set[int]:
    """The partitions of ``topic`` (none if it does not exist), asked of the admin API: a fresh
    consumer knows no topic's partitions on Apache Kafka."""
    from aiokafka.errors import KafkaError

    admin = conn.admin()
    try:
        await admin.start()
        if topic not in await admin.list_topics():
            return set()
        described = await admin.describe_topics([topic])
        return {p["partition"] for d in described for p in d.get("partitions", [])}
    except KafkaError as e:
        raise BrokerError(f"cannot look up {topic} on {conn.bootstrap}: {e}") from e
    finally:
        await admin.close()


async def _stop(consumer: object) -> None:
    # aiokafka cancels its own committed-offsets task when a consumer that never had an
    # assignment stops, and that CancelledError escapes stop(); only ours may propagate.
    try:
        await consumer.stop()  # type: ignore[attr-defined]
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
