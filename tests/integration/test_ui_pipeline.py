"""The status page of a running pipeline, in a real browser (issue 14's "Done when").

One ``watcher run`` worker (tests/integration/harness.py) on the session's Tansu broker, with
``[ui] enabled = true`` on a free port and ``WATCHER_UI_TOKEN`` in its environment; the
simulator, its clock frozen and stepped by the tests, plays a small scenario: a desktop in each
of two projects and an EVS volume, desktop A failing early and desktop B, of the same job type
in the other project, failing much later; a real webhook sink is the only notification target.
The session's browser talks to the worker's own page. Proved here:

* the overview lists every target of the scenario, each with a fresh successful poll;
* A's incident appears under Incidents while the page is open (no reload), its open
  notification delivered to the sink, which got A's alert once;
* "Silence similar" without the token is refused and writes nothing; with it, it creates the
  silence (the same record the incident stage then writes) and the action, and B, the next
  matching failure, is recorded as silenced on ``P.decisions``: no alert on ``P.alerts``, nothing
  at the sink, no incident;
* the Job page tells the same story as ``watcher explain``, for A and for B (B's with its mute).

The tests share the module's worker and run in file order, but each first brings the deployment
to the state it needs (idempotent steps: :class:`Live`), so any one of them also runs alone.
``WATCHER_UI_SCREENSHOTS=docs/ui`` writes the README's pictures of the five pages from here.

Nothing a worker publishes says which silences its rules stage holds, so "the next alert is
silenced" waits for the next-best facts, all from the worker's process: the incident stage
applied the action (it wrote the silence again) and the worker's own page lists the silence;
the failure that follows then takes at least one poll and a pass through the events topic.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import pytest_asyncio

from tests.integration.browser import needs_chromium, new_tab, shoot, until
from tests.integration.harness import ROOT, WatchSpec, Worker, unique_prefix, write_config
from tests.integration.test_delivery import facts_of
from tests.kafka.legs import BrokerLeg
from watcher import events as ev
from watcher.app.broker import free_port
from watcher.app.topics import read_topic
from watcher.rules.silence import Silence
from watcher.simulator import DEFAULT_PROJECTS
from watcher.simulator.server import RunningSimulator, start_simulator
from watcher.simulator.settings import Settings
from watcher.sinks import WebhookSink
from watcher.ui.present import stamp

pytestmark = [pytest.mark.asyncio(loop_scope="session"), needs_chromium, pytest.mark.timeout(240)]

P1, P2 = DEFAULT_PROJECTS
REGION = "cn-north-4"
TOKEN = "ui-e2e-token-" + uuid.uuid4().hex[:8]
RULE = "desktop-failed"
RULES = f"""\
rules:
  - name: {RULE}
    when: "workspace: failed"
    notify: [webhook]
    severity: critical
"""
ERROR = ("WKS.0112", "Insufficient desktop quota.")
SCENARIO = f"""\
seed: 3
projects:
  {P1}:
    workspace:
      - {{job_type: createDesktops, desktops: 1, start: 0, wait: 1, duration: 1, fail: 1.0,
          errors: [{{code: {ERROR[0]}, message: "{ERROR[1]}"}}]}}
    evs:
      - {{job_type: extendVolume, size: 100, start: 0, wait: 1, duration: 2}}
  {P2}:
    workspace:
      - {{job_type: createDesktops, desktops: 1, start: 100, wait: 1, duration: 1, fail: 1.0,
          errors: [{{code: {ERROR[0]}, message: "{ERROR[1]}"}}]}}
