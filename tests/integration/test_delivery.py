"""Simulator scenario → `watcher run` workers → real sinks: each alert arrives exactly once.

The delivery issue's "Done when", on each broker leg. The expected alerts never come from the
pipeline: they are the simulator's own plan (its transitions and job records) read through
the test's rule file, which fires on every job that ends failed (``workspace: failed``,
``evs: failed``) and routes to the tags ``webhook`` (a real HTTP server, Apprise ``json://``)
and ``mail`` (a real SMTP server). Every assertion counts exactly: a duplicate fails as
surely as a loss.

* a scenario stepped through every instant → the expected alerts at the webhook and by mail,
  with title, status old → new, error, job/parent ids, desktop and user;
* SIGKILL while a slow sink has requests in flight, then a new worker → each alert once;
* a sink answering 500 for a while → each alert once, after retries;
* a sink that never recovers → one DeadLetter per alert on ``<prefix>.dlq``, nothing delivered;
* two workers on one config → one stable group of two, each delivered some alerts, the sink got
  each once (Apache Kafka also shows the partitions split; Tansu's DescribeGroups has no assignments).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.integration.harness import (
    Group,
    ReportingWorker,
    WatchSpec,
    Worker,
    describe_group,
    read_topic,
    unique_prefix,
    wait_for,
    write_config,
)
from tests.integration.topic import TopicCollector
from tests.kafka.legs import kafka_only
from watcher.events import DeadLetter, JobEvent
from watcher.simulator import DEFAULT_PROJECTS
from watcher.simulator.server import RunningSimulator, start_simulator
from watcher.simulator.settings import Settings
from watcher.sinks import Mailbox, WebhookSink

pytestmark = pytest.mark.timeout(240)

P1, P2 = DEFAULT_PROJECTS
REGION = "cn-north-4"
WKS_ERROR = ("WKS.0112", "Insufficient desktop quota.")
EVS_ERROR = ("EVS.1010", "invalid volume size!")
FAILED_WORD = {"workspace": "FAILED", "evs": "FAIL"}  # each API's word for the failed phase
RULE_FOR = {"workspace": "desktop-failed", "evs": "volume-failed"}

RULES = """\
rules:
  - name: desktop-failed
    when: "workspace: failed"
    notify: [webhook, mail]
    severity: critical
  - name: volume-failed
    when: "evs: failed"
    notify: [webhook, mail]
