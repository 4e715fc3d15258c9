"""The dead-letter topic: list what could not be delivered, and replay it exactly once.

Replaying re-publishes each dead notification to the notifications topic marked ``replay``;
the notify stage delivers it only to targets that have not accepted it yet and then marks it
delivered, so replaying twice (or two people replaying at once) still sends it once per target.
A key with no dead letter is an error (exit 2); a ``no_route`` letter that the config still
routes nowhere is refused with the reason (exit 1), since a replay would only dead-letter it again.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from watcher import events as ev
from watcher.app.kafka import KafkaConnection
from watcher.app.preflight import tool_connection
from watcher.app.topics import ensure_planned, read_topic
from watcher.config import Config
from watcher.errors import BrokerError, WatcherError

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


def still_unrouted(config: Config, dead: Sequence[ev.DeadLetter]) -> dict[str, str]:
    """The ``no_route`` letters that the config still routes nowhere, each with why: replaying
    one would only dead-letter it again. Those a target now reaches may be replayed."""
    from watcher.notify.channels import ChannelSet
    from watcher.notify.deliver import Notifier
    from watcher.notify.dispatch import Channels

    unrouted = [d for d in dead if d.reason == "no_route"]
    if not unrouted:
        return {}
    channels = Channels(Notifier(config.notify), ChannelSet.build(config.notify, config.slack, {}, mail=False).channels
                        if not _needs_secrets(config) else ())  # fmt: skip
    out: dict[str, str] = {}
    for d in unrouted:
        if not channels.route(d.notification):
            tags = channels.wanted(d.notification)
            what = f"tags {', '.join(tags)}" if tags else "no tags (the default route)"
            out[d.key] = (
                f"not replayed: notification {d.key} was dead-lettered no_route, and its {what} still reach "
                f"no notification target in {config.path or 'the config'}, so a replay would dead-letter it "
                "again; add a target with one of those tags (or fix the rule's notify), then replay"
            )
    return out


def _needs_secrets(config: Config) -> bool:
    return any(t.kind != "apprise" for t in config.notify.targets)


async def replay(config: Config, keys: Sequence[str] = (),
                 conn: KafkaConnection | None = None) -> tuple[int, list[str]]:  # fmt: skip
    """Re-publish dead notifications (all, or those whose key is in ``keys``): how many, and a line
    for each one refused (see :func:`still_unrouted`). A key with no dead letter is a WatcherError.
    ``conn``: a connection already made (the status page's); else the CLI's, checked first."""
    from aiokafka.errors import KafkaError

    conn = conn or await tool_connection(config, NEEDS)
    topic = f"{config.broker.topic_prefix}.dlq"
    dead = await read_dead(conn, topic)
    known = {d.key for d in dead}
    if missing := [k for k in keys if k not in known]:
        raise WatcherError(f"no dead letter with key {missing[0]!r} on {topic} (see `watcher dlq list`)")
    picked = [d for d in dead if not keys or d.key in keys]
    refused = still_unrouted(config, picked)
    chosen = {d.key: d.notification for d in picked if d.key not in refused}
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
    return len(chosen), list(dict.fromkeys(refused.values()))