"""
WAIT = 90.0  # seconds any one step of the pipeline may take on a loaded 2-core machine


@dataclass(frozen=True)
class Job:
    """One failing desktop of the scenario, as the pipeline will name it."""

    project: str
    id: str
    desktop: str  # its desktop's name: what a change line says
    fails_at: float  # virtual second of its FAILED

    @property
    def key(self) -> str:
        return ev.job_key("workspace", REGION, self.project, self.id)

    @property
    def incident(self) -> str:
        return ev.incident_id(RULE, self.key)  # a desktop is its own incident subject


@dataclass
class Live:
    """The module's deployment: simulator, sink, worker and its page, and the steps that move it on."""

    leg: BrokerLeg
    sim: RunningSimulator
    sink: WebhookSink
    worker: Worker
    cfg: Path
    prefix: str
    url: str
    browser: Any
    a: Job
    b: Job
    targets: set[str]
    started: datetime
    http: httpx.AsyncClient = field(default_factory=httpx.AsyncClient)

    def log(self) -> str:
        return "--- worker log tail ---\n" + self.worker.output()[-4000:]

    async def records(self, topic: str, decode: Any = ev.decode) -> list[Any]:
        """Every record of ``P.<topic>`` now, decoded."""
        return await read_topic(self.leg.conn, f"{self.prefix}.{topic}", lambda _k, v: decode(v) if v else None,
                                idle=0.3)  # fmt: skip

    async def polled(self) -> None:
        """Every target of the scenario has a successful poll on P.status."""

        async def ok() -> bool:
            seen = {s.target for s in await self.records("status") if isinstance(s, ev.TargetStatus) and s.last_ok}
            return seen >= self.targets

        await until(ok, WAIT, "a successful poll of every target on P.status", self.log, every=1.0)

    async def fail(self, job: Job) -> None:
        """Move the simulator's clock to ``job``'s failure (never back)."""
        if self.sim.sim.now() < job.fails_at:
            self.sim.sim.set_time(job.fails_at)

    async def shown(self, path: str, text: str, what: str) -> None:
        """``text`` is on the worker's page at ``path`` (its view caught up with the topics)."""

        async def there() -> bool:
            return text in (await self.http.get(self.url + path)).text

        await until(there, WAIT, what, self.log, every=0.5)

    async def incident_of(self, job: Job) -> None:
        """``job`` failed and its incident is on the page."""
        await self.polled()  # first seen running, before it fails: the story the tests expect
        await self.fail(job)
        await self.shown("incidents", f'data-incident="{job.incident}"', f"incident {job.incident} on the page")

    async def tab(self) -> Any:
        return await new_tab(self.browser)


def failing_jobs(running: RunningSimulator) -> tuple[Job, Job]:
    failed = [t for t in running.sim.transitions() if t.source == "workspace" and t.to_status == "FAILED"]
    a, b = sorted(failed, key=lambda t: t.at_seconds)
    assert (a.project, b.project) == (P1, P2) and a.at_seconds < 10 < 100 < b.at_seconds
    names = {d.id: d.desktop_name for p in running.sim.plan.projects.values() for d in p.desktops}
    return tuple(Job(t.project, t.job_id, names[t.job_id], t.at_seconds) for t in (a, b))  # type: ignore[return-value]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def live(tansu_broker: BrokerLeg, chromium: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    tmp = tmp_path_factory.mktemp("ui-e2e")
    (tmp / "scenario.yaml").write_text(SCENARIO)
    (tmp / "rules.yaml").write_text(RULES)
    running = await start_simulator(scenario=tmp / "scenario.yaml", settings=Settings(speed=0))
    sink = await WebhookSink().start()
    prefix, port = unique_prefix("ui"), free_port()
    sim = running.sim
    watches = [WatchSpec("workspace", [P1, P2]), WatchSpec("evs", [P1], job_ids=sim.job_ids("evs", P1))]
    cfg = write_config(tmp / "watcher.toml", leg=tansu_broker, prefix=prefix, sim_url=running.url, watches=watches,
                       rules=[str(tmp / "rules.yaml")], targets=[(sink.url("alerts"), ["webhook"])],
                       extra=f"[ui]\nenabled = true\nport = {port}\n")  # fmt: skip
    targets = {f"workspace/{REGION}/{P1}", f"workspace/{REGION}/{P2}", f"evs/{REGION}/{P1}"}
    started = datetime.now(UTC).replace(microsecond=0)
    worker = Worker(cfg, tmp / "worker.log", env={"WATCHER_UI_TOKEN": TOKEN}).start()
    a, b = failing_jobs(running)
    state = Live(tansu_broker, running, sink, worker, cfg, prefix, f"http://127.0.0.1:{port}/", chromium, a, b,
                 targets, started)  # fmt: skip
    try:

        async def serving() -> bool:
            try:
                return (await state.http.get(state.url)).status_code == 200
            except httpx.TransportError:
                return False

        await until(serving, WAIT, "the worker's status page", state.log, every=0.5)
        yield state
    finally:
        worker.stop()
        await state.http.aclose()
        await sink.stop()
        await running.stop()


