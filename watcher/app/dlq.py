"""The dead-letter topic: list what could not be delivered, and replay it exactly once.

Replaying re-publishes each dead alert to the alerts topic marked ``replay``; the notifier
delivers it only to targets that have not accepted it yet and then marks it delivered, so
replaying twice (or two people replaying at once) still sends each alert once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import msgspec

from watcher import events as ev
from watcher.config import Config
from watcher.errors import BrokerError


def _bootstrap(config: Config) -> str:
    if not config.broker.url:
        raise BrokerError("the dead-letter tools need a [broker] url: the embedded broker lives inside `watcher run`")
    return config.broker.url.split("://", 1)[-1]


async def read_dead(bootstrap: str, topic: str, idle: float = 1.5) -> list[ev.DeadLetter]:
    """Every dead letter on ``topic``, oldest first (reads to the end, then stops)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.errors import KafkaError

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    out: list[ev.DeadLetter] = []
    try:
        parts = await _partitions(bootstrap, topic)
        await consumer.start()
        if not parts:
            return out
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in tps]
            if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                break
            batch = await consumer.getmany(timeout_ms=int(idle * 1000))
            for msgs in batch.values():
                for m in msgs:
                    try:
                        rec = ev.decode(m.value)
                    except (msgspec.DecodeError, msgspec.ValidationError):
                        continue
                    if isinstance(rec, ev.DeadLetter):
                        out.append(rec)
    except KafkaError as e:
        raise BrokerError(f"cannot read {topic} from {bootstrap}: {e}") from e
    finally:
        await _stop(consumer)
    out.sort(key=lambda d: d.failed_at)
    return out


async def _partitions(bootstrap: str, topic: str) -> set[int]:
    # Asked of the admin API: a fresh consumer knows no topic's partitions on Apache Kafka.
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


def format_dead(dead: Sequence[ev.DeadLetter]) -> str:
    if not dead:
        return "the dead-letter topic is empty"
    lines = [f"{len(dead)} dead letter(s):"]
    for d in dead:
        lines.append(
            f"- {d.failed_at:%Y-%m-%d %H:%M:%S}Z  {d.alert.key}\n    {d.alert.title}\n"
            f"    reason: {d.reason} after {d.attempts} attempt(s); failed: {', '.join(d.failed_targets) or '-'}"
        )
    return "\n".join(lines)


async def list_dead(config: Config) -> list[ev.DeadLetter]:
    return await read_dead(_bootstrap(config), f"{config.broker.topic_prefix}.dlq")


async def replay(config: Config, keys: Sequence[str] = ()) -> int:
    """Re-publish dead alerts (all, or those whose key is in ``keys``); returns how many."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    bootstrap = _bootstrap(config)
    dead = await read_dead(bootstrap, f"{config.broker.topic_prefix}.dlq")
    chosen = {d.alert.key: d.alert for d in dead if not keys or d.alert.key in keys}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    try:
        await producer.start()
        for key, alert in chosen.items():
            again = msgspec.structs.replace(alert, replay=True)
            await producer.send_and_wait(f"{config.broker.topic_prefix}.alerts", ev.encode(again), key=key.encode())
    except KafkaError as e:
        raise BrokerError(f"cannot replay to {bootstrap}: {e}") from e
    finally:
        await producer.stop()
    return len(chosen)

