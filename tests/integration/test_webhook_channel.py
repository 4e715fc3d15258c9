"""The webhook channel at a real HTTP sink: every document valid against the shipped schema and
signed verifiably; failures classified (429 with Retry-After, 5xx retry, 4xx do not); the secret
and the URL's token nowhere."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from importlib import resources

import httpx
import jsonschema
import msgspec
import pytest

from tests.fakes.incidents import incident, note
from watcher.notify.channel import Channel
from watcher.notify.config import NotifyTarget
from watcher.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookChannel, verify_signature
from watcher.sinks import WebhookSink, free_port

SECRET = "whsec-Zq8f0T1b2c3d4e5f6g7h"
TOKEN = "hookToken0123456789abcdef"
SCHEMA = json.loads(resources.files("watcher.notify").joinpath("schema/notification-v1.schema.json").read_text())


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    s = await WebhookSink().start()
    yield s
    await s.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def channel(url: str, http: httpx.AsyncClient) -> WebhookChannel:
    target = NotifyTarget(kind="webhook", url=url, secret_env="WATCHER_WEBHOOK_SECRET", tags=("ops",))
    return WebhookChannel(target, SECRET, http)


async def test_documents_are_valid_and_signed(sink: WebhookSink, http: httpx.AsyncClient,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    ch = channel(f"http://127.0.0.1:{sink.port}/hooks/{TOKEN}", http)
    assert isinstance(ch, Channel) and not ch.editable
    assert ch.id == f"http://127.0.0.1:{sink.port}/****/****"
    inc = incident(2)
    resolved = msgspec.structs.replace(inc, state="resolved", resolved_at=inc.opened_at + timedelta(minutes=9), seq=3)
    sends = [note("open", inc), note("update", inc, change="desk-02 FAILED", seq=2),
             note("resolve", resolved, change="all jobs recovered")]  # fmt: skip
    before = int(time.time())
    results = [await ch.send(n, None) for n in sends]
    assert [(r.ok, r.reason, r.ref, r.target) for r in results] == [(True, "ok", None, ch.id)] * 3
    assert [r.path for r in sink.received] == [f"/hooks/{TOKEN}"] * 3
    for got, sent in zip(sink.received, sends, strict=True):
        jsonschema.validate(got.body, SCHEMA, cls=jsonschema.Draft202012Validator)
        stamp = got.headers[TIMESTAMP_HEADER]
        assert before <= int(stamp) <= int(time.time())
        assert verify_signature(SECRET, got.raw, stamp, got.headers[SIGNATURE_HEADER])
        assert not verify_signature("another-secret", got.raw, stamp, got.headers[SIGNATURE_HEADER])
        assert got.headers["Content-Type"] == "application/json" and got.headers["X-Watcher-Event"] == sent.kind
        assert (got.body["key"], got.body["transition"]) == (sent.key, sent.kind)
    assert [b.body["incident"]["status"] for b in sink.received] == ["firing", "firing", "resolved"]
    assert sink.received[1].body["change"] == "desk-02 FAILED"
    assert "HTTP Request: POST **** \"HTTP/1.1 200 OK\"" in caplog.text  # httpx logs the URL: redacted whole
    assert TOKEN not in caplog.text + "".join(r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("status", "headers", "expected"), [
    (429, {"Retry-After": "7"}, ("http_429", True, 7.0)),
    (503, {"Retry-After": "2"}, ("http_5xx", True, 2.0)),
    (500, {}, ("http_5xx", True, None)),
    (400, {}, ("http_4xx", False, None)),
    (401, {}, ("http_4xx", False, None)),
    (404, {}, ("http_4xx", False, None)),
], ids=["429", "503-retry-after", "500", "400", "401", "404"])
async def test_failures_are_classified(sink: WebhookSink, http: httpx.AsyncClient, status: int,
                                       headers: dict[str, str], expected: tuple) -> None:  # fmt: skip
    sink.fail_next, sink.fail_status, sink.fail_headers = 1, status, headers
    ch = channel(f"http://127.0.0.1:{sink.port}/hook", http)
    r = await ch.send(note("open", incident()), None)
    assert (r.ok, r.status) == (False, f"HTTP_{status}")
    assert (r.reason, r.retryable, r.retry_after) == expected
    assert r.detail == f"HTTP {status}: sink failing on purpose"
    if r.retry_after:
        assert ch.pacer.ready_in() > r.retry_after - 1  # the next send to it waits Retry-After out
    assert sink.received == [] and sink.attempts == 1


async def test_refused_connection_is_retryable_and_nothing_secret_leaks(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ch = channel(f"http://127.0.0.1:{free_port()}/hooks/{TOKEN}", http)
    r = await ch.send(note("open", incident()), None)
    assert (r.ok, r.reason, r.retryable, r.status) == (False, "connection", True, "ConnectError")
    text = repr(ch) + repr(r) + caplog.text + repr(NotifyTarget(kind="webhook", url=f"https://h/{TOKEN}",
                                                               secret_env="X"))  # fmt: skip
    assert SECRET not in text and TOKEN not in text
