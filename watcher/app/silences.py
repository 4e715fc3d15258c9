"""Run-time silences on ``<topic_prefix>.silences``: publish (the CLI), and follow (every worker).

Record format: key = the silence id, value = a :class:`~watcher.rules.silence.Silence` as
JSON. The latest record of an id wins, so expiring a silence is publishing it again with
``ends`` set to now. The topic is small and every worker reads all of it (no consumer
group): each worker honours every silence, whichever partitions it owns. File silences
(``silences:`` in rule files) join them in :class:`SilenceBook`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Protocol

import msgspec

from watcher.app.kafka import KafkaConnection
from watcher.app.topics import partitions_of
from watcher.config import Config
from watcher.errors import BrokerError, WatcherError
from watcher.rules.silence import Silence, expire, new_silence

log = logging.getLogger("watcher.app")

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(Silence)


def topic_name(config: Config) -> str:
    return f"{config.broker.topic_prefix}.silences"


class Feed(Protocol):
    """What :func:`follow` fills: a book of records, latest per id (silences, inhibitions)."""

    what: str
    runtime: dict[str, object]
    ready: asyncio.Event

    def apply(self, raw: bytes | None) -> None: ...


class SilenceBook:
    """The silences one worker honours: the rule files' and the topic's (latest record per id)."""

    what = "silence"

    def __init__(self, from_files: Iterable[Silence] = ()) -> None:
        self.from_files = list(from_files)
        self.runtime: dict[str, Silence] = {}
        self.ready = asyncio.Event()  # set once the topic has been read to its end

    def all(self) -> list[Silence]:
        return [*self.from_files, *self.runtime.values()]

    def apply(self, raw: bytes | None) -> None:
        if not raw:
            return
        try:
            s = _dec.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            log.warning("ignored a malformed silence: %s", e)
            return
        self.runtime[s.id] = s


async def follow(book: Feed, conn: KafkaConnection, topic: str) -> None:
    """Read ``topic`` from the start into ``book`` forever; ``book.ready`` once caught up."""
    from aiokafka import TopicPartition

    consumer = conn.consumer(enable_auto_commit=False, group_id=None, metadata_max_age_ms=5000)
    try:
        await consumer.start()
        parts = await partitions_of(conn, topic)
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if tps:
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            while any([await consumer.position(tp) < ends[tp] for tp in tps]):
                for msgs in (await consumer.getmany(timeout_ms=300)).values():
                    for m in msgs:
                        book.apply(m.value)
        book.ready.set()
        log.info("following %d %s(s) on %s", len(book.runtime), book.what, topic)
        while tps:
            for msgs in (await consumer.getmany(timeout_ms=500)).values():
                for m in msgs:
                    book.apply(m.value)
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
        # Never hold the pipeline hostage to this reader. Set last, with no await after it: a
        # waiter woken by it finds this task already done, with its error if it failed.
        book.ready.set()


# -- the CLI side --------------------------------------------------------------------------


NEEDS = "the silence tools need"


async def publish(config: Config, silence: Silence, conn: KafkaConnection | None = None) -> None:
    from aiokafka.errors import KafkaError

    from watcher.app.preflight import tool_connection
    from watcher.app.topics import ensure_planned

    conn = conn or await tool_connection(config, NEEDS)
    await ensure_planned(conn, config, topic_name(config))
    producer = conn.producer(acks="all")
    try:
        await producer.start()
        await producer.send_and_wait(topic_name(config), _enc.encode(silence), key=silence.id.encode())
    except KafkaError as e:
        raise BrokerError(f"cannot publish the silence to {conn.bootstrap}: {e}") from e
    finally:
        await producer.stop()


async def read_all(config: Config, timeout: float = 30.0, conn: KafkaConnection | None = None) -> list[Silence]:
    """The run-time silences on the topic now (latest record per id)."""
    from watcher.app.preflight import tool_connection

    conn = conn or await tool_connection(config, NEEDS)
    book = SilenceBook()
    task = asyncio.create_task(follow(book, conn, topic_name(config)))
    ready = asyncio.create_task(book.ready.wait())
    try:
        await asyncio.wait({task, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if task.done() and task.exception() is not None:
            e = task.exception()
            raise BrokerError(f"cannot read {topic_name(config)} from {conn.bootstrap}: {e}") from e
        if not book.ready.is_set():
            raise BrokerError(f"cannot read {topic_name(config)} from {conn.bootstrap}: not read to its end "
                              f"within {timeout:g}s")  # fmt: skip
    finally:
        for t in (task, ready):
            t.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    return list(book.runtime.values())


async def add(config: Config, match: str, duration: str | None, comment: str, created_by: str) -> Silence:
    silence = new_silence(match, datetime.now(UTC), duration=duration, comment=comment, created_by=created_by)
    await publish(config, silence)
    return silence


async def expire_id(config: Config, silence_id: str) -> Silence:
    from watcher.app.preflight import tool_connection

    conn = await tool_connection(config, NEEDS)
    current = {s.id: s for s in await read_all(config, conn=conn)}
    if silence_id not in current:
        raise WatcherError(f"no run-time silence {silence_id!r} (see `watcher silence list`)")
    ended = expire(current[silence_id], datetime.now(UTC))
    await publish(config, ended, conn)
    return ended


def format_silences(runtime: Sequence[Silence], from_files: Sequence[Silence], now: datetime) -> str:
    rows = [*((s, "cli") for s in runtime), *((s, s.origin) for s in from_files)]
    if not rows:
        return "no silences"
    lines = []
    for s, origin in sorted(rows, key=lambda r: (r[0].starts or datetime.min.replace(tzinfo=UTC), r[0].id)):
        state = "active" if s.active(now) else ("expired" if s.ends and s.ends <= now else "pending")
        lines.append(f"{s.id}  {state:7}  {origin}\n    {s.describe()}")
    return "\n".join(lines)
