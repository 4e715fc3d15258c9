"""The status page in a real headless Chromium, over records published to a real broker.

The session's browser (tests/integration/browser.py) and one page server for the module, on
the session's event loop (Playwright's async API and aiohttp share it), the session's embedded
Tansu broker, a topic prefix of the module's own. The records are those
:mod:`tests.integration.ui_deployment` publishes the way the pipeline's stages do, hostile job
text included; tests/integration/test_ui_pipeline.py drives the page of a running pipeline.
"""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
import pytest_asyncio

from tests.integration import ui_deployment as U
from tests.integration.browser import needs_chromium, new_tab
from tests.kafka.legs import BrokerLeg
from watcher import events as ev
from watcher.app.kafka import KafkaConnection
from watcher.app.topics import read_topic
from watcher.rules.silence import Silence
from watcher.ui import StatusPage
from watcher.ui.present import stamp

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "ui-test-token-" + uuid.uuid4().hex[:8]

pytestmark = [pytest.mark.asyncio(loop_scope="session"), needs_chromium, pytest.mark.timeout(120)]


@dataclass
class Site:
    page: StatusPage
    url: str
    deployment: U.Deployment
    conn: KafkaConnection
    cfg_file: Path
    browser: Any

    async def tab(self) -> Any:
        return await new_tab(self.browser)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def site(tansu_broker: BrokerLeg, chromium: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    tmp = tmp_path_factory.mktemp("ui")
    rules = tmp / "rules.yaml"
    rules.write_text(U.RULES)
    prefix = f"ui{uuid.uuid4().hex[:8]}"
    cfg = U.config(tansu_broker.bootstrap, prefix, rules)
    cfg_file = tmp / "watcher.toml"
    cfg_file.write_text(U.config_toml(tansu_broker.bootstrap, prefix, rules))
    d = U.deployment(prefix, U.now())
    await U.publish(tansu_broker.conn, cfg, d)
    page = StatusPage(cfg, tansu_broker.conn, host="127.0.0.1", port=0, token=TOKEN)
    url = await page.start()
    try:
        await asyncio.wait_for(page.follower.caught_up.wait(), 60)
        yield Site(page, url, d, tansu_broker.conn, cfg_file, chromium)
    finally:
        await page.stop()


async def records(conn: KafkaConnection, topic: str, decode: Any) -> list[Any]:
    return await read_topic(conn, topic, lambda k, v: (k.decode() if k else None, decode(v)), idle=0.3)


async def test_overview_lists_every_target_with_a_fresh_poll_time(site: Site) -> None:
    tab = await site.tab()
    response = await tab.goto(site.url)
    assert response.status == 200
    rows = tab.locator("tr[data-target]")
    targets = site.page.config.targets()
    assert await rows.count() == len(targets) == 3
    published = dict(U.status_records(site.page.config, site.deployment.now))
    for t in targets:
        row = tab.locator(f'tr[data-target="{t.id}"]')
        status = published[t.id]
        assert isinstance(status, ev.TargetStatus)
        assert await row.locator("td.last-ok").inner_text() == stamp(status.last_ok)
        age = await row.locator("td.age").inner_text()
        assert re.fullmatch(r"\d+s ago", age) and int(age[:-5]) < 60, age  # fresh: seconds, not minutes
        cells = [c.strip() for c in await row.locator("td").all_inner_texts()]
        assert cells[:3] == [t.source, t.region, t.project_id]
        assert cells[3] == "ok" and cells[6:10] == [str(status.open_jobs), str(status.requests_10m), str(status.throttled_10m), "-"]
    assert await tab.locator("#workers tbody tr").count() == 1
    assert [c.strip() for c in await tab.locator("#eval-errors td").all_inner_texts()] == ["desktop-failed", "2"]
    await tab.context.close()


async def test_a_failing_jobs_incident_appears_under_incidents_live(site: Site) -> None:
    d = site.deployment
    tab = await site.tab()
    await tab.goto(site.url + "incidents")
    card = tab.locator(f'article[data-incident="{d.incident.id}"]')
    assert await card.count() == 1
    assert "firing" in await card.locator(".pill").all_inner_texts()
    assert await card.locator("td.text").inner_text() == U.HOSTILE
    notes = await card.locator("ul.notes > li").all_inner_texts()
    assert len(notes) == 1 and notes[0].startswith(f"delivered {d.note.key} open: d-7 FAILED")
    assert notes[0].splitlines()[-1].strip() == f"delivered {U.TARGET}"
    muted = await tab.locator("#incidents > table.grid tbody tr td").all_inner_texts()
    assert muted[1:] == ["silenced", "desktop-failed", "d-9", "silence s-file (planned rebuild)"]
    # A new failure, published while the page is open, shows up without a reload (Server-Sent Events).
    await tab.locator("#live-state", has_text="live").wait_for(timeout=10_000)  # the event stream is open
    second = msgspec.structs.replace(d.incident, id=d.incident.id.replace("d-7", "d-8"), title="desktop-failed: d-8",
                                     jobs=(msgspec.structs.replace(d.incident.jobs[0], job_id="d-8",
                                                                   job_key=d.job_key.replace("d-7", "d-8")),))  # fmt: skip
    await publish_incident(site, second)
    await tab.locator(f'article[data-incident="{second.id}"]').wait_for(timeout=20_000)
    assert await tab.locator("article.incident").count() == 2
    await tab.context.close()


async def publish_incident(site: Site, incident: ev.Incident) -> None:
    import json

    producer = site.conn.producer(acks="all")
    await producer.start()
    try:
        topic = f"{site.deployment.app_id}-{site.deployment.prefix}-incidents-changelog"
        await producer.send_and_wait(topic, json.dumps(ev.encode(incident).decode()).encode(),
                                     key=json.dumps(incident.id).encode())  # fmt: skip
    finally:
        await producer.stop()


async def test_silence_similar_needs_the_token_and_then_creates_a_silence(site: Site) -> None:
    d, prefix = site.deployment, site.deployment.prefix
    tab = await site.tab()
    card = f'article[data-incident="{d.incident.id}"]'
    # Without the token: a clear refusal, and nothing on the silences or actions topics.
    await tab.goto(site.url + "incidents")
    async with tab.expect_navigation():
        await tab.locator(card).get_by_role("button", name="Silence similar").click()
    assert await tab.locator("#refused").inner_text() == (
        "a valid token (WATCHER_UI_TOKEN) is needed for this action: nothing was changed")
    assert await records(site.conn, f"{prefix}.silences", lambda v: v) == []
    assert await records(site.conn, f"{prefix}.actions", lambda v: v) == []
    # With it: one silence for this rule and job type, by the named person, and the action naming it.
    await tab.goto(site.url + "incidents")
    await tab.fill("#act-token", TOKEN)
    await tab.fill("#act-by", "ana")
    await tab.locator(card).locator("select[name=hours]").select_option("4")
    async with tab.expect_navigation():
        await tab.locator(card).get_by_role("button", name="Silence similar").click()
    assert tab.url.startswith(site.url + "incidents?done=")
    silences = await records(site.conn, f"{prefix}.silences", msgspec.json.Decoder(Silence).decode)
    assert len(silences) == 1
    key, silence = silences[0]
    assert key == silence.id and silence.match == 'rule == "desktop-failed" && job_type == "createDesktops"'
    assert silence.created_by == "ana" and silence.ends - silence.starts == timedelta(hours=4)
    assert await tab.locator(".done").inner_text() == (
        f"silence {silence.id} created: {silence.match} until {stamp(silence.ends)}")
    actions = await records(site.conn, f"{prefix}.actions", ev.decode)
    assert [(k, a.kind, a.by, a.via, a.silence_id, a.until) for k, a in actions] == [
        (d.incident.id, "silence", "ana", "ui", silence.id, silence.ends)]
    # The page's own view follows the topic: the silence is listed as active.
    await tab.goto(site.url + "silences")
    await tab.locator(f'#silence-lists tr[data-silence="{silence.id}"]').wait_for(timeout=20_000)
    await tab.fill("#match", 'rule == "desktop-failed"')
    await tab.locator("#preview[data-count]").wait_for(timeout=10_000)
    assert await tab.locator("#preview").inner_text() == "would match 1 alert of the last 24 h"
    await tab.context.close()


async def test_hostile_job_text_renders_inert(site: Site) -> None:
    d = site.deployment
    tab = await site.tab()
    pages = [("incidents", ""), ("job", f"?key={d.job_key}"), ("search", "?q=channel")]
    for name, query in pages:
        response = await tab.goto(site.url + name + query)
        headers = await response.all_headers()
        assert headers["content-security-policy"].startswith("default-src 'self'; script-src 'self';")
        scripts = await tab.evaluate("Array.from(document.scripts).map(s => s.getAttribute('src'))")
        assert scripts == ["/static/ui.js"], (name, scripts)
        html = await tab.content()
        assert "<script>alert(1)</script>" not in html, name
        assert U.HOSTILE in await tab.inner_text("body"), name  # shown, as text
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &lt;!channel&gt; {{7*7}}" in html, name
    assert await tab.locator("#results td.text").first.inner_text() == f"desktop-failed: {U.HOSTILE}"
    await tab.goto(site.url + f"job?key={d.job_key}")
    assert await tab.locator("#job-message").inner_text() == U.HOSTILE
    assert tab.dialogs == []
    await tab.context.close()


async def test_the_job_page_tells_the_same_story_as_watcher_explain(site: Site) -> None:
    d = site.deployment
    done = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "watcher.cli", "explain", d.job_key, "--config", str(site.cfg_file), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)  # fmt: skip
    out, err = await asyncio.wait_for(done.communicate(), 60)
    assert done.returncode == 0, err.decode()
    cli = out.decode().rstrip("\n").splitlines()
    tab = await site.tab()
    await tab.goto(site.url + f"job?key={d.job_key}")
    items = tab.locator("ol.story > li")
    page = [("    " * int(await li.get_attribute("data-depth"))) + await li.inner_text() for li in await items.all()]
    assert page == cli
    assert cli[1:] == [
        f"{stamp(d.running.observed_at)}  RUNNING (first seen): no rule matches",  # type: ignore[attr-defined]
        f"{stamp(d.failing.observed_at)}  RUNNING → FAILED: desktop-failed",
        f"alert {d.alert.key} (desktop-failed, firing)",
        f"    → incident {d.incident.id}",
        f"incident {d.incident.id} (desktop-failed, firing, 1 job(s))",
        "    open 1/1 to every target: d-7 FAILED",
        f"        delivered to {U.TARGET}",
    ]
    await tab.context.close()


