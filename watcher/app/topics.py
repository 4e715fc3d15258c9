"""Create watcher's topics up front, with the partition count the config asks for; read one whole.

Faust declares its topics itself, but a broker that auto-creates topics on a metadata
request (Tansu does, with 4 partitions) can win the race and leave the ticks topic and its
co-partitioned tables with different counts. Creating them first removes the race.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from watcher.errors import BrokerError

T = TypeVar("T")

log = logging.getLogger("watcher.app")


async def ensure_topics(bootstrap: str, partitions: dict[str, int], timeout: float = 30.0) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
        existing = set(await admin.list_topics())
        missing = [NewTopic(name, n, 1) for name, n in partitions.items() if name not in existing]
        if missing:
            await admin.create_topics(missing)
            log.info("created topics: %s", ", ".join(t.name for t in missing))
        if existing & set(partitions):
            described = await admin.describe_topics([t for t in partitions if t in existing])
            for d in described:
                want, have = partitions[d["topic"]], len(d.get("partitions", []))
                if have and have != want:
                    raise BrokerError(
                        f"topic {d['topic']} has {have} partitions but [broker] partitions = {want}: "
                        "use the count the topics were created with, or a new topic_prefix"
                    )
    except (TimeoutError, KafkaError, OSError) as e:
        raise BrokerError(f"cannot prepare topics on {bootstrap}: {e!r}") from e
    finally:
        await admin.close()


async def read_topic(
    bootstrap: str, topic: str, decode: Callable[[bytes | None, bytes | None], T | None], idle: float = 1.5,
    deadline: float = 30.0,
) -> list[T]:
    """``decode(key, value)`` of every record on ``topic`` (None: skipped), partition by partition
    in offset order; reads to the end offsets it found at the start, then stops."""
    parts = await partitions_of(bootstrap, topic)
    records = await _read(bootstrap, topic, dict.fromkeys(parts, 0), idle, deadline)
    return [item for m in records if (item := decode(m.key, m.value)) is not None]


async def read_from(
    bootstrap: str, topic: str, starts: dict[int, int], idle: float = 0.5, deadline: float = 30.0
) -> list[tuple[int, int, bytes | None]]:
    """(partition, offset, value) of every record of ``topic``'s partitions in ``starts``, from
    each start offset to the end offset found at the start, in offset order per partition."""
    return [(m.partition, m.offset, m.value) for m in await _read(bootstrap, topic, starts, idle, deadline)]


async def _read(bootstrap: str, topic: str, starts: dict[int, int], idle: float, deadline: float) -> list[Any]:
    """The records of the partitions in ``starts``, each from its start offset (or the first one
    the broker still keeps, when retention removed older ones) to the end offset found at the start."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.errors import KafkaError

    # "earliest": an offset no longer on the broker resets to the first kept one, not to the end.
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest")  # fmt: skip
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
        raise BrokerError(f"cannot read {topic} from {bootstrap}: {e}") from e
    finally:
        await _stop(consumer)
    return out


async def committed_offsets(bootstrap: str, group: str, topic: str, partitions: set[int]) -> dict[int, int]:
    """The offsets consumer group ``group`` committed on ``topic``'s ``partitions`` (absent: none yet)."""
    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        await admin.start()
        offsets = await admin.list_consumer_group_offsets(group, partitions=[TopicPartition(topic, p) for p in partitions])
    except KafkaError as e:
        raise BrokerError(f"cannot read the committed offsets of {group} on {topic}: {e}") from e
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if meta is not None and meta.offset >= 0}


async def partitions_of(bootstrap: str, topic: str) -> set[int]:
    """The partitions of ``topic`` (none if it does not exist), asked of the admin API: a fresh
    consumer knows no topic's partitions on Apache Kafka."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        if topic not in await admin.list_topics():
            return set()
        described = await admin.describe_topics([topic])
        return {p["partition"] for d in described for p in d.get("partitions", [])}
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