"""

FAST_RETRY = "attempts = 3\nbase_delay = 0.1\nmax_delay = 0.3\nbudget_seconds = 10.0"


def scenario(*, desktops: tuple[int, int], fail: float, volumes: int = 0, vol_fail: float = 0.5) -> str:
    """Workspace desktops in both projects and (in the first) single-volume EVS jobs, all ended by t=5."""
    wks_error = f'{{code: {WKS_ERROR[0]}, message: "{WKS_ERROR[1]}"}}'
    evs_error = f'{{code: {EVS_ERROR[0]}, message: "{EVS_ERROR[1]}"}}'
    lines = ["seed: 5", "projects:"]
    for project, n in zip((P1, P2), desktops, strict=True):
        lines += [f"  {project}:", "    workspace:",
                  f"      - {{job_type: createDesktops, desktops: {n}, start: 0, wait: 1, duration: [1, 3],"
                  f" fail: {fail}, errors: [{wks_error}]}}"]
        if volumes and project == P1:
            lines += ["    evs:",
                      f"      - {{job_type: createVolume, count: {volumes}, start: 0, wait: 1, duration: [1, 2],"
                      f" fail: {vol_fail}, errors: [{evs_error}]}}"]
    return "\n".join(lines) + "\n"


# -- what should arrive, from the simulator's plan ---------------------------------------------


@dataclass(frozen=True)
class Expected:
    """One alert the rules must fire, and the facts its message must carry."""

    rule: str
    source: str
    project: str
    job_id: str
    job_type: str
    prev: str | None  # None: first seen already failed
    status: str
    job_line: str  # "Job:" line: the id, and the parent for Workspace sub-jobs
    extra: tuple[tuple[str, str], ...]  # further "Label: value" lines (desktop, user, ...)

    @property
    def title(self) -> str:
        return f"[FAILED] {self.job_type} in {self.project} ({REGION})"

    @property
    def facts(self) -> dict[str, str]:
        code, message = WKS_ERROR if self.source == "workspace" else EVS_ERROR
        status = f"{self.prev} → {self.status}" if self.prev else f"{self.status} (first seen)"
        return {
            "Job type": f"{self.job_type} ({self.source})", "Status": status, "Project": self.project,
            "Region": REGION, "Job": self.job_line, "Error": f"{code}: {message}", **dict(self.extra),
        }


def expected_alerts(running: RunningSimulator, *, seen_at: float | None) -> dict[str, Expected]:
    """Job id → the one alert its failure fires.

    The alert's previous status is what the poller last saw: ``seen_at=None`` when it saw every
    instant (the status just before), else the status at virtual time ``seen_at`` (None if the
    job did not exist yet: the failure is its first sighting).
    """
    sim = running.sim
    desktops = {d.id: d for p in sim.plan.projects.values() for d in p.desktops}
    volumes = {v.id: v for p in sim.plan.projects.values() for v in p.evs_jobs}
    out: dict[str, Expected] = {}
    for t in sim.transitions():
        if t.to_status != FAILED_WORD[t.source]:
            continue
        if t.source == "workspace":
            d = desktops[t.job_id]
            job_type, job_line = d.job_type, f"{d.id} (parent {d.job_id})"
            extra = (("Desktop", f"{d.desktop_name} ({d.desktop_id})"), ("User", d.user_name))
        else:
            v = volumes[t.job_id]
            job_type, job_line, extra = v.job_type, v.id, ()
        assert t.job_id not in out, "a job fails once"
        if seen_at is None:
            prev = t.from_status
        else:
            before = [s for s in sim.transitions() if s.job_id == t.job_id and s.at_seconds <= seen_at]
            prev = before[-1].to_status if before else None
        out[t.job_id] = Expected(
            rule=RULE_FOR[t.source], source=t.source, project=t.project, job_id=t.job_id, job_type=job_type,
            prev=prev, status=t.to_status, job_line=job_line, extra=extra,
        )
    return out


# -- what did arrive -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arrived:
    channel: str
    title: str
    facts: dict[str, str]
    kind: str = ""  # the Apprise notify type (webhook only)

    @property
    def job_id(self) -> str:
        return self.facts.get("Job", "?").split(" ")[0]


def facts_of(body: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in body.replace("\r\n", "\n").splitlines() if ": " in line)


def at_webhook(sink: WebhookSink) -> list[Arrived]:
    return [Arrived("webhook", r.body["title"], facts_of(r.body["message"]), r.body["type"]) for r in sink.received]


def at_mailbox(box: Mailbox) -> list[Arrived]:
    return [Arrived("mail", m.subject, facts_of(m.text)) for m in box.mails]


def assert_exactly(arrived: list[Arrived], expected: dict[str, Expected]) -> None:
    """Each expected alert arrived once with the right content; nothing else arrived."""
    counts = Counter(a.job_id for a in arrived)
    dup = {j: n for j, n in counts.items() if n > 1}
    assert not dup, f"delivered more than once: {dup}"
    assert set(counts) == set(expected), f"missing: {set(expected) - set(counts)}\nextra: {set(counts) - set(expected)}"
    for a in arrived:
        want = expected[a.job_id]
        assert a.title == want.title, a
        assert a.facts.items() >= want.facts.items(), f"{a.channel} got {a.facts}\nwant {want.facts}"
        if a.channel == "webhook":
            assert a.kind == "failure"


def job_ids_at(sink: WebhookSink) -> list[str]:
    return [a.job_id for a in at_webhook(sink)]


@dataclass
class SlowSink(WebhookSink):
    """A webhook that takes ``delay`` seconds to answer. A request whose sender is gone by then
    never reached the receiver (like a server that had not read it yet): it is dropped, not kept."""

    delay: float = 0.0
    dropped: int = 0
    inflight: int = 0
    hold: bool = False  # while set, no request is answered (they wait, in flight)

    async def _handle(self, request: web.Request) -> web.Response:
        self.inflight += 1
        try:
            await asyncio.sleep(self.delay)
            while self.hold:
                await asyncio.sleep(0.02)
        finally:
            self.inflight -= 1
        transport = request.transport
        if transport is None or transport.is_closing():
            self.dropped += 1
            return web.Response(status=503)
        return await super()._handle(request)


# -- the rig: simulator, sinks, config and workers of one test ------------------------------------


class Rig:
    def __init__(self, broker: Any, tmp_path: Path) -> None:
        self.broker, self.tmp = broker, tmp_path
        self.prefix = unique_prefix("dlv")
        self.rules = tmp_path / "rules.yaml"
        self.rules.write_text(RULES)
        self.workers: list[Worker] = []
        self._stops: list[Any] = []

    async def simulator(self, text: str, *, at_end: bool) -> RunningSimulator:
        """A frozen-clock simulator; ``at_end``: every job has already ended when polling starts."""
        path = self.tmp / "scenario.yaml"
        path.write_text(text)
        running = await start_simulator(scenario=path, settings=Settings(speed=0))
        self._stops.append(running.stop)
        if at_end:
            running.sim.set_time(running.sim.horizon())
        return running

    async def webhook(self, cls: type[WebhookSink] = WebhookSink, **kw: Any) -> WebhookSink:
        sink = await cls(**kw).start()
        self._stops.append(sink.stop)
        return sink

    async def events(self) -> TopicCollector:
        """Every record the workers publish on the events topic, as it arrives."""
        collector = await TopicCollector(self.broker.conn, f"{self.prefix}.events").start()
        self._stops.append(collector.stop)
        return collector

    def mailbox(self) -> Mailbox:
        box = Mailbox().start()
        self._stops.append(box.stop)
        return box

    def config(self, running: RunningSimulator, targets: list[tuple[str, list[str]]], **kw: Any) -> Path:
        sim = running.sim
        watches = [WatchSpec("workspace", [p for p in (P1, P2) if sim.job_ids("workspace", p)])]
        watches += [WatchSpec("evs", [p], job_ids=ids) for p in (P1, P2) if (ids := sim.job_ids("evs", p))]
        kw.setdefault("retry", FAST_RETRY)
        return write_config(self.tmp / "watcher.toml", leg=self.broker, prefix=self.prefix, sim_url=running.url,
                            watches=watches, rules=[str(self.rules)], targets=targets, **kw)

    def worker(self, cfg: Path, name: str) -> Worker:
        w = Worker(cfg, self.tmp / f"{name}.log").start()
        self.workers.append(w)
        return w

    def reporting_worker(self, cfg: Path, name: str) -> ReportingWorker:
        w = ReportingWorker(cfg, self.tmp / f"{name}.log", report=self.tmp / f"{name}.jsonl").start()
        assert isinstance(w, ReportingWorker)
        self.workers.append(w)
        return w

    def logs(self) -> str:
        return "\n".join(f"--- {w.log.name} ---\n{w.output()[-3000:]}" for w in self.workers)

    async def close(self) -> None:
        for w in self.workers:
            w.stop()
        for stop in reversed(self._stops):
            result = stop()
            if asyncio.iscoroutine(result):
                await result


@pytest.fixture
async def rig(broker: Any, tmp_path: Path) -> Any:
    r = Rig(broker, tmp_path)
    yield r
    await r.close()


async def wait_until(predicate: Any, timeout: float, what: str, rig: Rig) -> None:
    """Like harness.wait_for, for an async predicate."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{rig.logs()}")