async def test_the_overview_lists_every_target_of_the_scenario_with_a_fresh_poll(live: Live) -> None:
    await live.polled()
    tab = await live.tab()
    await tab.goto(live.url)
    rows = tab.locator("tr[data-target]")

    async def all_ok() -> bool:  # the page fills in live as the worker's status records arrive
        healths = [h.strip() for h in await rows.locator("td:nth-child(4) .pill").all_inner_texts()]
        workers = await tab.locator("#workers tbody tr").count()
        return await rows.count() == len(live.targets) and healths == ["ok"] * len(live.targets) and workers == 1

    await until(all_ok, WAIT, "every target ok on the overview", live.log)
    assert {await r.get_attribute("data-target") for r in await rows.all()} == live.targets
    for tid in sorted(live.targets):
        row = tab.locator(f'tr[data-target="{tid}"]')
        cells = [c.strip() for c in await row.locator("td").all_inner_texts()]
        assert cells[:3] == tid.split("/") and cells[3] == "ok"
        last_ok = datetime.strptime(await row.locator("td.last-ok").inner_text(), "%Y-%m-%d %H:%M:%S UTC")
        assert live.started - timedelta(seconds=1) <= last_ok.replace(tzinfo=UTC) <= datetime.now(UTC), tid
        age = await row.locator("td.age").inner_text()
        assert re.fullmatch(r"\d+s ago", age), (tid, age)  # fresh: seconds, not minutes
    workers = [c.strip() for c in await tab.locator("#workers tbody tr td").all_inner_texts()]
    assert len(workers) == 8 and workers[2] == "ok"  # one worker, broker ok
    await shoot(tab, "overview")
    await tab.context.close()


async def test_a_failing_jobs_incident_appears_under_incidents_while_the_page_is_open(live: Live) -> None:
    await live.polled()
    tab = await live.tab()
    await tab.goto(live.url + "incidents")
    await tab.locator("#live-state", has_text="live").wait_for(timeout=WAIT * 1000)  # the event stream is open
    card = tab.locator(f'article[data-incident="{live.a.incident}"]')
    loaded = int(await tab.evaluate("document.body.dataset.version"))
    await live.fail(live.a)
    await card.wait_for(timeout=WAIT * 1000)  # one poll, the rules, the incident stage, then a live refresh
    assert int(await tab.evaluate("document.body.dataset.version")) == loaded  # no reload: swapped in live
    assert [p.strip() for p in await card.locator("header .pill").all_inner_texts()] == ["critical", "firing"]
    job = [c.strip() for c in await card.locator("table.jobs tbody tr td").all_inner_texts()]
    assert job[0] == live.a.id and job[1] == "createDesktops" and job[2].endswith("FAILED")
    assert job[3:5] == list(ERROR)
    delivered = card.locator("ul.notes > li", has_text="delivered")
    await delivered.wait_for(timeout=WAIT * 1000)
    note = [line.strip() for line in (await delivered.inner_text()).splitlines() if line.strip()]
    assert note[0].startswith(f"delivered {live.a.incident}#1/1 open: {live.a.desktop} FAILED"), note
    assert len(note) == 2 and re.fullmatch(r"delivered json://127\.0\.0\.1:\d+/\*\*\*\*", note[1]), note
    await until(lambda: len(live.sink.received) >= 1, WAIT, "A's alert at the sink", live.log)
    assert [facts_of(r.body["message"])["Job"].split()[0] for r in live.sink.received] == [live.a.id]
    await tab.context.close()


