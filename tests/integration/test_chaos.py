"""Chaos, on real Apache Kafka: every fault of issue 6 in one run, and each alert still arrives once.

One scenario, its jobs failing over virtual time, while

* ~30% of the cloud requests are answered 429 throughout (half of them with ``Retry-After``);
* the worker is SIGKILLed while a delivery is in flight, and a new one takes over;
* the broker (its own JVM, data kept) stops for ``OUTAGE`` seconds while jobs keep failing;
* the webhook answers 503 for ``SINK_DOWN`` seconds as the held changes come through.

The sink's outage is shorter than the notify retry budget on purpose: what is under test is
that retries recover it without a repeat. (The DLQ and ``watcher dlq replay`` have their own
tests, test_dlq and test_delivery.) Kafka only: Tansu keeps nothing across a restart.

Every job is RUNNING when first polled (wait 0, all created at t=0) and the test waits until
the worker has seen them all, so each failure is a RUNNING → FAILED change whatever the faults
do to the timing, and the expected alerts (keys included) come from the simulator's plan.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import read_topic, wait_for
from tests.integration.test_delivery import (
    EVS_ERROR,
    P1,
    P2,
    REGION,
    RULE_FOR,
    WKS_ERROR,
    Arrived,
    Expected,
    Rig,
    SlowSink,
    assert_exactly,
    at_webhook,
    event_rows,
    expected_alerts,
)
from tests.kafka.kafka import KafkaBroker
from tests.kafka.legs import BrokerLeg
from watcher.app.kafka import KafkaConnection
from watcher.simulator.server import RunningSimulator

pytestmark = [pytest.mark.slow, pytest.mark.broker, pytest.mark.timeout(240)]

OUTAGE = 30.0  # seconds the broker is away
SINK_DOWN = 8.0  # seconds the webhook answers 503, counted from the first refused attempt
SINK_DELAY = 0.3  # seconds the webhook takes to answer, so the SIGKILL lands mid-delivery
RATE = 1.0  # virtual seconds per real second while the clock runs
HANDOVER, OUTAGE_UNTIL = 24.0, 44.0  # virtual seconds: the end of the first two phases
# Notify retries: 30 attempts of at least ~1 s each after the first few (equal jitter), within
# 60 s: a sink down for SINK_DOWN s is ridden out by every alert, none is dead-lettered.
RETRY = "attempts = 30\nbase_delay = 0.2\nmax_delay = 2.0\nbudget_seconds = 60.0"


def chaos_scenario() -> str:
    """Desktops in both projects and EVS volumes in the first, all RUNNING from t=0, half failing
    between t=2 and t=56; 429 for ~30% of the requests (0.15 with Retry-After, then 0.18 of the rest)."""
    wks_error = f'{{code: {WKS_ERROR[0]}, message: "{WKS_ERROR[1]}"}}'
    evs_error = f'{{code: {EVS_ERROR[0]}, message: "{EVS_ERROR[1]}"}}'
    desktops = "job_type: createDesktops, start: 0, wait: 0, duration: [2, 56], fail: 0.5"
    return f"""\
seed: 11
projects:
  {P1}:
    workspace:
      - {{{desktops}, desktops: 14, errors: [{wks_error}]}}
    evs:
      - {{job_type: createVolume, count: 6, start: 0, wait: 0, duration: [2, 56], fail: 0.5, errors: [{evs_error}]}}
  {P2}:
    workspace:
      - {{{desktops}, desktops: 10, errors: [{wks_error}]}}
faults:
  - {{kind: throttle, probability: 0.15, retry_after: 1}}
  - {{kind: throttle, probability: 0.18}}
"""


def alert_key(e: Expected) -> str:
    """The key the rules give the alert (watcher.events.alert_key), from the plan."""
    return f"{e.rule}|{e.source}/{REGION}/{e.project}/{e.job_id}|{e.prev}>{e.status}|firing"


def arrived_key(a: Arrived) -> str:
    """The same key, read back from what the webhook received."""
    source = a.facts["Job type"].rsplit("(", 1)[1].rstrip(")")
    prev, status = a.facts["Status"].split(" → ")
    return f"{RULE_FOR[source]}|{source}/{a.facts['Region']}/{a.facts['Project']}/{a.job_id}|{prev}>{status}|firing"


def mark_key(a: Arrived) -> str:
    """The settled mark of the notification that carried ``a``: every failure here is the opening
    (notification 1 of episode 1) of its own incident, the rule and the job (its own subject)."""
    source = a.facts["Job type"].rsplit("(", 1)[1].rstrip(")")
    return f"{RULE_FOR[source]}|{source}/{a.facts['Region']}/{a.facts['Project']}/{a.job_id}#1/1|*"


class VirtualClock:
    """Moves the frozen simulator clock forward at RATE, up to ``until`` (raised phase by phase)."""

    def __init__(self, running: RunningSimulator) -> None:
        self.sim, self.until = running.sim, 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> VirtualClock:
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.25)
            real, now = time.monotonic(), self.sim.now()
            if now < self.until:  # by real time elapsed, so a busy loop does not slow the scenario down
                self.sim.set_time(min(self.until, now + RATE * (real - last)))
            last = real

    async def reach(self, until: float) -> None:
        """Run the clock to ``until`` and return once it is there."""
        self.until = until
        while self.sim.now() < until:
            await asyncio.sleep(0.25)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class Marks:
    """The keys the workers mark delivered, read off the delivered table's changelog as they come."""

    def __init__(self, conn: KafkaConnection, topic: str) -> None:
        self.conn, self.topic = conn, topic
        self.keys: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._consumer: Any = None

    async def start(self) -> Marks:
        self._consumer = self.conn.consumer(self.topic, auto_offset_reset="earliest", enable_auto_commit=False,
                                            group_id=None, metadata_max_age_ms=1000)
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        while True:
            for msgs in (await self._consumer.getmany(timeout_ms=100)).values():
                self.keys.update(json.loads(m.key) for m in msgs if m.value)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer:
            await self._consumer.stop()
        self._task = self._consumer = None


