"""SDK-HMAC-SHA256 request signing, as ``huaweicloudsdkcore.signer.Signer`` does it.

A pure flow: build the canonical request, hash it, HMAC it with the secret key. The
client signs with :func:`sign_headers`; the simulator checks with :func:`verify`, so both
sides share one canonicalization. Neither function logs or raises with the key in it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import quote, unquote

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

QueryPairs = Sequence[tuple[str, str]]


@functools.lru_cache(maxsize=16384)
def _enc(s: str) -> str:
    # Cached: the same keys, values and path segments are signed (and, in the simulator,
    # verified) on every poll, and quoting was a fifth of the signing cost.
    return quote(s, safe="~")


@functools.lru_cache(maxsize=16384)
def canonical_uri(path: str) -> str:
    uri = "/".join(_enc(seg) for seg in unquote(path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(pairs: QueryPairs) -> str:
    """Sorted by key then value, each side percent-encoded (repeated keys stay repeated)."""
    return "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(pairs))


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    # The SDK skips header names with "_" in them (proxies drop them).
    return sorted(k.lower() for k in headers if "_" not in k)


def canonical_request(
    method: str,
    path: str,
    pairs: QueryPairs,
    headers: Mapping[str, str],
    signed: Sequence[str],
    body: bytes = b"",
) -> str:
    lower = {k.lower(): str(v).strip() for k, v in headers.items()}
    canon_headers = "".join(f"{name}:{lower.get(name, '')}\n" for name in signed)
    payload = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    return "\n".join(
        [method.upper(), canonical_uri(path), canonical_query(pairs), canon_headers, ";".join(signed), payload]
    )


def string_to_sign(canonical: str, sdk_date: str) -> str:
    return f"{ALGORITHM}\n{sdk_date}\n{hashlib.sha256(canonical.encode()).hexdigest()}"


def signature(sk: str, to_sign: str) -> str:
    return hmac.new(sk.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


def sdk_date(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime(DATE_FORMAT)


def sign_headers(
    ak: str,
    sk: str,
    method: str,
    path: str,
    pairs: QueryPairs,
    headers: Mapping[str, str],
    body: bytes = b"",
    now: datetime | None = None,
) -> dict[str, str]:
    """Return ``headers`` plus X-Sdk-Date and Authorization.

    ``headers`` must already hold Host (netloc with port) and every header to be signed.
    """
    out = dict(headers)
    if not any(k.lower() == "x-sdk-date" for k in out):
        out["X-Sdk-Date"] = sdk_date(now)
    date = next(v for k, v in out.items() if k.lower() == "x-sdk-date")
    signed = signed_header_names(out)
    canon = canonical_request(method, path, pairs, out, signed, body)
    sig = signature(sk, string_to_sign(canon, date))
    out["Authorization"] = f"{ALGORITHM} Access={ak}, SignedHeaders={';'.join(signed)}, Signature={sig}"
    return out


class AuthorizationHeader:
    """The parsed ``Authorization`` header; ``None`` fields mean it was malformed."""

    def __init__(self, value: str) -> None:
        self.access: str | None = None
        self.signed: list[str] = []
        self.signature: str | None = None
        algo, _, rest = value.partition(" ")
        if algo != ALGORITHM:
            return
        for part in rest.split(","):
            key, _, val = part.strip().partition("=")
            if key == "Access":
                self.access = val
            elif key == "SignedHeaders":
                self.signed = [h for h in val.split(";") if h]
            elif key == "Signature":
                self.signature = val


def verify(
    secrets: Mapping[str, str],
    method: str,
    path: str,
    pairs: QueryPairs,
    headers: Mapping[str, str],
    body: bytes = b"",
) -> bool:
    """Check a request's Authorization header against the secret key of its AK."""
    lower = {k.lower(): v for k, v in headers.items()}
    auth = AuthorizationHeader(lower.get("authorization", ""))
    if not auth.access or not auth.signature or not auth.signed:
        return False
    sk = secrets.get(auth.access)
    date = lower.get("x-sdk-date")
    if sk is None or date is None or "host" not in auth.signed:
        return False
    canon = canonical_request(method, path, pairs, lower, auth.signed, body)
    expected = signature(sk, string_to_sign(canon, date))
    return hmac.compare_digest(expected, auth.signature)
