"""Broker outage and graceful shutdown, on real Apache Kafka: nothing lost, nothing doubled.

* the broker (its own JVM, data kept) stops for ``OUTAGE`` seconds while jobs fail: the worker
  keeps polling, says it holds the changes, publishes them when the broker is back, and the
  webhook gets each expected alert exactly once;
* SIGTERM while a slow sink is answering: the delivery completes and is marked before the worker
  exits, so its successor sends nothing more for it.

The expected alerts come from the simulator's plan (see ``test_delivery``), never from the pipeline.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import read_topic, wait_for
from tests.integration.test_delivery import (
    Rig,
    SlowSink,
    assert_exactly,
    at_webhook,
    expected_alerts,
    job_ids_at,
    scenario,
)
from tests.kafka.kafka import KafkaBroker
from tests.kafka.legs import BrokerLeg
from watcher.events import JobEvent

pytestmark = [pytest.mark.timeout(150), pytest.mark.broker]

OUTAGE = 20.0  # seconds the broker is away (the 60 s proves no more than this)
SINK_DELAY = 3.0  # seconds the slow sink takes to answer, so SIGTERM lands mid-delivery


@pytest.fixture
async def rig(own_kafka: BrokerLeg, tmp_path: Path) -> AsyncIterator[Rig]:
    r = Rig(own_kafka, tmp_path)
    yield r
    await r.close()


async def test_broker_outage_holds_changes_and_publishes_each_once(rig: Rig) -> None:
    running = await rig.simulator(scenario(desktops=(6, 4), fail=0.5, volumes=2), at_end=False)
    sim = running.sim
    sink = await rig.webhook()
    cfg = rig.config(running, [(sink.url(), ["webhook"])])
    worker = rig.worker(cfg, "worker")
    at_start = Counter((t.source, t.job_id, t.from_status, t.to_status) for t in sim.transitions(until=0.0))

    def rows(records: list[Any]) -> Counter[tuple[str, str, str | None, str]]:
        return Counter((e.source, e.job_id, e.prev_status, e.status) for e in records if isinstance(e, JobEvent))

    await read_topic(rig.broker.conn, f"{rig.prefix}.events", until=lambda r: rows(r) >= at_start,
                     timeout=90, partitions=4)
    server: KafkaBroker = rig.broker.server
    await asyncio.to_thread(server.stop)  # off the loop: the sink keeps answering meanwhile
    sim.set_time(sim.horizon())  # every job ends while the broker is away
    expected = expected_alerts(running, seen_at=0.0)
    assert len(expected) >= 3
    await wait_for(lambda: "broker unreachable: holding" in worker.output(), OUTAGE, "the holding log line", worker)
    await asyncio.sleep(max(0.0, OUTAGE - 5))
    assert sink.received == [], "an alert went out while the broker was down"
    await asyncio.to_thread(server.start)  # same port, same data dir
    await wait_for(lambda: len(sink.received) >= len(expected), 90, "alerts after the broker returned", worker)
    await asyncio.sleep(3)  # a duplicate would arrive now
    assert_exactly(at_webhook(sink), expected)
    out = worker.output()
    assert "broker unreachable: holding" in out
    assert "ERROR watcher" not in out, rig.logs()  # (aiokafka logs its reconnects as ERROR)


async def test_sigterm_mid_delivery_finishes_it_and_successor_sends_nothing_more(rig: Rig) -> None:
    """SIGTERM while the sink takes SINK_DELAY s to answer: what was in flight completes (the sink
    kept every request it got), and across both workers each alert was sent exactly once."""
    running = await rig.simulator(scenario(desktops=(1, 1), fail=1.0), at_end=True)
    sink = await rig.webhook(SlowSink, delay=SINK_DELAY)
    cfg = rig.config(running, [(sink.url(), ["webhook"])], session_timeout="6s")
    expected = expected_alerts(running, seen_at=-1.0)
    assert len(expected) == 2
    first = rig.worker(cfg, "worker1")
    await wait_for(lambda: sink.inflight > 0, 90, "a delivery in flight", first)
    assert sink.received == []
    await asyncio.to_thread(first.stop, 30)  # SIGTERM, mid-delivery; the sink (this loop) keeps answering
    assert first.proc is not None and first.proc.returncode == 0, rig.logs()
    done_by_first = job_ids_at(sink)
    assert done_by_first and sink.dropped == 0 and sink.attempts == len(done_by_first), (
        f"an in-flight delivery was cut off by SIGTERM\n{rig.logs()}")
    second = rig.worker(cfg, "worker2")
    await wait_for(lambda: len(sink.received) >= len(expected), 60, "the rest from the successor", second)
    await asyncio.sleep(SINK_DELAY + 3)  # a repeat would arrive now
    assert_exactly(at_webhook(sink), expected)
    assert sink.dropped == 0 and sink.attempts == len(expected)
