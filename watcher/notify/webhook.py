"""The structured webhook: a documented, versioned, signed JSON document per notification.

Sits at the end of notify, called by the delivery stage through the
:class:`~watcher.notify.channel.Channel` contract for ``kind = "webhook"`` targets. Apprise's
``json://`` posts ``{version, title, message, type}``: a consumer must parse prose to learn a job
id. This posts :class:`WebhookPayload` instead — the incident (id, episode, state, rule,
severity), the transition, every job it covers with its fields, timestamps and links — whose
JSON Schema ships in ``watcher/notify/schema/notification-v1.schema.json``. Alertmanager's
webhook payload (version 4) is the anchor: one document per notification, ``status``
firing/resolved, everything a receiver needs without calling back. Unlike Alertmanager's, it is
signed::

    X-Watcher-Timestamp: 1764000000                    (Unix seconds, when it was sent)
    X-Watcher-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>

The secret is read from the environment variable the target names (``secret_env``). A receiver
recomputes the HMAC over the timestamp, a dot and the raw body bytes, compares in constant time,
and refuses a timestamp more than 5 minutes from its clock (a replay): :func:`verify_signature`.
``key`` (the notification's idempotency key) is the same on every retry of one notification.

Strings are the cloud's own (control characters removed from free text): escape them for
wherever you show them. Failures are classified like :func:`watcher.notify.retry.classify`: 429
(with Retry-After) and 5xx retry, other 4xx do not. One ``httpx.AsyncClient`` (keep-alive) is
shared by every webhook target. Imports httpx, msgspec and notify's channel/config/redact/summary.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Literal

import httpx
import msgspec

from watcher.events import Entities, Incident, IncidentJob, Notification, TaskCounts
from watcher.notify import summary
from watcher.notify.channel import Pacer, SendResult, classify_status, failed, parse_retry_after
from watcher.notify.config import NotifyTarget
from watcher.notify.redact import guard_apprise_logging, known_secrets, redact, secrets_of
from watcher.notify.render import strip_controls

log = logging.getLogger(__name__)

VERSION = "1"
SIGNATURE_HEADER = "X-Watcher-Signature"
TIMESTAMP_HEADER = "X-Watcher-Timestamp"
TOLERANCE = 300.0


class Link(msgspec.Struct, frozen=True):
    title: str
    url: str


class PayloadJob(msgspec.Struct, frozen=True, kw_only=True):
    """One job the incident covers, as its latest event showed it."""

    job_key: str
    source: str
    job_id: str
    parent_job_id: str | None
    job_type: str
    status: str
    phase: str
    prev_status: str | None
    error_code: str | None
    message: str | None
    entities: Entities
    counts: TaskCounts | None
    firing: bool
    first_seen: datetime
    updated: datetime
    link: str | None


class PayloadIncident(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    episode: int
    seq: int
    rule: str
    kind: str
    subject: str
    state: str  # firing | acknowledged | resolved
    status: Literal["firing", "resolved"]  # Alertmanager's two-valued status
    severity: str
    title: str
    tags: tuple[str, ...]
    source: str
    region: str
    project_id: str
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    snoozed_until: datetime | None
    snoozed_by: str | None
    escalated: int
    jobs_total: int


class PayloadAlert(msgspec.Struct, frozen=True, kw_only=True):
    """The alert behind this change (the rule's rendered title and body), when there is one."""

    key: str
    rule: str
    kind: str
    severity: str
    title: str
    body: str
    fired_at: datetime
    count: int
    repeat: int


class WebhookPayload(msgspec.Struct, frozen=True, kw_only=True):
    """The document, version 1 (see ``schema/notification-v1.schema.json`` and the README)."""

    version: str = VERSION
    key: str  # the notification's idempotency key: the same on every retry
    transition: str  # open | update | resolve | escalate | remind
    change: str
    created_at: datetime
    receiver: str  # the target id, masked
    incident: PayloadIncident
    alert: PayloadAlert | None
    jobs: tuple[PayloadJob, ...]
    truncated_jobs: int  # jobs the incident covers beyond those listed (a very large group)
    links: tuple[Link, ...]


def _text(value: str | None) -> str | None:
    return None if value is None else strip_controls(value)


def _job(job: IncidentJob, incident: Incident, links: Mapping[str, str]) -> PayloadJob:
    return PayloadJob(
        job_key=job.job_key, source=job.source, job_id=job.job_id, parent_job_id=job.parent_job_id,
        job_type=job.job_type, status=job.status, phase=job.phase, prev_status=job.prev_status,
        error_code=job.error_code, message=_text(job.message), entities=job.entities, counts=job.counts,
        firing=job.firing, first_seen=job.first_seen, updated=job.updated,
        link=summary.job_link(job, incident, links),
    )  # fmt: skip


def payload(notification: Notification, *, receiver: str, links: Mapping[str, str] = {}) -> WebhookPayload:
    """The document for ``notification`` as sent to ``receiver``. Pure."""
    inc = notification.incident
    alert = notification.alert or inc.last_alert
    return WebhookPayload(
        key=notification.key, transition=notification.kind, change=strip_controls(notification.change),
        created_at=notification.created_at, receiver=receiver,
        incident=PayloadIncident(
            id=inc.id, episode=inc.episode, seq=inc.seq, rule=inc.rule, kind=inc.kind, subject=inc.subject,
            state=inc.state, status="resolved" if inc.state == "resolved" else "firing", severity=inc.severity,
            title=strip_controls(inc.title), tags=inc.tags, source=inc.source, region=inc.region,
            project_id=inc.project_id, opened_at=inc.opened_at, updated_at=inc.updated_at,
            resolved_at=inc.resolved_at, acknowledged_by=inc.acknowledged_by, acknowledged_at=inc.acknowledged_at,
            snoozed_until=inc.snoozed_until, snoozed_by=inc.snoozed_by, escalated=inc.escalated,
            jobs_total=len(inc.jobs) + inc.more_jobs,
        ),
        alert=None if alert is None else PayloadAlert(
            key=alert.key, rule=alert.rule, kind=alert.kind, severity=alert.severity,
            title=strip_controls(alert.title), body=strip_controls(alert.body), fired_at=alert.fired_at,
            count=alert.count, repeat=alert.repeat,
        ),
        jobs=tuple(_job(j, inc, links) for j in inc.jobs), truncated_jobs=inc.more_jobs,
        links=tuple(Link(link.title, link.url) for link in summary.incident_links(inc, links)),
    )  # fmt: skip


_encoder = msgspec.json.Encoder()


def encode(document: WebhookPayload) -> bytes:
    return _encoder.encode(document)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: str, body: bytes, timestamp: str | None, sig: str | None, *,
                     now: float | None = None, tolerance: float = TOLERANCE) -> bool:
    """What a receiver does: the signature matches and the timestamp is within ``tolerance`` seconds."""
    if not timestamp or not sig:
        return False
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance and hmac.compare_digest(signature(secret, timestamp, body), sig)