def event_rows(records: list[Any]) -> Counter[tuple[str, str, str | None, str]]:
    return Counter((e.source, e.job_id, e.prev_status, e.status) for e in records if isinstance(e, JobEvent))


# -- the tests --------------------------------------------------------------------------------------


async def test_scenario_fires_exactly_the_expected_alerts_at_webhook_and_mail(rig: Rig) -> None:
    """Step the frozen clock through every transition instant: each failure alerts once per channel,
    saying which job, its old → new status, the error, the desktop and user."""
    running = await rig.simulator(scenario(desktops=(4, 2), fail=0.5, volumes=2), at_end=False)
    sim = running.sim
    sink, box = await rig.webhook(), rig.mailbox()
    cfg = rig.config(running, [(sink.url("alerts"), ["webhook"]), (box.url(), ["mail"])])
    collector = await rig.events()
    worker = rig.worker(cfg, "worker")
    transitions = sim.transitions()
    for at in sorted({0.0, *(t.at_seconds for t in transitions)}):
        sim.set_time(at)  # the next step waits until the poller published this one: every status is seen
        want = Counter((t.source, t.job_id, t.from_status, t.to_status) for t in transitions if t.at_seconds <= at)
        await wait_for(lambda want=want: event_rows(collector.records) >= want, 90, f"events up to t={at}", worker)
    expected = expected_alerts(running, seen_at=None)
    assert Counter(e.source for e in expected.values()) == {"workspace": 3, "evs": 1}
    assert {e.prev for e in expected.values()} == {"RUNNING"}
    await wait_for(lambda: len(sink.received) >= len(expected) and len(box.mails) >= len(expected), 60,
                   "alerts at both sinks", worker)
    await asyncio.sleep(3)  # a duplicate would arrive now
    assert event_rows(collector.records) == Counter((t.source, t.job_id, t.from_status, t.to_status) for t in transitions)
    assert {r.path for r in sink.received} == {"/alerts"}
    assert_exactly(at_webhook(sink), expected)
    assert_exactly(at_mailbox(box), expected)
    assert {tuple(m.rcpt_tos) for m in box.mails} == {("oncall@example.com",)}
    assert sink.attempts == len(expected)


