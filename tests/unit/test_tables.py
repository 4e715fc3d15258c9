"""Rows: table writes a stage awaits before its batch is acked (app/tables.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from watcher.app.tables import Rows, write_row


class Table:
    """A Faust table's two parts the rows use; each changelog send is a future the test settles."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.sent: list[tuple[int, str, str | None, asyncio.Future[Any]]] = []
        self.serializers: list[str | None] = []

    def send_changelog(
        self, partition: int, key: str, value: str | None, value_serializer: str | None = None
    ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.sent.append((partition, key, value, future))
        self.serializers.append(value_serializer)
        return future


async def test_durable_returns_only_once_every_row_is_on_the_broker() -> None:
    table, rows = Table(), Rows()
    rows.write(table, "a", "1", 2)
    rows.write(table, "b", None, 3)
    assert table.data == {"a": "1"} and [(p, k, v) for p, k, v, _ in table.sent] == [(2, "a", "1"), (3, "b", None)]
    assert rows.pending == 2
    waiting = asyncio.ensure_future(rows.durable())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    table.sent[0][3].set_result(None)
    await asyncio.sleep(0.01)
    assert not waiting.done()  # one row still on its way
    table.sent[1][3].set_result(None)
    await asyncio.wait_for(waiting, 1)
    await asyncio.wait_for(rows.durable(), 1)  # nothing pending: at once


async def test_a_failed_send_fails_durable_and_write_row_deletes() -> None:
    table, rows = Table(), Rows()
    table.data["x"] = "old"
    assert write_row(table, "x", None, 0) is table.sent[0][3] and "x" not in table.data
    assert table.serializers == ["raw"]  # a tombstone (a null record), not the JSON text "null"
    rows.write(table, "y", "1", 0)
    table.sent[1][3].set_exception(OSError("broker gone"))
    try:
        await rows.durable()
    except OSError as e:
        assert str(e) == "broker gone"
    else:
        raise AssertionError("durable() said ok for a row the broker never took")