class WebhookChannel:
    """One ``kind = "webhook"`` target."""

    editable = False

    def __init__(self, target: NotifyTarget, secret: str, http: httpx.AsyncClient, *, target_id: str = "",
                 links: Mapping[str, str] | None = None, tags: frozenset[str] | None = None,
                 timeout: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.url = target.url
        self.id = target_id or target.display()
        self.tags = tags if tags is not None else frozenset(target.tags)
        self.links = dict(links or {})
        self.timeout = timeout
        self.pacer = Pacer(target.pace_seconds())
        self._secret = secret
        self._http = http
        self._clock = clock
        guard_apprise_logging({secret} | secrets_of(None, target.url))  # httpx logs request URLs

    def __repr__(self) -> str:
        return f"WebhookChannel({self.id!r}, tags={sorted(self.tags)!r})"

    async def send(self, notification: Notification, ref: str | None) -> SendResult:
        body = encode(payload(notification, receiver=self.id, links=self.links))
        await self.pacer.wait()
        stamp = str(int(self._clock()))
        headers = {"Content-Type": "application/json", "User-Agent": f"watcher-webhook/{VERSION}",
                   TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: signature(self._secret, stamp, body),
                   "X-Watcher-Event": notification.kind}  # fmt: skip
        try:
            answer = await self._http.post(self.url, content=body, headers=headers, timeout=self.timeout)
        except httpx.TimeoutException as e:
            return failed(self.id, "TIMEOUT", "timeout", detail=f"{type(e).__name__}: no answer in {self.timeout:g}s")
        except httpx.TransportError as e:
            return failed(self.id, type(e).__name__, "connection", detail=_scrub(f"{type(e).__name__}: {e}"))
        except Exception as e:  # a bug, ours or httpx's; the delivery stage must go on
            log.warning("webhook send to %s raised %s", self.id, type(e).__name__)
            return failed(self.id, type(e).__name__, "error", detail=type(e).__name__)
        retryable, reason = classify_status(answer.status_code)
        if reason == "ok":
            return SendResult(target=self.id, ok=True)
        wait = parse_retry_after(answer.headers.get("Retry-After")) if answer.status_code in (429, 503) else None
        if wait is not None:
            self.pacer.hold("", wait)
        excerpt = " ".join(strip_controls(answer.text[:120]).split())
        return failed(self.id, f"HTTP_{answer.status_code}", reason, retryable=retryable, retry_after=wait,
                      detail=_scrub(f"HTTP {answer.status_code}" + (f": {excerpt}" if excerpt else "")))

    async def close(self) -> None:
        """The shared client is closed by its owner."""


def _scrub(text: str) -> str:
    return redact(text, known_secrets())[:300]