async def test_sigkill_mid_delivery_then_restart_delivers_each_alert_once(rig: Rig) -> None:
    """Kill -9 the worker while a slow sink has requests in flight; its successor finishes the job."""
    running = await rig.simulator(scenario(desktops=(20, 10), fail=1.0), at_end=True)
    sink = await rig.webhook(SlowSink, delay=0.4)
    cfg = rig.config(running, [(sink.url(), ["webhook"])], session_timeout="6s")
    expected = expected_alerts(running, seen_at=-1.0)
    assert len(expected) == 30
    first = rig.worker(cfg, "worker1")
    await wait_for(lambda: len(sink.received) >= 8 and sink.inflight > 0, 90, "deliveries under way", first)
    # The sink stops answering: what it answered has a second to be marked (a mark is durable within
    # milliseconds, never at the instant of the answer), what it holds is cut off by the kill.
    sink.hold = True
    await asyncio.sleep(1.0)
    assert sink.inflight > 0
    first.kill()  # with requests in flight: sent by the worker, not yet answered by the sink
    await asyncio.sleep(0.5)  # their connections are seen closed before they are let go (dropped)
    sink.hold = False
    delivered_before = Counter(job_ids_at(sink))
    assert len(delivered_before) < len(expected), "the kill came too late to be mid-stream"
    second = rig.worker(cfg, "worker2")
    await wait_for(lambda: set(job_ids_at(sink)) >= set(expected), 120, "every alert after the restart", second)
    await asyncio.sleep(3)  # a redelivery would arrive now
    dup = {j: n for j, n in Counter(job_ids_at(sink)).items() if n > 1}
    assert not dup, (f"delivered twice across the crash: {dup} (of {sum(delivered_before.values())} delivered "
                     f"before the kill; {sink.dropped} requests were in flight)\n{rig.logs()}")
    assert_exactly(at_webhook(sink), expected)
    assert len(sink.received) > sum(delivered_before.values())  # the successor delivered the rest
    print(f"killed after {sum(delivered_before.values())} deliveries, {sink.dropped} requests cut off in flight")


