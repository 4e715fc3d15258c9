"""The one HTTP client every source calls Huawei Cloud through: signed GETs with retries.

A request goes out the way the SDK sends it: the query in canonical (sorted) order, the
SDK's headers, ``SDK-HMAC-SHA256`` over them (see :mod:`watcher.cloud.signer`). Throttling
(429), 5xx and transport errors are retried within :class:`RetryPolicy`, re-signed each
time; everything else becomes a :mod:`watcher.errors` exception at once. The answer is
the raw body: sources decode it into their own Structs.

Concurrency is bounded by one semaphore across all projects and regions. A slot is held
only while a request is in flight, never during a backoff wait.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from urllib.parse import quote

import httpx

from watcher.cloud.credentials import Credentials
from watcher.cloud.endpoints import host_of, resolve_endpoint
from watcher.cloud.failures import classify, clip, describe, parse_error_body
from watcher.cloud.retry import RetryPolicy, parse_retry_after
from watcher.cloud.signer import canonical_query
from watcher.errors import CloudError, ThrottledError, TransportError

__all__ = ["CloudClient", "RetryPolicy", "quote_segment", "request_target"]

log = logging.getLogger("watcher.cloud")

THROTTLE_WARN_INTERVAL = 30.0  # seconds between two throttling warnings for one api

try:
    USER_AGENT = f"watcher/{version('watcher')}"
except PackageNotFoundError:  # running from a source tree that is not installed
    USER_AGENT = "watcher/0.0.0"

# Errors in how the request was built: retrying cannot help.
_NOT_RETRYABLE = (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.ProxyError)


def quote_segment(value: object) -> str:
    """Percent-encode one path segment as the SDK does (``quote(str(v), safe='')``: ``/`` → ``%2F``)."""
    return quote(str(value), safe="")


def request_target(path: str, params: Sequence[tuple[str, str]] = ()) -> str:
    """Path plus the query in canonical order, exactly as the SDK puts it on the wire."""
    query = canonical_query(params)
    return f"{path}?{query}" if query else path


class _Failure(Exception):
    """One failed attempt: what to raise if it is the last, and the server's wait hint."""

    def __init__(
        self,
        cls: type[CloudError],
        message: str,
        retryable: bool,
        retry_after: float | None = None,
        **fields: object,
    ) -> None:
        super().__init__(message)
        self.cls, self.message, self.retryable, self.retry_after = cls, message, retryable, retry_after
        self.fields = fields

    def error(self, note: str = "") -> CloudError:
        return self.cls(self.message + note, **self.fields)  # type: ignore[arg-type]


