"""Rows written to Faust tables by the stages, and the wait until they are durable.

Faust writes a table row to its changelog through the producer's buffer (``send_soon``), and
before it commits offsets it flushes that buffer only while the buffer keeps moving: a buffer
that sends nothing for 0.1 s (a busy worker) is left behind, and the offsets are committed
anyway (``faust.transport.producer.ProducerBuffer.flush_atmost``). A SIGKILL then loses rows
whose records were committed: an incident that was settling, a group's member, a stuck timer.
So each stage writes through :class:`Rows` and awaits :meth:`Rows.durable` before its agent
returns a batch: the records are acked (and committed) only after the rows they made.
"""

from __future__ import annotations

import asyncio
from typing import Any


def write_row(table: Any, key: str, value: str | None, partition: int) -> Any:
    """Write a table outside stream iteration: the store, and the changelog of ``partition``;
    the changelog send (a future that is done once the broker has the row)."""
    if value is None:  # a tombstone (a null record, as Faust's own deletes): compaction drops the key,
        table.data.pop(key, None)  # and recovery deletes it instead of loading a key holding None
        return table.send_changelog(partition, key, None, value_serializer="raw")
    table.data[key] = value
    return table.send_changelog(partition, key, value)


class Rows:
    """One stage's table writes still on their way to the broker."""

    def __init__(self) -> None:
        self._pending: list[Any] = []

    def write(self, table: Any, key: str, value: str | None, partition: int) -> Any:
        sent = write_row(table, key, value, partition)
        self._pending = [f for f in self._pending if not f.done()]  # a long quiet run stays short
        self._pending.append(sent)
        return sent

    async def durable(self) -> None:
        """Return once every row written so far is on the broker."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)

    @property
    def pending(self) -> int:
        return sum(1 for f in self._pending if not f.done())