@kafka_only
async def test_sink_answering_500_for_a_while_gets_each_alert_once(rig: Rig) -> None:
    running = await rig.simulator(scenario(desktops=(4, 2), fail=0.5, volumes=2), at_end=True)
    failures = 4
    sink = await rig.webhook(fail_next=failures)
    retry = "attempts = 6\nbase_delay = 0.1\nmax_delay = 0.3\nbudget_seconds = 20.0"
    cfg = rig.config(running, [(sink.url(), ["webhook"])], retry=retry)
    expected = expected_alerts(running, seen_at=-1.0)
    worker = rig.worker(cfg, "worker")
    await wait_for(lambda: len(sink.received) >= len(expected), 90, "alerts after the sink recovered", worker)
    await asyncio.sleep(3)
    assert_exactly(at_webhook(sink), expected)
    assert sink.fail_next == 0 and sink.attempts == len(expected) + failures > len(sink.received)
    assert "dead-lettered" not in worker.output()


@kafka_only
async def test_a_notification_the_stream_never_reads_is_still_delivered_once(rig: Rig) -> None:
    """Across a crash a notification can be left unsettled below a committed offset (its worker
    died mid-delivery, or Faust skipped it). Made so here: a notification on the topic with the
    group's offset committed past it. The worker's re-read net delivers it, once, and says so
    once; nothing else makes it warn."""
    from aiokafka import TopicPartition

    from watcher.app.topics import ensure_topics
    from watcher.events import Alert, encode, job_key
    from watcher.incidents.model import standalone

    running = await rig.simulator(scenario(desktops=(1, 1), fail=0.0), at_end=True)
    sink = await rig.webhook()
    cfg = rig.config(running, [(sink.url(), ["webhook"])])
    topic, conn = f"{rig.prefix}.notifications", rig.broker.conn
    await ensure_topics(conn, {topic: 4})
    fired = datetime.now(UTC) - timedelta(minutes=1)
    event = JobEvent(source="evs", region="cn-north-4", project_id=P1, job_key=job_key("evs", "cn-north-4", P1, "lost-1"),
                     job_id="lost-1", job_type="extendVolume", status="FAIL", phase="failed", observed_at=fired)
    alert = Alert(key="volume-failed|lost-1", rule="volume-failed", tags=("webhook",), title="[FAIL] the lost alert",
                  body="it was never read", event=event, fired_at=fired, incident="volume-failed|evs/lost-1")  # fmt: skip
    note = standalone(alert, fired)
    producer = conn.producer()
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, encode(note), key=note.incident.id.encode())
    finally:
        await producer.stop()
    group = conn.consumer(group_id=rig.prefix, enable_auto_commit=False)
    await group.start()
    try:  # the worker's consumer group is past it: its stream starts after the notification
        group.assign([TopicPartition(topic, meta.partition)])
        await group.commit({TopicPartition(topic, meta.partition): meta.offset + 1})
    finally:
        await group.stop()
    worker = rig.worker(cfg, "worker")
    await wait_for(lambda: len(sink.received) >= 1, 90, "the never-read notification", worker)
    await asyncio.sleep(12)  # another re-read round: it must not send it again
    assert [r.body["title"] for r in sink.received] == ["[FAIL] the lost alert"]
    out = worker.output()
    assert out.count(f"notification {note.key} was never settled") == 1
    assert out.count("was never settled") == 1


@kafka_only
async def test_an_alert_the_stream_never_reads_still_pages_once(rig: Rig) -> None:
    """The same for an alert: on the alerts topic with the group's offset committed past it (its
    worker died before the incident it opened was on the broker). The incidents' re-read net
    applies it: one page, one warning, and the next rounds leave it alone."""
    from aiokafka import TopicPartition

    from watcher.app.topics import ensure_topics
    from watcher.events import Alert, encode, job_key

    running = await rig.simulator(scenario(desktops=(1, 1), fail=0.0), at_end=True)
    sink = await rig.webhook()
    cfg = rig.config(running, [(sink.url(), ["webhook"])])
    topic, conn = f"{rig.prefix}.alerts", rig.broker.conn
    await ensure_topics(conn, {topic: 4})
    fired = datetime.now(UTC) - timedelta(minutes=1)
    event = JobEvent(source="evs", region="cn-north-4", project_id=P1, job_key=job_key("evs", "cn-north-4", P1, "lost-2"),
                     job_id="lost-2", job_type="extendVolume", status="FAIL", phase="failed", observed_at=fired)
    alert = Alert(key="volume-failed|lost-2", rule="volume-failed", tags=("webhook",), title="[FAIL] the unread alert",
                  body="its incident was lost", event=event, fired_at=fired, incident="volume-failed|evs/lost-2")  # fmt: skip
    producer = conn.producer()
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, encode(alert), key=alert.incident.encode())
    finally:
        await producer.stop()
    group = conn.consumer(group_id=rig.prefix, enable_auto_commit=False)
    await group.start()
    try:
        group.assign([TopicPartition(topic, meta.partition)])
        await group.commit({TopicPartition(topic, meta.partition): meta.offset + 1})
    finally:
        await group.stop()
    worker = rig.worker(cfg, "worker")
    await wait_for(lambda: len(sink.received) >= 1, 90, "the page of the unread alert", worker)
    await asyncio.sleep(12)  # another re-read round: it must not page again
    assert [r.body["title"] for r in sink.received] == ["[FAIL] the unread alert"]
    out = worker.output()
    assert out.count(f"{alert.key} reached no incident") == 1
    assert out.count("reached no incident") == 1 and "was never settled" not in out


