"""StateWrites: a target's next publish waits until the poll state of its last one is durable."""

from __future__ import annotations

import asyncio

from watcher.app.factory import StateWrites, TableStore
from watcher.poller.schedule import TargetState


class Table:
    """A table double: what send_changelog was asked, and a future per send that the test settles."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.sent: list[asyncio.Future[None]] = []

    def send_changelog(self, partition: int, key: str, value: str) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent.append(fut)
        return fut


async def test_settle_waits_for_the_targets_state_writes_and_only_its_own() -> None:
    targets, jobs = Table(), Table()
    writes = StateWrites()
    store = TableStore(targets, jobs, 0, writes)
    store.put_target_state("t1", TargetState(polls=1))
    store.put_target_state("t2", TargetState(polls=1))
    settle = asyncio.ensure_future(writes.settle("t1"))
    await asyncio.sleep(0)
    assert not settle.done()  # t1's state is not durable yet: its next changes must wait
    await asyncio.wait_for(writes.settle("t3"), 1)  # nothing pending for another target
    targets.sent[1].set_result(None)  # t2's write: not what t1 waits for
    await asyncio.sleep(0)
    assert not settle.done()
    targets.sent[0].set_result(None)
    await asyncio.wait_for(settle, 1)
    await asyncio.wait_for(writes.settle("t1"), 1)  # settled writes are not awaited again


async def test_a_quiet_targets_settled_writes_are_dropped_as_new_ones_come() -> None:
    targets = Table()
    writes = StateWrites()
    store = TableStore(targets, Table(), 0, writes)
    for i in range(100):  # an idle target: a state write every poll, no publish in between
        store.put_target_state("t1", TargetState(polls=i))
        targets.sent[-1].set_result(None)
    assert len(writes._pending["t1"]) == 1