class CloudClient:
    """Signed, retried, concurrency-bounded GETs against Workspace, Workspace App and EVS.

    ``requests`` counts every HTTP request sent (retries included) and ``requests_by_api``
    splits it per ``api`` label: the cost of polling. ``on_response(api, code)``, if set, is
    called once per attempt with the HTTP status code as text, or ``"error"`` when no answer
    came (a metrics hook: both values are safe as labels).
    """

    def __init__(
        self,
        *,
        credentials: Credentials,
        endpoints: Mapping[str, str] | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        max_concurrency: int = 8,
        transport: httpx.AsyncBaseTransport | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.credentials = credentials
        self.endpoints = dict(endpoints or {})
        self.retry = retry or RetryPolicy()
        self.max_concurrency = max_concurrency
        self.requests = 0
        self.requests_by_api: dict[str, int] = {}
        self.on_response: Callable[[str, str], None] | None = None
        self._environ = environ  # None: read os.environ at call time, as the SDK does
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._rng = random.Random()
        self._last_throttle_warning: dict[str, float] = {}
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=connect_timeout, read=read_timeout, write=read_timeout, pool=None),
            limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency),
            follow_redirects=False,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"CloudClient(credentials={self.credentials!r}, endpoints={self.endpoints!r})"

    async def __aenter__(self) -> CloudClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def base_url(self, service: str, region: str) -> str:
        return resolve_endpoint(service, region, self.endpoints, self._environ)

    async def get(
        self,
        *,
        api: str,
        service: str,
        region: str,
        project_id: str,
        path: str,
        params: Sequence[tuple[str, str]] = (),
    ) -> bytes:
        """GET ``path`` (segments already encoded with :func:`quote_segment`) and return the body.

        ``api`` labels the call in errors, logs and counters (e.g. ``workspace.list_sub_jobs``).
        Raises AuthError, ThrottledError, JobNotFound, ServerError, TransportError or
        CloudError; none of them carries a credential.
        """
        if not path.startswith("/") or "?" in path or "#" in path:
            raise ValueError(f"path must be an absolute path without query: {path!r}")
        base = self.base_url(service, region)
        pairs = [(str(k), str(v)) for k, v in params]
        policy = self.retry
        start = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._semaphore:
                    return await self._attempt(api, service, project_id, base, path, pairs)
            except _Failure as failure:
                if not failure.retryable:
                    raise failure.error() from failure.__cause__
                delay = failure.retry_after
                if delay is None:
                    delay = policy.backoff(attempt, self._rng)
                elapsed = time.monotonic() - start
                if not policy.allows(attempt, elapsed, delay):
                    note = f" (gave up after {attempt} attempt(s) in {elapsed:.1f}s)"
                    raise failure.error(note) from failure.__cause__
                self._log_retry(failure.error(), attempt, delay)
                await asyncio.sleep(delay)

    async def _attempt(
        self, api: str, service: str, project_id: str, base: str, path: str, pairs: list[tuple[str, str]]
    ) -> bytes:
        headers = {
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
            "X-Project-Id": project_id,
            "Host": host_of(base),
        }
        # Signed per attempt, so every retry carries a fresh X-Sdk-Date.
        headers = self.credentials.authorize("GET", path, pairs, headers)
        self.requests += 1
        self.requests_by_api[api] = self.requests_by_api.get(api, 0) + 1
        try:
            response = await self._http.get(base + request_target(path, pairs), headers=headers)
        except httpx.HTTPError as e:
            if self.on_response is not None:
                self.on_response(api, "error")
            # httpx messages name the URL or the socket error, never a header.
            what = self.credentials.redact(clip(str(e) or type(e).__name__))
            retryable = isinstance(e, httpx.TransportError) and not isinstance(e, _NOT_RETRYABLE)
            message = f"{type(e).__name__} calling {base}: {what}"
            raise _Failure(TransportError, message, retryable, api=api, project_id=project_id) from e
        if self.on_response is not None:
            self.on_response(api, str(response.status_code))
        if 200 <= response.status_code < 300:
            return response.content
        raise self._failure(api, service, project_id, response)

    def _failure(self, api: str, service: str, project_id: str, response: httpx.Response) -> _Failure:
        status = response.status_code
        text = response.content.decode("utf-8", errors="replace")
        body = parse_error_body(status, text)
        cls, retryable = classify(status, service, body.code)
        if 300 <= status < 400:
            message = f"unexpected redirect to {clip(response.headers.get('Location', ''), 120)}"
        else:
            message = describe(cls, body.message)
        retry_after = parse_retry_after(response.headers.get("Retry-After")) if retryable else None
        return _Failure(
            cls,
            self.credentials.redact(message),
            retryable,
            retry_after,
            api=api,
            project_id=project_id,
            status=status,
            error_code=self.credentials.redact(clip(body.code, 64)),
            request_id=response.headers.get("X-Request-Id") or None,
        )

    def _log_retry(self, error: CloudError, attempt: int, delay: float) -> None:
        log.debug(
            "retrying api=%s project=%s after attempt %d/%d in %.2fs: %s",
            error.api,
            error.project_id,
            attempt,
            self.retry.max_attempts,
            delay,
            error.reason,
        )
        if isinstance(error, ThrottledError):
            now = time.monotonic()
            last = self._last_throttle_warning.get(error.api)
            if last is None or now - last >= THROTTLE_WARN_INTERVAL:
                self._last_throttle_warning[error.api] = now
                log.warning(
                    "throttled: api=%s project=%s code=%s; backing off %.1fs (at most one warning per %ds per api)",
                    error.api,
                    error.project_id,
                    error.error_code,
                    delay,
                    int(THROTTLE_WARN_INTERVAL),
                )