async def test_silence_similar_without_the_token_changes_nothing(live: Live) -> None:
    await live.incident_of(live.a)
    before = (await live.records("silences", lambda v: v), await live.records("actions"))
    tab = await live.tab()
    await tab.goto(live.url + "incidents")
    card = tab.locator(f'article[data-incident="{live.a.incident}"]')
    async with tab.expect_navigation():
        await card.get_by_role("button", name="Silence similar").click()
    assert await tab.locator("#refused").inner_text() == (
        "a valid token (WATCHER_UI_TOKEN) is needed for this action: nothing was changed")
    assert (await live.records("silences", lambda v: v), await live.records("actions")) == before
    assert not [a for a in before[1] if isinstance(a, ev.Action) and a.incident == live.a.incident]
    await tab.context.close()


async def test_silence_similar_with_the_token_mutes_the_next_matching_alert(live: Live) -> None:
    await live.incident_of(live.a)
    tab = await live.tab()
    await tab.goto(live.url + "incidents")
    card = tab.locator(f'article[data-incident="{live.a.incident}"]')
    await tab.fill("#act-token", TOKEN)
    await tab.fill("#act-by", "ana")
    await card.locator("select[name=hours]").select_option("4")
    async with tab.expect_navigation():
        await card.get_by_role("button", name="Silence similar").click()
    done = await tab.locator(".done").inner_text()
    made = re.fullmatch(r"silence (\w+) created: (.+) until (.+ UTC)", done)
    assert made is not None, done
    sid, match = made.group(1), made.group(2)
    assert match == f'rule == "{RULE}" && job_type == "createDesktops"'  # this rule, this job type: B's too

    # The page wrote the silence and the action; the worker's incident stage, applying the
    # action, wrote the very same silence again (same id, same record).
    decode = msgspec.json.Decoder(Silence).decode

    async def both_written() -> bool:
        return len([s for s in await live.records("silences", decode) if s.id == sid]) == 2

    await until(both_written, WAIT, "the silence from the page and from the incident stage", live.log, every=0.5)
    first, again = [s for s in await live.records("silences", decode) if s.id == sid]
    assert first == again, (first, again)
    assert (first.created_by, first.origin, first.comment) == ("ana", "ui", f"silence similar to incident {live.a.incident}")
    assert first.ends - first.starts == timedelta(hours=4) and made.group(3) == stamp(first.ends)
    actions = [a for a in await live.records("actions") if isinstance(a, ev.Action) and a.incident == live.a.incident]
    assert [(a.kind, a.by, a.via, a.silence_id, a.until) for a in actions] == [("silence", "ana", "ui", sid, first.ends)]
    # The worker's incident stage applied the action (its record above); its page lists the action
    # on the card and the silence as active: its follower read P.silences, in the same process as
    # the silence book the rules consult (nothing shows that book itself: see the module docstring).
    await live.shown("incidents", f"silence by ana via ui until {stamp(first.ends)} (silence {sid})", "the action")
    await live.shown("silences", f'data-silence="{sid}"', "the silence on the worker's page")
    edit = f'<span class="pill nothing-to-tell">nothing to tell</span> <span class="mono">{live.a.incident}#1/2</span>'
    await live.shown("incidents", edit, "the card update for A, which no target here edits in place")

    # B, the next matching failure, is recorded as silenced and goes nowhere.
    await live.fail(live.b)

    async def muted() -> list[ev.Decision]:
        return [d for d in await live.records("decisions") if isinstance(d, ev.Decision) and d.alert.event.job_id == live.b.id]

    await until(lambda: _nonempty(muted()), WAIT, "B's decision on P.decisions", live.log, every=0.5)
    [decision] = await muted()
    assert (decision.result, decision.alert.rule, decision.alert.event.status) == ("silenced", RULE, "FAILED")
    assert decision.reason == first.describe()
    assert [a for a in await live.records("alerts") if isinstance(a, ev.Alert) and a.event.job_id == live.b.id] == []
    await tab.goto(live.url + "incidents")
    muted_row = tab.locator("#incidents > table.grid tbody tr", has_text=live.b.id)
    await muted_row.wait_for(timeout=WAIT * 1000)
    cells = [c.strip() for c in await muted_row.locator("td").all_inner_texts()]
    assert cells[1:] == ["silenced", RULE, live.b.id, first.describe()]
    assert await tab.locator(f'article[data-incident="{live.b.incident}"]').count() == 0
    assert [facts_of(r.body["message"])["Job"].split()[0] for r in live.sink.received] == [live.a.id]
    await shoot(tab, "incidents")
    await tab.goto(live.url + "silences")
    await shoot(tab, "silences")

    lines = await same_story(live, tab, live.b)
    assert lines[-2:] == [f"alert {decision.alert.key} ({RULE}, firing)", f"    silenced: {first.describe()}"]
    assert await tab.locator("ol.story > li.muted-alert").count() == 1
    await tab.context.close()