@kafka_only
async def test_a_dead_target_does_not_hold_up_the_alerts_behind_it(rig: Rig) -> None:
    """Every alert goes to two targets; one is down. The healthy one gets every alert while the
    dead one's retries go on off the delivery queue (the budget is far from spent); when it comes
    back, it gets each alert once, and the healthy one nothing more."""
    running = await rig.simulator(scenario(desktops=(6, 4), fail=0.6, volumes=2), at_end=True)
    down, up = await rig.webhook(fail_always=True), await rig.webhook()
    retry = "attempts = 40\nbase_delay = 1.0\nmax_delay = 2.0\nbudget_seconds = 120.0\ninline_seconds = 1.0"
    cfg = rig.config(running, [(down.url("down"), ["webhook"]), (up.url("up"), ["webhook"])], retry=retry)
    expected = expected_alerts(running, seen_at=-1.0)
    assert len(expected) > 4  # more alerts than the notify agent delivers at once
    worker = rig.worker(cfg, "worker")
    # Before: each alert held its place in the queue for the whole 120 s budget, 4 at a time.
    await wait_for(lambda: len(up.received) >= len(expected), 60, "every alert at the healthy target", worker)
    assert down.received == [] and "dead-lettered" not in worker.output()
    await wait_for(lambda: "off the queue" in worker.output(), 30, "the retries going on off the queue", worker)
    down.fail_always = False
    await wait_for(lambda: len(down.received) >= len(expected), 60, "every alert at the recovered target", worker)
    await asyncio.sleep(3)
    assert_exactly(at_webhook(up), expected)
    assert_exactly(at_webhook(down), expected)


@kafka_only
async def test_alerts_retrying_off_the_queue_survive_a_sigkill(rig: Rig) -> None:
    """The worker dies while the dead target's retries wait off the queue (nothing on Kafka says
    they wait). Its successor finds them on the alerts topic, unmarked, and resumes them: the
    recovered target gets each alert once, the healthy one nothing more."""
    running = await rig.simulator(scenario(desktops=(4, 2), fail=0.5, volumes=2), at_end=True)
    down, up = await rig.webhook(fail_always=True), await rig.webhook()
    retry = "attempts = 40\nbase_delay = 1.0\nmax_delay = 2.0\nbudget_seconds = 120.0\ninline_seconds = 1.0"
    cfg = rig.config(running, [(down.url("down"), ["webhook"]), (up.url("up"), ["webhook"])], retry=retry,
                     session_timeout="6s")  # fmt: skip
    expected = expected_alerts(running, seen_at=-1.0)
    first = rig.worker(cfg, "worker1")
    await wait_for(lambda: len(up.received) >= len(expected), 60, "every alert at the healthy target", first)
    await wait_for(lambda: first.output().count("off the queue") >= len(expected), 30, "every alert off the queue", first)
    first.kill()
    down.fail_always = False
    second = rig.worker(cfg, "worker2")
    await wait_for(lambda: len(down.received) >= len(expected), 90, "every alert at the recovered target", second)
    await asyncio.sleep(3)
    assert_exactly(at_webhook(up), expected)
    assert_exactly(at_webhook(down), expected)  # whether its stream or its re-read found them


