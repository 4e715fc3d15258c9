"""The outage buffer: held changes reach the broker in order, once each, and only acked ones move state.

The broker is a stand-in ``send`` that waits while it is "down" (as the Kafka client does), so
these run without one; tests/integration/test_outage.py does the same on real Apache Kafka.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from tests.unit.jobevents import event
from watcher.errors import BrokerError
from watcher.events import JobEvent
from watcher.poller.diff import JobState
from watcher.poller.loop import MemoryStore
from watcher.poller.outbox import Outbox

T = "workspace/cn-north-4/p1"


class Broker:
    """Acks a batch when up; while down, a send waits (the client retrying); ``refuse``: fails it."""

    def __init__(self) -> None:
        self.up = asyncio.Event()
        self.up.set()
        self.refuse = False
        self.sends = 0
        self.acked: list[str] = []

    async def send(self, batch: Sequence[JobEvent]) -> None:
        self.sends += 1
        await self.up.wait()
        if self.refuse:
            raise RuntimeError("refused")
        self.acked += [f"{e.job_id}:{e.status}" for e in batch]


def js(status: str) -> JobState:
    return JobState(status=status, phase="failed" if status == "FAILED" else "running", since=0.0, final=status == "FAILED")


async def poll(outbox: Outbox, durable: MemoryStore, *changes: tuple[str, str]) -> None:
    """What poll_target does: publish a batch, then (only if that returned) write its state."""
    store = outbox.store(T, durable)
    await outbox.publisher(T, durable)([event(j, s) for j, s in changes])
    for j, s in changes:
        store.put_job_state(T, j, js(s))


async def test_broker_up_state_moves_at_once() -> None:
    broker, durable = Broker(), MemoryStore()
    outbox = Outbox(broker.send, bound=10, ack_timeout=0.05)
    await poll(outbox, durable, ("j1", "RUNNING"))
    assert broker.acked == ["j1:RUNNING"] and outbox.size == 0
    assert durable.job_state(T, "j1") == js("RUNNING")


async def test_outage_holds_in_order_and_state_moves_only_after_the_ack(caplog: pytest.LogCaptureFixture) -> None:
    broker, durable = Broker(), MemoryStore()
    outbox = Outbox(broker.send, bound=10, ack_timeout=0.05)
    broker.up.clear()
    with caplog.at_level(logging.WARNING, "watcher.poller"):
        await poll(outbox, durable, ("j1", "RUNNING"), ("j2", "RUNNING"))
        await poll(outbox, durable, ("j1", "FAILED"))
    assert "broker unreachable: holding 2 events for later publish (bound 10)" in caplog.text
    assert outbox.size == 3 and broker.sends == 1  # the second batch waits its turn, unsent
    assert durable.jobs == {}  # nothing durable before the ack
    view = outbox.store(T, durable)
    assert view.job_state(T, "j1") == js("FAILED") and view.open_jobs(T) == ["j2"]
    assert await outbox.flush() == 0 and outbox.size == 3  # still down
    broker.up.set()
    await asyncio.sleep(0)
    assert await outbox.flush() == 3
    assert broker.acked == ["j1:RUNNING", "j2:RUNNING", "j1:FAILED"]  # each once, in order
    assert outbox.size == 0 and not outbox.holds(T)
    assert durable.jobs == {(T, "j1"): js("FAILED"), (T, "j2"): js("RUNNING")}


async def test_past_the_bound_a_change_is_refused_loudly_and_state_stays(caplog: pytest.LogCaptureFixture) -> None:
    broker, durable = Broker(), MemoryStore()
    outbox = Outbox(broker.send, bound=3, ack_timeout=0.05)
    broker.up.clear()
    await poll(outbox, durable, ("j1", "RUNNING"), ("j2", "RUNNING"))
    with caplog.at_level(logging.ERROR, "watcher.poller"), pytest.raises(BrokerError, match="outage buffer full"):
        await poll(outbox, durable, ("j3", "RUNNING"), ("j4", "RUNNING"))
    assert "outage buffer is full (2 of 3 events held): 2 change(s) of" in caplog.text
    assert outbox.size == 2 and broker.sends == 1
    assert outbox.store(T, durable).job_state(T, "j3") is None  # so the next poll sees j3 again
    broker.up.set()
    await asyncio.sleep(0)
    await outbox.flush()
    await poll(outbox, durable, ("j3", "RUNNING"), ("j4", "RUNNING"))  # seen again, taken now
    assert broker.acked == ["j1:RUNNING", "j2:RUNNING", "j3:RUNNING", "j4:RUNNING"]


async def test_a_batch_refused_for_good_leaves_state_where_it_was() -> None:
    broker, durable = Broker(), MemoryStore()
    outbox = Outbox(broker.send, bound=10, ack_timeout=0.05)
    durable.put_job_state(T, "j1", js("RUNNING"))
    broker.up.clear()
    await poll(outbox, durable, ("j1", "FAILED"))
    await poll(outbox, durable, ("j2", "RUNNING"))
    broker.refuse = True
    broker.up.set()
    await asyncio.sleep(0)
    assert await outbox.flush() == 0
    assert outbox.size == 0 and broker.acked == []
    view = outbox.store(T, durable)
    assert view.job_state(T, "j1") == js("RUNNING") and view.job_state(T, "j2") is None  # seen again next poll


async def test_a_slow_broker_that_answers_is_waited_for_and_nothing_is_held(caplog: pytest.LogCaptureFixture) -> None:
    broker, durable = Broker(), MemoryStore()
    probes = []

    async def answering() -> bool:
        probes.append(1)
        return True

    outbox = Outbox(broker.send, bound=1, ack_timeout=0.05, probe=answering)
    broker.up.clear()  # acks late, but the broker answers
    with caplog.at_level(logging.INFO, "watcher.poller"):
        polled = asyncio.ensure_future(poll(outbox, durable, ("j1", "RUNNING"), ("j2", "RUNNING")))
        await asyncio.sleep(0.3)
        assert not polled.done() and outbox.size == 0 and outbox.state == "slow"  # waiting, holding nothing
        broker.up.set()
        await polled
    assert len(probes) >= 2 and broker.acked == ["j1:RUNNING", "j2:RUNNING"] and broker.sends == 1
    assert durable.job_state(T, "j2") == js("RUNNING") and outbox.state == "ok"
    assert "broker slow: acks take over 0s; polls wait for them (nothing is held)" in caplog.text
    assert "unreachable" not in caplog.text
