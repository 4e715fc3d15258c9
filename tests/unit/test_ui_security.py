"""The status page's guards over real HTTP: token, CSRF, origin, headers. No broker: the config
points at a closed port, so a request that got past the guards would fail with 502, not 403."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from tests.integration import ui_deployment as U
from watcher import events as ev
from watcher.app.broker import free_port
from watcher.app.kafka import connection
from watcher.ui import StatusPage
from watcher.ui.security import CSP, TOKEN_ENV, Guard
from watcher.ui.view import TopicView

TOKEN = "s3cret-token-value"


async def serve(token: str) -> StatusPage:
    d = U.deployment("w", datetime.now(UTC))
    view = TopicView()
    view.apply("incidents", d.incident.id.encode(), ev.encode(d.incident))
    cfg = U.config(f"127.0.0.1:{free_port()}", "w", U.__file__)  # type: ignore[arg-type]
    page = StatusPage(cfg, connection(cfg), port=0, token=token, view=view, follow=False)
    await page.start()
    return page


@pytest.fixture
async def site() -> AsyncIterator[tuple[StatusPage, httpx.AsyncClient]]:
    page = await serve(TOKEN)
    async with httpx.AsyncClient(base_url=page.url.rstrip("/")) as client:
        yield page, client
    await page.stop()


async def form_of(client: httpx.AsyncClient) -> dict[str, str]:
    """The CSRF field of the incidents page, as a browser that loaded it would send it."""
    page = (await client.get("/incidents")).text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert csrf is not None
    incident = re.search(r'name="incident" value="([^"]+)"', page)
    assert incident is not None
    return {"csrf": csrf.group(1), "incident": html.unescape(incident.group(1)), "do": "ack"}


async def test_every_page_carries_the_strict_headers_and_a_csrf_cookie(site: tuple[StatusPage, httpx.AsyncClient]) -> None:
    _, client = site
    for path in ("/", "/incidents", "/silences", "/search?q=x", "/job", "/no-such-page"):
        r = await client.get(path)
        assert r.headers["content-security-policy"] == CSP, path
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    assert "'unsafe-inline'" not in CSP and "default-src 'self'" in CSP
    assert client.cookies.get("watcher_ui")
    cookie = (await httpx.AsyncClient().get(site[0].url)).headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


@pytest.mark.parametrize(("change", "reason"), [
    ({"csrf": ""}, "the form's CSRF token is missing or stale"),
    ({"csrf": "0" * 64}, "the form's CSRF token is missing or stale"),
    ({}, "a valid token (WATCHER_UI_TOKEN) is needed for this action"),
    ({"token": "wrong"}, "a valid token (WATCHER_UI_TOKEN) is needed for this action"),
])  # fmt: skip
async def test_a_post_without_a_valid_csrf_field_or_token_is_refused(
    site: tuple[StatusPage, httpx.AsyncClient], change: dict[str, str], reason: str
) -> None:
    _, client = site
    form = {**await form_of(client), **change}
    r = await client.post("/act", data=form)
    assert r.status_code == 403
    assert f"{reason}" in html.unescape(r.text) and "nothing was changed" in r.text
    assert TOKEN not in r.text


async def test_the_guards_passed_the_action_runs(site: tuple[StatusPage, httpx.AsyncClient]) -> None:
    _, client = site
    r = await client.post("/act", data={**await form_of(client), "token": TOKEN})
    assert r.status_code == 502 and "cannot" in r.text  # it tried the (closed) broker: past both guards
    r = await client.post("/act", data=await form_of(client), headers={"X-Watcher-Token": TOKEN})
    assert r.status_code == 502


async def test_a_post_from_another_origin_is_refused(site: tuple[StatusPage, httpx.AsyncClient]) -> None:
    _, client = site
    r = await client.post("/act", data={**await form_of(client), "token": TOKEN}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "another site" in r.text


async def test_without_the_token_set_the_page_is_read_only() -> None:
    page = await serve("")
    try:
        async with httpx.AsyncClient(base_url=page.url.rstrip("/")) as client:
            assert "read-only: WATCHER_UI_TOKEN is not set" in (await client.get("/incidents")).text
            r = await client.post("/act", data={**await form_of(client), "token": ""})
            assert r.status_code == 403 and "read-only" in r.text
    finally:
        await page.stop()


async def test_post_bodies_are_capped(site: tuple[StatusPage, httpx.AsyncClient]) -> None:
    _, client = site
    r = await client.post("/silences", data={**await form_of(client), "token": TOKEN, "match": "x" * 100_000})
    assert r.status_code == 413


def test_the_token_never_shows_in_a_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    g = Guard()
    assert g.writable and TOKEN not in repr(g) and repr(g) == "Guard(token=set)"
    monkeypatch.delenv(TOKEN_ENV)
    assert not Guard().writable
