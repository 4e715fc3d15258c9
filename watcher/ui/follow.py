"""Keep a :class:`~watcher.ui.view.TopicView` current: read its topics from the start, then follow them.

One aiokafka consumer without a group (every worker's page reads every partition, as the
silence feed does: :func:`watcher.app.silences.follow`), assigned every partition of every
topic the view wants that exists. Topics that do not exist yet (a pipeline stage that has
not started, a table nobody wrote) are looked for again every ``rescan`` seconds and joined
from their beginning when they appear; partitions already followed keep their position.
Records older than the view keeps are dropped once a minute (:meth:`TopicView.trim`).

Every client is made by the worker's :class:`~watcher.app.kafka.KafkaConnection` (TLS and SASL
included), as every other Kafka client of watcher is.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time

from watcher.app.kafka import KafkaConnection
from watcher.ui.view import TopicView, now_utc

log = logging.getLogger("watcher.ui")


def settle_heap() -> None:
    """After the view's catch-up (a large load of records that live for hours): one full
    collection, then every object alive is moved out of the cyclic collector's scans
    (``gc.freeze``). Without it each full collection walks the whole view (and the worker) and
    stalls the event loop: the Incidents page's p95 was 100–250 ms over 2,000 incidents where its
    p50 is 13 ms, and 12 ms with the collector off (``python -m bench --only ui``). Reference
    counting still frees what the view drops later; only cyclic garbage among objects alive
    now would stay, and the view's records form no cycles."""
    gc.collect()
    gc.freeze()


class Follower:
    """Feeds ``view`` from the topics ``kinds`` maps to (kind -> topic name) on the cluster ``conn`` reaches."""

    def __init__(self, view: TopicView, conn: KafkaConnection, kinds: dict[str, str], rescan: float = 5.0) -> None:
        self.view, self.conn, self.rescan = view, conn, rescan
        self.kind_of = {topic: kind for kind, topic in kinds.items()}
        self.caught_up = asyncio.Event()  # every partition found at the start was read to its end once
        self.error: str | None = None  # the last broker error, shown on the overview

    async def run(self) -> None:
        from aiokafka import TopicPartition
        from aiokafka.errors import KafkaError

        consumer = self.conn.consumer(enable_auto_commit=False, group_id=None, auto_offset_reset="earliest",
                                      metadata_max_age_ms=5000)  # fmt: skip
        await consumer.start()
        assigned: set[TopicPartition] = set()
        ends: dict[TopicPartition, int] = {}
        scanned = trimmed = 0.0
        try:
            while True:
                now = time.monotonic()
                if now - scanned >= self.rescan and len({tp.topic for tp in assigned}) < len(self.kind_of):
                    scanned = now
                    try:
                        found = await self._partitions()
                    except (KafkaError, OSError) as e:
                        self.error = f"cannot list topics on {self.conn.bootstrap}: {e}"
                        found = set()
                    new = {TopicPartition(t, p) for t, p in found} - assigned
                    if new:
                        # assign() replaces the assignment: remember where the old partitions stand.
                        positions = {tp: await consumer.position(tp) for tp in assigned}
                        assigned |= new
                        consumer.assign(sorted(assigned))
                        for tp, pos in positions.items():
                            consumer.seek(tp, pos)
                        await consumer.seek_to_beginning(*new)
                        if not self.caught_up.is_set():
                            ends.update(await consumer.end_offsets(list(new)))
                if not assigned:
                    self.caught_up.set()
                    await asyncio.sleep(0.5)
                    continue
                try:
                    batch = await consumer.getmany(timeout_ms=500, max_records=5000)
                    self.error = None
                except KafkaError as e:
                    self.error = f"cannot read from {self.conn.bootstrap}: {e}"
                    await asyncio.sleep(1.0)
                    continue
                for tp, msgs in batch.items():
                    kind = self.kind_of[tp.topic]
                    for m in msgs:
                        self.view.apply(kind, m.key, m.value)
                if not self.caught_up.is_set() and all([await consumer.position(tp) >= end
                                                        for tp, end in ends.items()]):  # fmt: skip
                    self.caught_up.set()
                    settle_heap()
                    log.info("status page: read %d topic partitions to their ends", len(assigned))
                if now - trimmed >= 60.0:
                    trimmed = now
                    self.view.trim(now_utc())
        finally:
            self.caught_up.set()
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def _partitions(self) -> set[tuple[str, int]]:
        """(topic, partition) of the view's topics that exist now: one admin client per scan."""
        admin = self.conn.admin()
        try:
            await admin.start()
            present = [t for t in self.kind_of if t in set(await admin.list_topics())]
            described = await admin.describe_topics(present) if present else []
            return {(d["topic"], p["partition"]) for d in described for p in d.get("partitions", [])}
        finally:
            await admin.close()
