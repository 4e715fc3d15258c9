"""The dead-letter topic: list what could not be delivered, and replay it exactly once.

Replaying re-publishes each dead alert to the alerts topic marked ``replay``; the notifier
delivers it only to targets that have not accepted it yet and then marks it delivered, so
replaying twice (or two people replaying at once) still sends each alert once. A key with no
dead letter is an error (exit 2); a ``no_route`` letter that the config still routes nowhere
is refused with the reason (exit 1), since a replay would only dead-letter it again.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from watcher import events as ev
from watcher.app.topics import read_topic
from watcher.config import Config
from watcher.errors import BrokerError, WatcherError


def _bootstrap(config: Config) -> str:
    if not config.broker.url:
        raise BrokerError("the dead-letter tools need a [broker] url: the embedded broker lives inside `watcher run`")
    return config.broker.url.split("://", 1)[-1]


async def read_dead(bootstrap: str, topic: str, idle: float = 1.5) -> list[ev.DeadLetter]:
    """Every dead letter on ``topic``, oldest first (reads to the end, then stops)."""
    out = await read_topic(bootstrap, topic, lambda _k, v: _dead(v), idle=idle)
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
        lines.append(
            f"- {d.failed_at:%Y-%m-%d %H:%M:%S}Z  {d.alert.key}\n    {d.alert.title}\n"
            f"    reason: {d.reason} after {d.attempts} attempt(s); failed: {', '.join(d.failed_targets) or '-'}"
        )
    return "\n".join(lines)


async def list_dead(config: Config) -> list[ev.DeadLetter]:
    return await read_dead(_bootstrap(config), f"{config.broker.topic_prefix}.dlq")


def still_unrouted(config: Config, dead: Sequence[ev.DeadLetter]) -> dict[str, str]:
    """The ``no_route`` letters that the config still routes nowhere, each with why: replaying
    one would only dead-letter it again. Those a target now reaches may be replayed."""
    from watcher.notify.deliver import Notifier

    unrouted = [d for d in dead if d.reason == "no_route"]
    if not unrouted:
        return {}
    notifier = Notifier(config.notify)
    out: dict[str, str] = {}
    for d in unrouted:
        if not notifier.route(d.alert):
            tags = f"tags {', '.join(d.alert.tags)}" if d.alert.tags else "no tags (the default route)"
            out[d.alert.key] = (
                f"not replayed: alert {d.alert.key} was dead-lettered no_route, and its {tags} still reach "
                f"no notification target in {config.path or 'the config'}, so a replay would dead-letter it "
                "again; add a target with one of those tags (or fix the rule's notify), then replay"
            )
    return out


async def replay(config: Config, keys: Sequence[str] = ()) -> tuple[int, list[str]]:
    """Re-publish dead alerts (all, or those whose key is in ``keys``): how many, and a line for
    each one refused (see :func:`still_unrouted`). A key with no dead letter is a WatcherError."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    bootstrap = _bootstrap(config)
    topic = f"{config.broker.topic_prefix}.dlq"
    dead = await read_dead(bootstrap, topic)
    known = {d.alert.key for d in dead}
    if missing := [k for k in keys if k not in known]:
        raise WatcherError(f"no dead letter with key {missing[0]!r} on {topic} (see `watcher dlq list`)")
    picked = [d for d in dead if not keys or d.alert.key in keys]
    refused = still_unrouted(config, picked)
    chosen = {d.alert.key: d.alert for d in picked if d.alert.key not in refused}
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
    return len(chosen), list(dict.fromkeys(refused.values()))