async def test_the_job_page_tells_the_same_story_as_watcher_explain(live: Live) -> None:
    await live.incident_of(live.a)
    delivered = f'<span class="pill delivered">delivered</span> <span class="mono">{live.a.incident}#1/1</span>'
    await live.shown("incidents", delivered, "A's open notification delivered")
    tab = await live.tab()
    lines = await same_story(live, tab, live.a)
    alert = f"{RULE}|{live.a.key}|{_status_before(lines)}>FAILED|firing"
    assert lines[1].endswith("(first seen): no rule matches") and lines[2].endswith(f"→ FAILED: {RULE}")
    assert lines[3:7] == [
        f"alert {alert} ({RULE}, firing)",
        f"    → incident {live.a.incident}",
        f"incident {live.a.incident} ({RULE}, firing, 1 job(s))",
        f"    open 1/1 to every target: {live.a.desktop} FAILED",
    ]
    assert re.fullmatch(r" {8}delivered to json://127\.0\.0\.1:\d+/\*\*\*\*", lines[7]), lines
    await shoot(tab, "job")
    await tab.goto(live.url + "search?" + str(httpx.QueryParams({"q": "quota", "kind": "text"})))
    found = tab.locator('#results a[href^="/job?key="]')
    assert await found.all_inner_texts() == [live.a.key]  # B's alert was silenced: never on P.alerts
    assert await tab.locator("#results tbody tr", has_text=live.a.incident).count() == 1
    await shoot(tab, "search")
    await tab.context.close()


# -- helpers ---------------------------------------------------------------------------------------


async def _nonempty(found: Any) -> bool:
    return bool(await found)


def _status_before(lines: list[str]) -> str:
    """The status A was first seen in (the story's first event line: ``<stamp>  WAITING (first seen): …``)."""
    return lines[1].split("  ", 1)[1].split(" (first seen)")[0]


async def explain(live: Live, job: Job) -> list[str]:
    """What ``watcher explain KEY --config FILE`` prints for ``job``, line by line."""
    done = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "watcher.cli", "explain", job.key, "--config", str(live.cfg), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)  # fmt: skip
    out, err = await asyncio.wait_for(done.communicate(), WAIT)
    assert done.returncode == 0, err.decode()
    return out.decode().rstrip("\n").splitlines()


async def same_story(live: Live, tab: Any, job: Job) -> list[str]:
    """The Job page's story once it equals ``watcher explain``'s (both read a pipeline that may
    still be settling a delivery); AssertionError with both if they never agree."""
    deadline = time.monotonic() + WAIT
    while True:
        cli = await explain(live, job)
        await tab.goto(live.url + "job?" + str(httpx.QueryParams({"key": job.key})))
        items = tab.locator("ol.story > li")
        page = [("    " * int(await li.get_attribute("data-depth"))) + await li.inner_text() for li in await items.all()]
        if page == cli:
            assert await tab.locator("#events-read").count() == 0  # answered from the page's own index
            return cli
        if time.monotonic() > deadline:
            assert page == cli, live.log()
        await asyncio.sleep(1.0)
