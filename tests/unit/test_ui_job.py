"""The Job page answers from the view's index of P.events; only a job it cannot answer for reads
the topic. Over real HTTP, with no broker: the connection points at a closed port, so a request
that went to the topic answers 502 and one answered from memory answers 200."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.integration import ui_deployment as U
from watcher import events as ev
from watcher.app.broker import free_port
from watcher.app.kafka import connection
from watcher.ui import StatusPage
from watcher.ui.present import stamp
from watcher.ui.view import TopicView


async def serve(tmp_path: Path, *, follow: bool = False) -> tuple[StatusPage, U.Deployment]:
    d = U.deployment("w", U.now())
    view = TopicView()
    for kind, rec in (("events", d.running), ("events", d.failing), ("alerts", d.alert),  # type: ignore[attr-defined]
                      ("incidents", d.incident), ("notifications", d.note)):  # fmt: skip
        view.apply(kind, b"", ev.encode(rec))
    view.apply("delivered", f"{d.note.key}|{U.TARGET}".encode(), b'"1"')
    view.apply("delivered", f"{d.note.key}|*".encode(), b'"1"')
    rules = tmp_path / "rules.yaml"
    rules.write_text(U.RULES)
    cfg = U.config(f"127.0.0.1:{free_port()}", "w", rules)
    page = StatusPage(cfg, connection(cfg), port=0, view=view, follow=follow)
    await page.start()
    return page, d


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, U.Deployment]]:
    page, d = await serve(tmp_path)
    async with httpx.AsyncClient(base_url=page.url.rstrip("/")) as client:
        yield client, d
    await page.stop()


def story(text: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", li)).strip() for li in re.findall(r'<li class="line[^>]*>(.*?)</li>', text, re.S)]


async def test_a_job_of_the_last_24h_is_told_from_memory(site: tuple[httpx.AsyncClient, U.Deployment]) -> None:
    client, d = site
    r = await client.get("/job", params={"key": d.job_key})
    assert r.status_code == 200, r.text
    assert story(r.text)[1:] == [
        f"{stamp(d.running.observed_at)}  RUNNING (first seen): no rule matches",  # type: ignore[attr-defined]
        f"{stamp(d.failing.observed_at)}  RUNNING → FAILED: desktop-failed",
        f"alert {d.alert.key} (desktop-failed, firing)",
        f"→ incident {d.incident.id}",
        f"incident {d.incident.id} (desktop-failed, firing, 1 job(s))",
        "open 1/1 to every target: d-7 FAILED",
        f"delivered to {U.TARGET}",
    ]
    assert 'id="events-read"' not in r.text


async def test_a_job_the_index_cannot_answer_for_is_read_from_the_topic(
    site: tuple[httpx.AsyncClient, U.Deployment],
) -> None:
    client, d = site
    older = d.job_key.replace("d-7", "d-1")  # no event in memory: older than 24 h, or unknown
    r = await client.get("/job", params={"key": older})
    assert r.status_code == 502 and "cannot look up w.events on 127.0.0.1:" in r.text


async def test_while_the_page_catches_up_the_job_page_reads_the_topic(tmp_path: Path) -> None:
    page, d = await serve(tmp_path, follow=True)  # following a broker that is not there: never caught up
    try:
        async with httpx.AsyncClient(base_url=page.url.rstrip("/")) as client:
            r = await client.get("/job", params={"key": d.job_key})
            assert r.status_code == 502 and "cannot look up w.events" in r.text
            assert "still reading the topics" in r.text
            assert not page.follower.caught_up.is_set()
    finally:
        await page.stop()
