"""The dead-letter topic: list what could not be delivered, and replay it exactly once.

Replaying re-publishes each dead notification to the notifications topic marked ``replay``;
the notify stage delivers it only to targets that have not accepted it yet and then marks it
delivered, so replaying twice (or two people replaying at once) still sends it once per target.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from watcher import events as ev
from watcher.app.kafka import KafkaConnection
from watcher.app.preflight import tool_connection
from watcher.app.topics import ensure_planned, read_topic
from watcher.config import Config
from watcher.errors import BrokerError

NEEDS = "the dead-letter tools need"


async def read_dead(conn: KafkaConnection, topic: str, idle: float = 1.5) -> list[ev.DeadLetter]:
    """Every dead letter on ``topic``, oldest first (reads to the end, then stops)."""
    out = await read_topic(conn, topic, lambda _k, v: _dead(v), idle=idle)
    out.sort(key=lambda d: d.failed_at)
    return out


def _dead(raw: bytes | None) -> ev.DeadLetter | None:
    try:
        rec = ev.decode(raw or b"")
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return rec if isinstance(rec, ev.DeadLetter) else None


def format_dead(dead: Sequence[ev.DeadLetter]) -> str:
    if not dead:
        return "the dead-letter topic is empty"
    lines = [f"{len(dead)} dead letter(s):"]
    for d in dead:
        title = d.alert.title if d.alert is not None else d.notification.incident.title
        lines.append(
            f"- {d.failed_at:%Y-%m-%d %H:%M:%S}Z  {d.key}\n    {title}\n"
            f"    reason: {d.reason} after {d.attempts} attempt(s); failed: {', '.join(d.failed_targets) or '-'}"
        )
    return "\n".join(lines)


async def list_dead(config: Config) -> list[ev.DeadLetter]:
    return await read_dead(await tool_connection(config, NEEDS), f"{config.broker.topic_prefix}.dlq")


async def replay(config: Config, keys: Sequence[str] = (), conn: KafkaConnection | None = None) -> int:
    """Re-publish dead notifications (all, or those whose key is in ``keys``); returns how many.
    ``conn``: a connection already made (the status page's); else the CLI's, checked first."""
    from aiokafka.errors import KafkaError

    conn = conn or await tool_connection(config, NEEDS)
    dead = await read_dead(conn, f"{config.broker.topic_prefix}.dlq")
    chosen = {d.key: d.notification for d in dead if not keys or d.key in keys}
    if chosen:
        await ensure_planned(conn, config, f"{config.broker.topic_prefix}.notifications")
    producer = conn.producer()
    try:
        await producer.start()
        for note in chosen.values():
            again = msgspec.structs.replace(note, replay=True)
            await producer.send_and_wait(f"{config.broker.topic_prefix}.notifications", ev.encode(again),
                                         key=note.incident.id.encode())  # fmt: skip
    except KafkaError as e:
        raise BrokerError(f"cannot replay to {conn.bootstrap}: {e}") from e
    finally:
        await producer.stop()
    return len(chosen)

