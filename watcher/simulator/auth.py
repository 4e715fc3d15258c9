"""API Gateway authentication, as the real gateway does it for these APIs.

A request passes with either credential (huawei-job-apis.md §2, §8):

* ``X-Auth-Token``: when the header is present it decides alone (IAM token
  authentication), so the SDK's invoker ``add_header("X-Auth-Token", ...)`` works even if
  the AK/SK it also signs with is unknown here;
* otherwise ``Authorization: SDK-HMAC-SHA256 ...``, checked with
  :func:`watcher.cloud.signer.verify` over the raw path, the query pairs as received
  (percent-decoded, repeated keys kept), the received headers and the body.

Anything else is 401 APIG.0301 with the gateway's wording. A pure function of the request
parts: no aiohttp here, so it is tested without a server.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl

from watcher.cloud.signer import AuthorizationHeader, verify
from watcher.simulator.settings import Settings

SIGNATURE_FAIL = "verify aksk signature fail"
TOKEN_FAIL = "decrypt token fail"
NO_CREDENTIALS = "x-auth-token not found"


def query_pairs(query_string: str) -> list[tuple[str, str]]:
    """The raw query as (key, value) pairs, percent-decoded, repeated keys kept."""
    return parse_qsl(query_string, keep_blank_values=True)


def check(
    settings: Settings,
    method: str,
    raw_path: str,
    query_string: str,
    headers: Mapping[str, str],
    body: bytes = b"",
) -> str | None:
    """None if the request is authenticated, else the APIG.0301 reason (after the prefix)."""
    lower = {k.lower(): v for k, v in headers.items()}
    token = lower.get("x-auth-token")
    if token is not None:
        return None if token == settings.token else TOKEN_FAIL
    auth = lower.get("authorization")
    if not auth:
        return NO_CREDENTIALS
    parsed = AuthorizationHeader(auth)
    if parsed.access is not None and parsed.access != settings.ak:
        return f"Get secretKey failed,ak:{parsed.access},err:ak not exist"
    ok = verify({settings.ak: settings.sk}, method, raw_path, query_pairs(query_string), headers, body)
    return None if ok else SIGNATURE_FAIL
