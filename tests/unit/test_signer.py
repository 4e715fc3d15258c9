"""Our signer against the official SDK signer: byte-identical Authorization and wire URI."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from types import SimpleNamespace
from urllib.parse import quote

import pytest

from watcher.cloud import signer
from watcher.cloud.client import request_target
from watcher.cloud.credentials import Credentials

AK = "AKSIGNTEST0123456789"
SK = "SKsignTestSecret0123456789abcdefghijkl"
PID = "ac234de25c6741d2b1273da49eea1b9e"
DATE = "20261123T170432Z"
UA = "watcher/0.1.0"


@pytest.fixture
def sdk(tmp_path, monkeypatch):
    """The SDK modules, imported with HOME pointing at a scratch dir.

    Importing ``huaweicloudsdkcore.auth`` writes ``$HOME/.huaweicloud/application_id``.
    """
    monkeypatch.setenv("HOME", str(tmp_path))
    return SimpleNamespace(
        SdkRequest=importlib.import_module("huaweicloudsdkcore.sdk_request").SdkRequest,
        Signer=importlib.import_module("huaweicloudsdkcore.signer.signer").Signer,
        BasicCredentials=importlib.import_module("huaweicloudsdkcore.auth.credentials").BasicCredentials,
    )


def _flatten(query: list[tuple[str, object]]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, value in query:
        for v in value if isinstance(value, list) else [value]:
            pairs.append((key, str(v).lower() if isinstance(v, bool) else str(v)))
    return pairs


def _headers(host: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": UA,
        "X-Project-Id": PID,
        "X-Sdk-Date": DATE,
        "Host": host,
        **(extra or {}),
    }


CASES = [
    pytest.param(f"/v2/{PID}/workspace-sub-jobs", [("job_id", "j-1")], {}, id="simple"),
    pytest.param(
        f"/v2/{PID}/workspace-sub-jobs",
        [("status", ["RUNNING", "FAILED"]), ("job_type", "createDesktops"), ("limit", 100), ("offset", 0)],
        {},
        id="repeated-status",
    ),
    pytest.param(
        f"/v2/{PID}/desktop-pools/script-execution-tasks/detail",
        [("task_id", ["t-2", "t-10", "t-1"]), ("desktop_pool_id", "pool-1")],
        {},
        id="task-id-list",
    ),
    pytest.param(
        f"/v2/{PID}/desktop-pools/script-execution-tasks/detail",
        [("execute_time_start", "2021-10-01T12:00:00Z"), ("name", "a b,c/d~e+f&g=h"), ("flag", True)],
        {},
        id="colon-space-reserved",
    ),
    pytest.param(f"/v2/{PID}/workspace-sub-jobs", [("name", "桌面 ü")], {}, id="non-ascii"),
    pytest.param(f"/v1/{PID}/jobs/" + quote("ff80/80 x:y", safe=""), [], {}, id="job-id-with-slash"),
    pytest.param(
        f"/v2/{PID}/workspace-sub-jobs",
        [("job_id", "j-1")],
        {"X-Auth-Token": "MIIFAKE-TOKEN"},
        id="x-auth-token",
    ),
    pytest.param(f"/v1/{PID}/job/j-1", [], {"X_Underscored": "skipped"}, id="underscore-header-unsigned"),
]


@pytest.mark.parametrize("host", ["workspace.cn-north-4.myhuaweicloud.com", "127.0.0.1:35969"])
@pytest.mark.parametrize("path,query,extra", CASES)
def test_authorization_matches_sdk(sdk, host, path, query, extra):
    request = sdk.SdkRequest(
        method="GET",
        schema="https",
        host=host,
        resource_path=path,
        query_params=[(k, list(v) if isinstance(v, list) else v) for k, v in query],
        header_params=_headers(host, extra),
        body="",
    )
    sdk.Signer(sdk.BasicCredentials(AK, SK)).sign(request)

    pairs = _flatten(query)
    ours = signer.sign_headers(AK, SK, "GET", path, pairs, _headers(host, extra))

    assert ours["Authorization"] == request.header_params["Authorization"]
    assert request_target(path, pairs) == request.uri
    assert signer.verify({AK: SK}, "GET", path, pairs, ours)


def test_sign_headers_stamps_given_time():
    now = datetime(2026, 11, 23, 17, 4, 32, tzinfo=UTC)
    out = signer.sign_headers(AK, SK, "GET", "/v1/x", [], {"Host": "h"}, now=now)
    assert out["X-Sdk-Date"] == DATE


@pytest.mark.parametrize("token", [None, "MIIFAKE-TOKEN"])
def test_credentials_authorize_matches_sdk_basic_credentials(sdk, token):
    """Our whole header flow (STS token, optional X-Auth-Token) vs BasicCredentials.sign_request."""
    host = "evs.cn-north-4.myhuaweicloud.com"
    path = f"/v1/{PID}/jobs/ff8080"
    base = {"Content-Type": "application/json", "User-Agent": UA, "X-Sdk-Date": DATE, "Host": host}
    sdk_headers = dict(base, **({"X-Auth-Token": token} if token else {}))
    request = sdk.SdkRequest(
        method="GET", schema="https", host=host, resource_path=path, query_params=[], header_params=sdk_headers
    )
    creds = sdk.BasicCredentials(AK, SK, PID).with_security_token("STS-SECURITY-TOKEN")
    creds.sign_request(request)

    ours = Credentials(ak=AK, sk=SK, token=token, security_token="STS-SECURITY-TOKEN").authorize(
        "GET", path, [], dict(base, **{"X-Project-Id": PID})
    )
    assert ours["Authorization"] == request.header_params["Authorization"]
    assert ours["X-Security-Token"] == "STS-SECURITY-TOKEN"
    if token:
        assert "x-auth-token" in ours["Authorization"]


# --- verify(): the simulator's side ---------------------------------------------------------

PATH = f"/v2/{PID}/workspace-sub-jobs"
PAIRS = [("status", "RUNNING"), ("status", "FAILED"), ("job_type", "createDesktops")]


@pytest.fixture
def signed() -> dict[str, str]:
    return signer.sign_headers(AK, SK, "GET", PATH, PAIRS, _headers("127.0.0.1:8080", {"X-Auth-Token": "tok"}))


def test_verify_accepts_ours_in_any_pair_order(signed):
    assert signer.verify({AK: SK}, "GET", PATH, list(reversed(PAIRS)), signed)
    lower = {k.lower(): v for k, v in signed.items()}
    assert signer.verify({AK: SK}, "GET", PATH, PAIRS, lower)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(
            lambda h, q, p: (h, [("status", "RUNNING"), ("job_type", "createDesktops")], p), id="query-dropped"
        ),
        pytest.param(lambda h, q, p: (h, [*q[:2], ("job_type", "deleteDesktops")], p), id="query-changed"),
        pytest.param(lambda h, q, p: ({**h, "X-Project-Id": "other"}, q, p), id="header-changed"),
        pytest.param(lambda h, q, p: ({**h, "X-Auth-Token": "stolen"}, q, p), id="token-swapped"),
        pytest.param(lambda h, q, p: ({**h, "X-Sdk-Date": "20261123T170433Z"}, q, p), id="date-changed"),
        pytest.param(lambda h, q, p: ({**h, "Host": "evil:8080"}, q, p), id="host-changed"),
        pytest.param(lambda h, q, p: (h, q, p.replace("workspace", "other")), id="path-changed"),
        pytest.param(lambda h, q, p: ({k: v for k, v in h.items() if k != "Authorization"}, q, p), id="no-auth"),
    ],
)
def test_verify_rejects_tampering(signed, tamper):
    headers, pairs, path = tamper(signed, PAIRS, PATH)
    assert not signer.verify({AK: SK}, "GET", path, pairs, headers)


def test_verify_rejects_wrong_sk_and_unknown_ak(signed):
    assert not signer.verify({AK: SK + "x"}, "GET", PATH, PAIRS, signed)
    assert not signer.verify({"OTHER": SK}, "GET", PATH, PAIRS, signed)


def test_verify_rejects_signature_without_host():
    headers = {"Content-Type": "application/json", "X-Sdk-Date": DATE}
    out = signer.sign_headers(AK, SK, "GET", PATH, PAIRS, headers)
    assert not signer.verify({AK: SK}, "GET", PATH, PAIRS, out)


def test_verify_rejects_malformed_authorization(signed):
    for value in ["", "Basic abc", "SDK-HMAC-SHA256 Access=, SignedHeaders=, Signature="]:
        assert not signer.verify({AK: SK}, "GET", PATH, PAIRS, {**signed, "Authorization": value})