@pytest.fixture
async def rig(own_kafka: BrokerLeg, tmp_path: Path) -> AsyncIterator[Rig]:
    r = Rig(own_kafka, tmp_path)
    yield r
    await r.close()


async def test_throttling_sigkill_broker_outage_and_failing_sink_still_deliver_each_alert_once(rig: Rig) -> None:
    started = time.monotonic()
    running = await rig.simulator(chaos_scenario(), at_end=False)
    sim = running.sim
    expected = expected_alerts(running, seen_at=None)  # the status before each failure: RUNNING
    ended_at = {t.job_id: t.at_seconds for t in sim.transitions() if t.job_id in expected}
    by_phase = Counter(next(i for i, cap in enumerate((HANDOVER, OUTAGE_UNTIL, 1e9)) if at <= cap)
                       for at in ended_at.values())
    assert len(expected) == 15 and {e.prev for e in expected.values()} == {"RUNNING"}
    assert by_phase == {0: 6, 1: 4, 2: 5}, f"each phase must fail some jobs: {by_phase}"
    want_keys = Counter(alert_key(e) for e in expected.values())

    sink = await rig.webhook(SlowSink, delay=SINK_DELAY)
    cfg = rig.config(running, [(sink.url(), ["webhook"])], retry=RETRY, session_timeout="6s")
    first = rig.worker(cfg, "worker1")
    at_start = Counter((t.source, t.job_id, t.from_status, t.to_status) for t in sim.transitions(until=0.0))
    await read_topic(rig.broker.conn, f"{rig.prefix}.events", until=lambda r: event_rows(r) >= at_start,
                     timeout=120, partitions=4)  # every job seen RUNNING before any fails
    clock = VirtualClock(running).start()
    marks = await Marks(rig.broker.conn, f"{rig.prefix}-{rig.prefix}-delivered-changelog").start()
    try:
        # 1. SIGKILL while the webhook holds a request, then a new worker. Not in the instant after
        # the webhook answered one and before the worker recorded that: no sender can close that
        # gap (only a receiver that dedups could), and a repeat from it would say nothing new.
        clock.until = HANDOVER

        def mid_delivery() -> bool:
            answered = {mark_key(a) for a in at_webhook(sink)}
            return len(answered) >= 2 and sink.inflight > 0 and answered <= marks.keys

        await wait_for(mid_delivery, 90, "a delivery in flight, the ones answered marked", first)
        first.kill()
        await marks.stop()
        killed_after = len(sink.received)
        second = rig.worker(cfg, "worker2")
        await clock.reach(HANDOVER)
        before_outage = {j for j, at in ended_at.items() if at <= HANDOVER}
        await wait_for(lambda: {a.job_id for a in at_webhook(sink)} >= before_outage, 120,
                       "the successor delivering what failed before the outage", second)

        # 2. The broker away for OUTAGE s; jobs keep failing meanwhile.
        server: KafkaBroker = rig.broker.server
        received = len(sink.received)
        await asyncio.to_thread(server.stop)  # off the loop: simulator and sink keep answering
        down_at = time.monotonic()
        clock.until = OUTAGE_UNTIL
        await wait_for(lambda: "broker unreachable: holding" in second.output(), OUTAGE, "the holding log line", second)
        await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - down_at)))
        failed_away = [at for at in ended_at.values() if HANDOVER < at <= sim.now()]
        assert len(failed_away) >= 2, f"too few jobs failed while the broker was away: {failed_away}"
        assert len(sink.received) == received, "an alert went out while the broker was down"

        # 3. The webhook refuses (503) what comes through first after the broker returns.
        sink.fail_status, sink.fail_always = 503, True
        refused_from = sink.attempts
        await asyncio.to_thread(server.start)  # same port, same data dir
        clock.until = sim.horizon()
        await wait_for(lambda: sink.attempts > refused_from, 90, "a delivery the webhook refuses", second)
        await asyncio.sleep(SINK_DOWN)
        sink.fail_always = False
        refused = sink.attempts - refused_from

        await clock.reach(sim.horizon())
        await wait_for(lambda: {a.job_id for a in at_webhook(sink)} >= set(expected), 120, "every alert", second)
        await asyncio.sleep(5)  # a repeat would arrive now
    finally:
        await clock.stop()
        await marks.stop()

    arrived = at_webhook(sink)
    got_keys = Counter(arrived_key(a) for a in arrived)
    assert got_keys == want_keys, (f"duplicates: {+(got_keys - Counter(set(got_keys)))}\n"
                                   f"missing: {+(want_keys - got_keys)}\nextra: {+(got_keys - want_keys)}\n{rig.logs()}")
    assert_exactly(arrived, expected)  # titles, facts, each once
    throttled = sim.faults.fired
    assert throttled[0] >= 10 and throttled[1] >= 10, f"the 429 storm did not happen: {throttled}"
    out = first.output() + second.output()
    assert "broker unreachable: holding" in second.output()
    assert "broker reachable again: published" in second.output()
    assert refused > 0 and "error=503" in second.output()  # refused as 503, retried as http_5xx
    assert "dead-lettered" not in out, rig.logs()
    assert "ERROR watcher" not in out, rig.logs()  # (aiokafka logs its reconnects as ERROR)
    print(f"killed after {killed_after} deliveries ({sink.dropped} cut off in flight); 429s {dict(throttled)} of "
          f"{sum(sim.requests.values())} requests; webhook refused {refused}; {time.monotonic() - started:.0f}s")
