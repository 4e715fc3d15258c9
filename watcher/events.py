"""The contract on every Kafka topic: job status-change events, alerts, dead letters.

Sources produce :class:`JobEvent`; rules turn events into :class:`Alert`; the notifier
delivers alerts and parks the ones it cannot deliver as :class:`DeadLetter`. Every
struct is frozen, carries a schema version and is tagged, so one decoder can tell
the kinds apart and an old reader fails loudly on a newer schema.

This module imports only msgspec and the standard library.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

import msgspec

SCHEMA_VERSION = 1

#: Normalized lifecycle phase shared by every API's own status vocabulary.
Phase = Literal["pending", "running", "succeeded", "failed", "other"]

#: Phases after which a job does not change any more.
TERMINAL_PHASES: frozenset[str] = frozenset({"succeeded", "failed"})

#: Source names, as used in config, rules (`evs: FAIL *`) and job keys.
SOURCES: tuple[str, ...] = ("workspace", "workspaceapp", "appjob", "script", "evs")

#: What happened to the job between two observations.
Change = Literal["appeared", "changed", "vanished"]


class Entities(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a job acts on; each API fills the fields it knows, the rest stay None."""

    desktop_id: str | None = None
    desktop_name: str | None = None
    user_name: str | None = None
    product_id: str | None = None
    ip_address: str | None = None
    desktop_pool_id: str | None = None
    desktop_pool_name: str | None = None
    volume_id: str | None = None
    volume_name: str | None = None
    volume_type: str | None = None
    size_gb: int | None = None
    resource_id: str | None = None
    resource_name: str | None = None
    scripts: tuple[str, ...] = ()


class TaskCounts(msgspec.Struct, frozen=True, kw_only=True):
    """Per-desktop outcome counters of a desktop-pool script task."""

    success: int = 0
    failed: int = 0
    skipped: int = 0


class JobEvent(msgspec.Struct, frozen=True, kw_only=True, tag="job", omit_defaults=True):
    """One observed change of one job's status.

    ``status`` is the API's own word (``FAIL``, ``FINISH``, ``"0"`` for the integer App job
    status); ``phase`` is the normalized one rules usually match on.
    """

    schema: int = SCHEMA_VERSION
    source: str
    region: str
    project_id: str
    job_key: str
    job_id: str
    parent_job_id: str | None = None
    job_type: str
    status: str
    phase: Phase
    prev_status: str | None = None
    prev_phase: Phase | None = None
    change: Change = "changed"
    begin_time: datetime | None = None
    end_time: datetime | None = None
    error_code: str | None = None
    message: str | None = None
    entities: Entities = Entities()
    counts: TaskCounts | None = None
    observed_at: datetime
    target: str = ""

    @property
    def event_id(self) -> str:
        """Deterministic id of this transition: the same change seen twice has the same id."""
        return transition_id(self.job_key, self.prev_status, self.status, self.change)

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES


def job_key(source: str, region: str, project_id: str, job_id: str) -> str:
    """The stable key of a job: it keys the Kafka record, so a job's events stay in order."""
    return f"{source}/{region}/{project_id}/{job_id}"


def transition_id(job_key: str, prev_status: str | None, status: str, change: str) -> str:
    raw = f"{job_key}\x00{prev_status or ''}\x00{status}\x00{change}".encode()
    return hashlib.sha256(raw).hexdigest()[:24]


Severity = Literal["critical", "error", "warning", "info"]
AlertKind = Literal["firing", "resolved"]


class Alert(msgspec.Struct, frozen=True, kw_only=True, tag="alert", omit_defaults=True):
    """One firing of one rule, ready to deliver; ``key`` makes delivery idempotent."""

    schema: int = SCHEMA_VERSION
    key: str
    rule: str
    kind: AlertKind = "firing"
    severity: Severity = "error"
    tags: tuple[str, ...] = ()
    title: str
    body: str
    event: JobEvent
    count: int = 1
    fired_at: datetime
    replay: bool = False  # re-delivery from the dead-letter topic: a "dead" mark does not stop it
    default_body: bool = False  # the body is the default one: each channel kind may lay it out its way


def alert_key(rule: str, event: JobEvent, kind: str = "firing") -> str:
    """rule + job + transition: the identity a notification is sent once for."""
    return f"{rule}|{event.job_key}|{event.prev_status or '-'}>{event.status}|{kind}"


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True, tag="dead", omit_defaults=True):
    """An alert that could not be delivered within the retry budget, and why."""

    schema: int = SCHEMA_VERSION
    alert: Alert
    reason: str
    attempts: int
    failed_targets: tuple[str, ...] = ()
    failed_at: datetime


class TrackRequest(msgspec.Struct, frozen=True, kw_only=True, tag="track", omit_defaults=True):
    """Asks watcher to follow a by-id job (EVS, App job) until it ends.

    Other systems publish this to the track topic right after they start a job::

        {"type": "track", "source": "evs", "region": "cn-north-4",
         "project_id": "0bec…", "job_id": "ff8080…"}
    """

    schema: int = SCHEMA_VERSION
    source: str
    region: str
    project_id: str
    job_id: str
    requested_at: datetime | None = None


class Decision(msgspec.Struct, frozen=True, kw_only=True, tag="decision", omit_defaults=True):
    """An alert a rule stage kept from sending (silenced, inhibited, deduplicated), and why.

    Published to ``<topic_prefix>.decisions`` so nothing is muted without trace.
    """

    schema: int = SCHEMA_VERSION
    alert: Alert
    result: Literal["silenced", "inhibited", "deduplicated"]
    reason: str
    decided_at: datetime


AnyRecord = JobEvent | Alert | DeadLetter | TrackRequest | Decision

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyRecord)


def encode(record: AnyRecord) -> bytes:
    return _encoder.encode(record)


def decode(data: bytes) -> AnyRecord:
    """Decode any record; raises msgspec.ValidationError/DecodeError on bad input."""
    return _decoder.decode(data)
