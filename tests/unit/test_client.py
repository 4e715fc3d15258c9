"""CloudClient against a real aiohttp server on 127.0.0.1 that scripts its answers.

Also the pure parts the client is built from: credentials, retry math, error parsing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiohttp import web

from watcher.cloud import signer
from watcher.cloud.client import USER_AGENT, CloudClient, RetryPolicy, quote_segment, request_target
from watcher.cloud.credentials import Credentials
from watcher.cloud.failures import classify, clip, parse_error_body
from watcher.cloud.retry import parse_retry_after
from watcher.errors import (
    AuthError,
    CloudError,
    ConfigError,
    JobNotFound,
    ServerError,
    ThrottledError,
    TransportError,
)

AK = "AKSECRET-TEST-1234567890"
SK = "SKSECRET-TEST-abcdefghijklmnop"
TOKEN = "TOKSECRET-TEST-MIIxyz"
STS = "STSSECRET-TEST-qwerty"
SECRETS = (AK, SK, TOKEN, STS)
PID = "0bec1234567890abcdef1234567890ab"
API = "workspace.list_sub_jobs"
FAST = RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.02, budget_seconds=5)

Step = tuple[int, Any, dict[str, str]] | Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    at: float
    path: str
    query_string: str
    pairs: list[tuple[str, str]]
    headers: dict[str, str]


@dataclass
class Stub:
    """Answers with ``script`` in order (the last step repeats) and records every request."""

    script: list[Step] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(
            Seen(
                at=time.monotonic(),
                path=request.rel_url.raw_path,
                query_string=request.rel_url.raw_query_string,
                pairs=list(request.query.items()),
                headers=dict(request.headers),
            )
        )
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if callable(step):
            return await step(request)
        status, body, headers = step
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return web.Response(status=status, body=data, headers=headers, content_type="application/json")

    def verified(self, seen: Seen, secrets: dict[str, str] | None = None) -> bool:
        return signer.verify(secrets or {AK: SK}, "GET", seen.path, seen.pairs, seen.headers)


@pytest.fixture
async def stub():
    s = Stub()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", s.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    s.url = f"http://{host}:{port}"
    yield s
    await runner.cleanup()


@pytest.fixture
async def make_client():
    clients: list[CloudClient] = []

    def make(url: str, **kw: Any) -> CloudClient:
        kw.setdefault("credentials", Credentials(ak=AK, sk=SK))
        kw.setdefault("retry", FAST)
        kw.setdefault("endpoints", {"workspace": url, "workspaceapp": url, "evs": url})
        kw.setdefault("environ", {})
        c = CloudClient(**kw)
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.aclose()


def get(client: CloudClient, service: str = "workspace", path: str = f"/v2/{PID}/workspace-sub-jobs", **kw: Any):
    return client.get(api=kw.pop("api", API), service=service, region="cn-north-4", project_id=PID, path=path, **kw)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text
            assert secret[:12] not in text


# --- the happy path: what goes on the wire ----------------------------------------------------


async def test_signed_request_with_canonical_query(stub, make_client):
    stub.script = [(200, {"total_count": 0, "jobs": []}, {})]
    client = make_client(stub.url)
    params = [
        ("status", "RUNNING"),
        ("status", "FAILED"),
        ("job_type", "createDesktops"),
        ("t", "2021-10-01T12:00:00Z"),
    ]
    body = await get(client, params=params)

    assert json.loads(body) == {"total_count": 0, "jobs": []}
    (seen,) = stub.seen
    assert seen.path == f"/v2/{PID}/workspace-sub-jobs"
    assert seen.query_string == "job_type=createDesktops&status=FAILED&status=RUNNING&t=2021-10-01T12%3A00%3A00Z"
    assert stub.verified(seen)
    h = seen.headers
    assert h["Content-Type"] == "application/json"
    assert h["User-Agent"] == USER_AGENT and USER_AGENT.startswith("watcher/")
    assert h["X-Project-Id"] == PID
    assert h["Host"] == stub.url.removeprefix("http://")
    assert "SignedHeaders=content-type;host;user-agent;x-project-id;x-sdk-date," in h["Authorization"]
    assert "X-Auth-Token" not in h
    assert client.requests == 1 and client.requests_by_api == {API: 1}


async def test_encoded_path_segment_reaches_server_and_verifies(stub, make_client):
    stub.script = [(200, {"status": "SUCCESS"}, {})]
    client = make_client(stub.url)
    await get(client, "evs", f"/v1/{PID}/jobs/{quote_segment('ff80/80 x')}", api="evs.show_job")
    (seen,) = stub.seen
    assert seen.path == f"/v1/{PID}/jobs/ff80%2F80%20x"
    assert seen.query_string == ""
    assert stub.verified(seen)


async def test_token_only_is_unsigned(stub, make_client):
    stub.script = [(200, {}, {})]
    await get(make_client(stub.url, credentials=Credentials(token=TOKEN)))
    (seen,) = stub.seen
    assert seen.headers["X-Auth-Token"] == TOKEN
    assert "Authorization" not in seen.headers


async def test_token_with_aksk_is_signed(stub, make_client):
    stub.script = [(200, {}, {})]
    await get(make_client(stub.url, credentials=Credentials(ak=AK, sk=SK, token=TOKEN, security_token=STS)))
    (seen,) = stub.seen
    assert seen.headers["X-Auth-Token"] == TOKEN and seen.headers["X-Security-Token"] == STS
    assert "x-auth-token;x-project-id;x-sdk-date;x-security-token" in seen.headers["Authorization"]
    assert stub.verified(seen)


async def test_env_endpoint_override(stub, make_client):
    stub.script = [(200, {}, {})]
    client = make_client("", endpoints={}, environ={"HUAWEICLOUD_SDK_REGION_EVS_CN_NORTH_4": stub.url})
    await get(client, "evs", f"/v1/{PID}/jobs/j-1")
    assert len(stub.seen) == 1


# --- retries ---------------------------------------------------------------------------------

THROTTLE_BODY = {"error_msg": "The throttling threshold has been reached", "error_code": "APIG.0308"}


async def test_429_honours_retry_after_and_resigns(stub, make_client):
    stub.script = [(429, THROTTLE_BODY, {"Retry-After": "1"}), (200, {"ok": 1}, {})]
    client = make_client(stub.url, retry=RetryPolicy(base_delay=0.01, max_delay=0.01, budget_seconds=10))
    assert json.loads(await get(client)) == {"ok": 1}
    first, second = stub.seen
    assert second.at - first.at >= 0.99
    assert first.headers["X-Sdk-Date"] < second.headers["X-Sdk-Date"]
    assert stub.verified(first) and stub.verified(second)
    assert client.requests == 2


async def test_429_storm_beyond_budget(stub, make_client, caplog):
    stub.script = [(429, THROTTLE_BODY, {"X-Request-Id": "req-429"})]
    policy = RetryPolicy(max_attempts=1000, base_delay=0.02, max_delay=0.05, budget_seconds=0.3)
    client = make_client(stub.url, retry=policy)
    caplog.set_level(logging.DEBUG, logger="watcher.cloud")
    start = time.monotonic()
    with pytest.raises(ThrottledError) as info:
        await get(client)
    assert time.monotonic() - start < 1.0
    err = info.value
    assert (err.status, err.error_code, err.request_id, err.reason) == (429, "APIG.0308", "req-429", "throttled")
    assert "gave up after" in str(err) and f"api={API}" in str(err)
    assert 2 <= len(stub.seen) == client.requests
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    debugs = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(warnings) == 1 and len(debugs) == len(stub.seen) - 1

    # A second storm on the same api within 30 s does not warn again.
    with pytest.raises(ThrottledError):
        await get(client)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


async def test_retry_after_beyond_budget_gives_up_at_once(stub, make_client):
    stub.script = [(429, THROTTLE_BODY, {"Retry-After": "120"})]
    with pytest.raises(ThrottledError):
        await get(make_client(stub.url, retry=RetryPolicy(budget_seconds=5)))
    assert len(stub.seen) == 1


async def test_max_attempts_bounds_requests(stub, make_client):
    stub.script = [(500, {"error_code": "WKS.00129901", "error_msg": "unavailable"}, {})]
    client = make_client(stub.url, retry=RetryPolicy(max_attempts=3, base_delay=0.01, budget_seconds=10))
    with pytest.raises(ServerError) as info:
        await get(client)
    assert len(stub.seen) == 3
    assert info.value.error_code == "WKS.00129901" and info.value.status == 500


async def test_503_then_200(stub, make_client):
    stub.script = [(503, b"Service Unavailable", {}), (200, {"ok": 1}, {})]
    assert json.loads(await get(make_client(stub.url))) == {"ok": 1}
    assert len(stub.seen) == 2


async def test_concurrency_bound(stub, make_client):
    in_flight = peak = 0

    async def slow(_: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return web.json_response({})

    stub.script = [slow]
    client = make_client(stub.url, max_concurrency=3)
    await asyncio.gather(*(get(client, api=f"a{i % 2}") for i in range(12)))
    assert peak == 3
    assert client.requests == 12 and client.requests_by_api == {"a0": 6, "a1": 6}


# --- errors that are not retried ------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_error_names_no_secret(stub, make_client, caplog, status):
    echo = f"Incorrect IAM authentication information: Get secretKey failed,ak:{AK},err:ak not exist; token {TOKEN}"
    stub.script = [(status, {"error_code": "APIG.0301", "error_msg": echo}, {"X-Request-Id": "rid-1"})]
    creds = Credentials(ak=AK, sk=SK, token=TOKEN, security_token=STS)
    client = make_client(stub.url, credentials=creds)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthError) as info:
        await get(client)
    err = info.value
    assert len(stub.seen) == 1
    assert "authentication failed" in str(err) and "HUAWEICLOUD_SDK_AK/SK" in str(err)
    assert f"api={API}" in str(err) and f"project={PID}" in str(err) and "request_id=rid-1" in str(err)
    assert_no_secret(str(err), repr(err), repr(client), repr(creds), str(creds), caplog.text)
    assert_no_secret(*(str(v) for v in vars(err).values()))


async def test_evs_common_0011_is_job_not_found(stub, make_client):
    stub.script = [(400, {"error": {"code": "Common.0011", "message": "query job fail."}}, {"X-Request-Id": "r"})]
    with pytest.raises(JobNotFound) as info:
        await get(make_client(stub.url), "evs", f"/v1/{PID}/jobs/nope", api="evs.show_job")
    assert info.value.error_code == "Common.0011" and info.value.request_id == "r"
    assert len(stub.seen) == 1


@pytest.mark.parametrize(
    "service,status,body,expected",
    [
        ("workspaceapp", 404, {"error_code": "WKS.0404", "error_msg": "job not exist"}, JobNotFound),
        ("workspace", 404, {"error_msg": "The API does not exist", "error_code": "APIG.0101"}, CloudError),
        ("workspace", 400, {"error": {"code": "Common.0011", "message": "x"}}, CloudError),
        ("evs", 400, {"error": {"code": "Common.0013", "message": "Invalid token"}}, CloudError),
        ("workspace", 405, b"not allowed", CloudError),
    ],
)
async def test_other_4xx(stub, make_client, service, status, body, expected):
    stub.script = [(status, body, {})]
    with pytest.raises(CloudError) as info:
        await get(make_client(stub.url), service)
    assert type(info.value) is expected
    assert len(stub.seen) == 1


async def test_server_text_is_capped(stub, make_client):
    stub.script = [(400, b"x" * 5000, {})]
    with pytest.raises(CloudError) as info:
        await get(make_client(stub.url))
    assert len(str(info.value)) < 500


# --- transport failures ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_connection_refused(make_client):
    url = f"http://127.0.0.1:{_free_port()}"
    client = make_client(url, retry=RetryPolicy(max_attempts=2, base_delay=0.01, budget_seconds=5))
    with pytest.raises(TransportError) as info:
        await get(client)
    assert client.requests == 2
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert "ConnectError" in str(info.value)


async def test_read_timeout(stub, make_client):
    async def hang(_: web.Request) -> web.Response:
        await asyncio.sleep(0.5)
        return web.json_response({})

    stub.script = [hang]
    client = make_client(stub.url, read_timeout=0.05, retry=RetryPolicy(max_attempts=2, base_delay=0.01))
    with pytest.raises(TransportError) as info:
        await get(client)
    assert "ReadTimeout" in str(info.value)
    assert len(stub.seen) == 2


async def test_transport_seam_and_context_manager():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"raw")

    async with CloudClient(
        credentials=Credentials(ak=AK, sk=SK), transport=httpx.MockTransport(handler), environ={}
    ) as client:
        assert await get(client, "workspaceapp", f"/v2/{PID}/job/j-1", api="appjob.show") == b"raw"
    assert client._http.is_closed
    assert str(seen[0].url) == f"https://appstream.cn-north-4.myhuaweicloud.com/v2/{PID}/job/j-1"
    assert seen[0].headers["Host"] == "appstream.cn-north-4.myhuaweicloud.com"


@pytest.mark.parametrize("path", ["relative", f"/v2/{PID}/x?a=1", "/x#frag"])
async def test_rejects_bad_path(make_client, path):
    with pytest.raises(ValueError):
        await get(make_client("http://127.0.0.1:1"), path=path)


# --- pure parts: credentials ------------------------------------------------------------------


def test_credentials_repr_masks_everything():
    creds = Credentials(ak=AK, sk=SK, token=TOKEN, security_token=STS)
    assert repr(creds) == "Credentials(ak=AKSE****, sk=****, security_token=****, token=****)"
    assert str(creds) == repr(creds)
    assert repr(Credentials(ak="AB", sk="x")) == "Credentials(ak=A****, sk=****)"
    assert repr(Credentials(token=TOKEN)) == "Credentials(token=****)"
    assert_no_secret(f"{creds}", f"{creds!r}", creds.redact(f"echo {AK} {SK} {TOKEN} {STS}"))
    with pytest.raises(AttributeError):
        creds.ak = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    "env,mode",
    [
        ({"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK}, "sign"),
        ({"HUAWEICLOUD_SDK_TOKEN": TOKEN}, "token"),
        ({"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK, "HUAWEICLOUD_SDK_TOKEN": TOKEN}, "sign+token"),
        ({"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK, "HUAWEICLOUD_SDK_SECURITY_TOKEN": STS}, "sign"),
        ({"HUAWEICLOUD_SDK_AK": " ", "HUAWEICLOUD_SDK_SK": "", "HUAWEICLOUD_SDK_TOKEN": TOKEN}, "token"),
    ],
)
def test_credentials_from_env(env, mode):
    creds = Credentials.from_env(env)
    assert creds.mode == mode
    assert creds.security_token == env.get("HUAWEICLOUD_SDK_SECURITY_TOKEN")


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"HUAWEICLOUD_SDK_AK": AK},
        {"HUAWEICLOUD_SDK_SK": SK, "HUAWEICLOUD_SDK_TOKEN": TOKEN},
        {"HUAWEICLOUD_SDK_SECURITY_TOKEN": STS, "HUAWEICLOUD_SDK_TOKEN": TOKEN},
    ],
)
def test_credentials_from_env_rejects(env):
    with pytest.raises(ConfigError) as info:
        Credentials.from_env(env)
    assert_no_secret(str(info.value))


def test_credentials_from_process_env(monkeypatch):
    monkeypatch.setenv("HUAWEICLOUD_SDK_TOKEN", TOKEN)
    monkeypatch.delenv("HUAWEICLOUD_SDK_AK", raising=False)
    monkeypatch.delenv("HUAWEICLOUD_SDK_SK", raising=False)
    assert Credentials.from_env().mode == "token"


def test_token_mode_headers():
    now = datetime(2026, 11, 23, 17, 4, 32, tzinfo=UTC)
    out = Credentials(token=TOKEN).authorize("GET", "/x", [], {"Host": "h"}, now=now)
    assert out == {"Host": "h", "X-Auth-Token": TOKEN, "X-Sdk-Date": "20261123T170432Z"}


# --- pure parts: retry math, error bodies, URLs ------------------------------------------------


@pytest.mark.parametrize(
    "value,expected",
    [
        (None, None),
        ("", None),
        ("2", 2.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("soon", None),
        ("nan", None),
        ("Mon, 23 Nov 2026 17:04:42 GMT", 10.0),
        ("Mon, 23 Nov 2026 17:04:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value, expected):
    now = datetime(2026, 11, 23, 17, 4, 32, tzinfo=UTC)
    assert parse_retry_after(value, now) == expected


@pytest.mark.parametrize("attempt,cap", [(1, 0.5), (2, 1.0), (3, 2.0), (7, 30.0), (30, 30.0)])
def test_backoff_full_jitter_within_cap(attempt, cap):
    policy = RetryPolicy()
    assert RetryPolicy(jitter="none").backoff(attempt) == cap
    delays = [policy.backoff(attempt) for _ in range(200)]
    assert all(0 <= d <= cap for d in delays) and max(delays) > cap / 2


def test_policy_allows():
    p = RetryPolicy(max_attempts=3, budget_seconds=10)
    assert p.allows(1, 0, 1) and p.allows(2, 8, 2)
    assert not p.allows(3, 0, 0) and not p.allows(1, 9, 2)


@pytest.mark.parametrize(
    "status,text,code,message",
    [
        (400, '{"error_code": "WKS.001", "error_msg": "bad"}', "WKS.001", "bad"),
        (400, '{"errorCode": "E1", "errorMsg": "camel"}', "E1", "camel"),
        (400, '{"code": "C1", "message": "plain"}', "C1", "plain"),
        (400, '{"error": {"code": "Common.0011", "message": "query job fail."}}', "Common.0011", "query job fail."),
        (400, '{"error_code": "X", "other": 1}', "400", '{"error_code": "X", "other": 1}'),
        (503, "Service Unavailable", "503", "Service Unavailable"),
        (500, "[1, 2]", "500", "[1, 2]"),
        (502, "", "502", ""),
    ],
)
def test_parse_error_body(status, text, code, message):
    assert parse_error_body(status, text) == (code, message)


@pytest.mark.parametrize(
    "status,service,code,cls,retry",
    [
        (401, "workspace", "APIG.0301", AuthError, False),
        (403, "evs", "403", AuthError, False),
        (429, "workspace", "APIG.0308", ThrottledError, True),
        (429, "workspace", "429", ThrottledError, True),
        (500, "workspace", "500", ServerError, True),
        (503, "evs", "503", ServerError, True),
        (404, "workspaceapp", "WKS.0404", JobNotFound, False),
        (404, "workspace", "APIG.0101", CloudError, False),
        (400, "evs", "Common.0011", JobNotFound, False),
        (400, "workspace", "Common.0011", CloudError, False),
        (400, "evs", "Common.0018", CloudError, False),
    ],
)
def test_classify(status, service, code, cls, retry):
    assert classify(status, service, code) == (cls, retry)


def test_clip():
    assert clip("a\n  b") == "a b"
    assert clip("x" * 400) == "x" * 300 + "…"


@pytest.mark.parametrize(
    "path,params,target",
    [
        ("/v1/p/jobs/j", [], "/v1/p/jobs/j"),
        ("/v2/p/x", [("b", "2"), ("a", "1")], "/v2/p/x?a=1&b=2"),
        ("/v2/p/x", [("status", "RUNNING"), ("status", "FAILED")], "/v2/p/x?status=FAILED&status=RUNNING"),
        ("/v2/p/x", [("q", "a b:c/d")], "/v2/p/x?q=a%20b%3Ac%2Fd"),
    ],
)
def test_request_target(path, params, target):
    assert request_target(path, params) == target


@pytest.mark.parametrize("value,quoted", [("j-1", "j-1"), ("a/b", "a%2Fb"), ("a b", "a%20b"), (42, "42")])
def test_quote_segment(value, quoted):
    assert quote_segment(value) == quoted