@kafka_only
async def test_sink_that_never_recovers_parks_alerts_on_the_dlq(rig: Rig) -> None:
    running = await rig.simulator(scenario(desktops=(4, 2), fail=0.5, volumes=2), at_end=True)
    sink = await rig.webhook(fail_always=True)
    cfg = rig.config(running, [(sink.url("down"), ["webhook"])],
                     retry="attempts = 2\nbase_delay = 0.1\nmax_delay = 0.2\nbudget_seconds = 10.0")
    expected = expected_alerts(running, seen_at=-1.0)
    worker = rig.worker(cfg, "worker")
    records = await read_topic(rig.broker.conn, f"{rig.prefix}.dlq", until=lambda r: len(r) >= len(expected),
                               timeout=90, settle=3, partitions=4)
    assert records, f"nothing on the DLQ\n{rig.logs()}"
    assert all(isinstance(r, DeadLetter) for r in records)
    by_job = Counter(r.alert.event.job_id for r in records)
    assert by_job == Counter(set(expected)), f"dead letters per job: {by_job}"
    for r in records:
        want = expected[r.alert.event.job_id]
        assert (r.reason, r.attempts, r.failed_targets) == ("http_5xx", 2, (f"json://127.0.0.1:{sink.port}/****",))
        assert (r.alert.rule, r.alert.event.status, r.alert.title) == (want.rule, want.status, want.title)
        assert r.alert.key == f"{want.rule}|{r.alert.event.job_key}|->{want.status}|firing"
    assert sink.received == [] and sink.attempts == 2 * len(expected)
    assert worker.output().count("dead-lettered") == len(expected)


async def test_two_workers_share_the_work_and_deliver_each_alert_once(rig: Rig) -> None:
    """Two workers, one config: both join the group and split the partitions, both deliver, and the
    sink still gets each alert once."""
    running = await rig.simulator(scenario(desktops=(8, 8), fail=0.5, volumes=4), at_end=False)
    sim = running.sim
    sink = await rig.webhook()
    cfg = rig.config(running, [(sink.url(), ["webhook"])])
    collector = await rig.events()
    a, b = (rig.reporting_worker(cfg, name) for name in ("worker-a", "worker-b"))
    group: Group | None = None

    async def both_in_group() -> bool:
        nonlocal group
        group = await describe_group(rig.broker.conn, rig.prefix)
        return group is not None and group.state == "Stable" and len(group.members) == 2

    await wait_until(both_in_group, 90, "both workers in one stable group", rig)
    assert group is not None
    if rig.broker.kind == "kafka":  # Tansu's DescribeGroups leaves assignments empty
        alerts = [m.get(f"{rig.prefix}.alerts", set()) for m in group.members.values()]
        assert all(alerts) and not alerts[0] & alerts[1] and alerts[0] | alerts[1] == set(range(4)), group
    at_start = Counter((t.source, t.job_id, t.from_status, t.to_status) for t in sim.transitions(until=0.0))
    await wait_for(lambda: event_rows(collector.records) >= at_start, 60, "the jobs as queued at t=0", a)
    sim.set_time(sim.horizon())  # every failure happens now, while both workers are up
    expected = expected_alerts(running, seen_at=0.0)
    assert len(expected) == 10 and {e.prev for e in expected.values()} == {"WAITING", "INIT"}
    await wait_for(lambda: len(sink.received) >= len(expected), 90, "alerts", a)
    await asyncio.sleep(3)
    assert_exactly(at_webhook(sink), expected)
    by_worker = [Counter(r["job_id"] for r in w.delivered()) for w in (a, b)]
    assert all(by_worker), f"one worker delivered nothing: {by_worker}\n{rig.logs()}"
    assert by_worker[0] + by_worker[1] == Counter(set(expected))  # each alert by exactly one of them
    assert {r["pid"] for r in a.delivered()} == {a.proc.pid} and {r["pid"] for r in b.delivered()} == {b.proc.pid}