async def test_acknowledge_and_a_silence_created_then_expired_on_the_page(site: Site) -> None:
    d, prefix = site.deployment, site.deployment.prefix
    tab = await site.tab()
    await tab.goto(site.url + "incidents")
    await tab.fill("#act-token", TOKEN)
    async with tab.expect_navigation():
        await tab.locator(f'article[data-incident="{d.incident.id}"]').get_by_role("button", name="Acknowledge").click()
    assert await tab.locator(".done").inner_text() == f"acknowledged {d.incident.id}"
    actions = await records(site.conn, f"{prefix}.actions", ev.decode)
    assert [(k, a.kind, a.by, a.via) for k, a in actions][-1] == (d.incident.id, "ack", "ui", "ui")
    # A silence typed on the Silences page, then expired there: two records of one id on the topic.
    await tab.goto(site.url + "silences")
    await tab.fill("#act-token", TOKEN)
    await tab.fill("#match", 'project_id == "nobody"')
    await tab.fill("input[name=comment]", "<b>maintenance</b>")
    async with tab.expect_navigation():
        await tab.get_by_role("button", name="Create silence").click()
    decode = msgspec.json.Decoder(Silence).decode
    made = [s for _, s in await records(site.conn, f"{prefix}.silences", decode) if s.match == 'project_id == "nobody"']
    assert len(made) == 1 and made[0].comment == "<b>maintenance</b>" and made[0].ends - made[0].starts == timedelta(hours=2)
    row = tab.locator(f'tr[data-silence="{made[0].id}"]')
    await row.wait_for(timeout=20_000)
    assert await row.locator("td.text").nth(1).inner_text() == "<b>maintenance</b>"
    await tab.fill("#act-token", TOKEN)
    async with tab.expect_navigation():
        await row.get_by_role("button", name="Expire").click()
    assert await tab.locator(".done").inner_text() == f"silence {made[0].id} expired"
    again = [s for _, s in await records(site.conn, f"{prefix}.silences", decode) if s.id == made[0].id]
    assert len(again) == 2 and again[1].ends is not None and again[1].ends <= datetime.now(UTC)
    await tab.context.close()
