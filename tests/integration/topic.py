"""A background consumer that keeps every decoded record of one topic, for assertions."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from watcher import events as ev
from watcher.app.kafka import KafkaConnection


class TopicCollector:
    def __init__(self, conn: KafkaConnection, topic: str, partitions: int = 4, decode: Any = ev.decode) -> None:
        self.conn, self.topic, self.partitions, self.decode = conn, topic, partitions, decode
        self.records: list[Any] = []
        self._task: asyncio.Task[None] | None = None
        self._consumer: Any = None

    async def start(self) -> TopicCollector:
        from watcher.app.topics import ensure_topics

        # Create it with the worker's partition count first: a consumer's metadata request
        # would otherwise let the broker auto-create it with its default count.
        await ensure_topics(self.conn, {self.topic: self.partitions})

        self._consumer = self.conn.consumer(
            self.topic, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None, metadata_max_age_ms=1000,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for msgs in batch.values():
                self.records.extend(self.decode(m.value) for m in msgs if m.value is not None)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer:
            await self._consumer.stop()
