"""The contract on every Kafka topic: job status-change events, alerts, incidents, notifications.

Sources produce :class:`JobEvent`; rules turn events into :class:`Alert`; alerts open and
update :class:`Incident` records (what people are paged about: a job with its sub-jobs, a
group, a stuck episode…); each change of an incident that someone must hear about is a
:class:`Notification`, delivered once per target, or parked as a :class:`DeadLetter`.
People act on incidents with :class:`Action` records (acknowledge, snooze, silence).
Workers publish what they see of their targets as :class:`TargetStatus` and of themselves
as :class:`WorkerStatus`. Every struct carries a schema version and is tagged, so one
decoder can tell the kinds apart and an old reader fails loudly on a newer schema.

This module imports only msgspec and the standard library.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Annotated, Literal

import msgspec

SCHEMA_VERSION = 1

#: Normalized lifecycle phase shared by every API's own status vocabulary.
Phase = Literal["pending", "running", "succeeded", "failed", "other"]

#: Phases that mean the job is done (succeeded or failed). Whether it can still change is a
#: separate fact: a status is *final* only where its API documents it so (``JobEvent.final``);
#: Workspace App's ABNORMAL is phase failed but not final, and is polled on.
TERMINAL_PHASES: frozenset[str] = frozenset({"succeeded", "failed"})

#: Source names, as used in config, rules (`evs: FAIL *`) and job keys.
SOURCES: tuple[str, ...] = ("workspace", "workspaceapp", "appjob", "script", "evs")

#: A job or project id as accepted at the door (config, CLI, the track topic). Ids go into
#: request paths, so anything else is refused before a URL is built: Huawei's ids are hex,
#: digits or UUIDs, far inside this.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
Id = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
#: A region id goes into a host name ("cn-north-4", "eu-west-101").
REGION_PATTERN = r"^[a-z]{2,}(?:-[a-z0-9]+)+$"
_ID = re.compile(ID_PATTERN)


def id_problem(value: str, what: str = "job id") -> str | None:
    """Why ``value`` is not a usable id (one line, never the whole value), or None if it is."""
    if _ID.match(value):
        return None
    shown = repr(value) if len(value) <= 40 else f"{value[:20]!r}… ({len(value):,} characters)"
    return f"not a valid {what}: {shown}; expected 1 to 128 letters, digits, '.', '_', ':' or '-'"


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
    #: The API documents this status as final: the job changes no more, and is no longer polled.
    final: bool = False
    #: What an incident about this job is about: the root job of its family, the same whichever
    #: API showed it (see :func:`subject_of`). Empty in events written before it existed.
    subject: str = ""

    @property
    def incident_subject(self) -> str:
        """``subject``, or the one :func:`subject_of` gives for events that lack it."""
        return self.subject or subject_of(self.source, self.region, self.project_id, self.job_id, self.parent_job_id)

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


def job_key_problem(key: str) -> str | None:
    """Why ``key`` is not a job key (``source/region/project_id/job_id``), or None if it is."""
    shown = repr(key) if len(key) <= 60 else f"{key[:40]!r}… ({len(key):,} characters)"
    parts = key.split("/")
    if len(parts) != 4:
        return f"not a job key: {shown}; expected source/region/project_id/job_id, e.g. evs/cn-north-4/0bec…/ff80…"
    source, region, project, job = parts
    if source not in SOURCES:
        return f"not a job key: {shown}; the source must be one of {', '.join(SOURCES)}"
    if not re.match(REGION_PATTERN, region):
        return f"not a job key: {shown}; {region!r} is not a region id (e.g. cn-north-4)"
    return id_problem(project, "project id") or id_problem(job)


def subject_of(source: str, region: str, project_id: str, job_id: str, parent_job_id: str | None) -> str:
    """The incident subject of a job: a job and its own sub-jobs are one failure, and so is one
    Workspace App job seen through both of its APIs.

    * ``appjob`` (a job and its ``sub_jobs``) and ``workspaceapp`` (one row per sub-job, its
      parent in ``job_id``): ``app/<region>/<project>/<root job id>`` for both, so the App job the
      two sources see is one subject;
    * ``evs``: a batch job and its ``entities.sub_jobs``: ``evs/<region>/<project>/<batch id>``;
    * ``workspace`` desktop sub-jobs and ``script`` tasks are their own subjects (their job key):
      a batch of desktops is brought together by a rule's ``group_by``, not here.
    """
    root = parent_job_id or job_id
    if source in ("appjob", "workspaceapp"):
        return f"app/{region}/{project_id}/{root}"
    if source == "evs":
        return f"evs/{region}/{project_id}/{root}"
    return job_key(source, region, project_id, job_id)


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
    #: The incident this alert opens or updates (:func:`incident_id`); "" in alerts written before it.
    incident: str = ""
    #: What that incident is about (see :data:`IncidentKind`).
    incident_kind: str = "job"
    #: The n-th deliberate repeat of a still-firing condition (a stuck reminder); 0: not a repeat.
    repeat: int = 0
    #: A grouped message: the events of the alerts it stands for (at most :data:`MAX_MEMBERS`).
    members: tuple[JobEvent, ...] = ()


#: Events a grouped alert carries at most (the count says how many it stands for).
MAX_MEMBERS = 200


def alert_key(rule: str, event: JobEvent, kind: str = "firing") -> str:
    """rule + job + transition: the identity a notification is sent once for."""
    return f"{rule}|{event.job_key}|{event.prev_status or '-'}>{event.status}|{kind}"


def incident_id(rule: str, subject: str) -> str:
    """The id of the incident a rule fires about a subject: one per rule and subject."""
    return f"{rule}|{subject}"


IncidentState = Literal["firing", "acknowledged", "resolved"]
#: What an incident is about: a job family (``job``), a ``group_by`` group, a stuck episode, a
#: burst, a share of a parent's sub-jobs, or watcher's own health.
IncidentKind = Literal["job", "group", "stuck", "burst", "share", "health"]


class IncidentJob(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One job an incident covers, as its latest event showed it."""

    job_key: str
    source: str
    job_id: str
    parent_job_id: str | None = None
    job_type: str = ""
    status: str
    phase: Phase
    prev_status: str | None = None
    error_code: str | None = None
    message: str | None = None
    entities: Entities = Entities()
    counts: TaskCounts | None = None
    firing: bool = True  # still part of the problem; False once its condition resolved
    first_seen: datetime
    updated: datetime


class Incident(msgspec.Struct, frozen=True, kw_only=True, tag="incident", omit_defaults=True):
    """What people are paged about: opened by a rule's first alert about a subject, updated by
    later alerts about it, resolved when every job it covers moved on (stuck, health), and
    acknowledged or snoozed by people. Kept in a Kafka table; each change that must be heard
    about becomes a :class:`Notification`."""

    schema: int = SCHEMA_VERSION
    id: str  # incident_id(rule, subject)
    episode: int = 1  # a resolved incident that fires again is a new episode: paged again
    rule: str
    kind: IncidentKind = "job"
    subject: str
    severity: Severity = "error"
    tags: tuple[str, ...] = ()
    source: str = ""
    region: str = ""
    project_id: str = ""
    title: str = ""
    state: IncidentState = "firing"
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    snoozed_until: datetime | None = None
    snoozed_by: str | None = None
    jobs: tuple[IncidentJob, ...] = ()
    more_jobs: int = 0  # jobs beyond those kept in ``jobs`` (a very large group)
    alerts: tuple[str, ...] = ()  # keys of the alerts merged in (the latest few): a replay is a no-op
    seq: int = 0  # notifications made in this episode
    escalated: int = 0  # escalation steps fired in this episode
    last_alert: Alert | None = None  # the latest alert merged in (its rendered title and body)
    #: Just opened: the page waits a moment (``SETTLE``) for the rest of its jobs' alerts, so a job
    #: and its failed sub-jobs seen in one poll are one page naming them all.
    settling: bool = False


NotificationKind = Literal["open", "update", "resolve", "escalate", "remind"]
#: Who hears a notification: ``all`` its routed targets, or only the ``editable`` ones (a Slack
#: card edited in place): an update that is no new failure pages nobody.
Audience = Literal["all", "editable"]


def notification_key(incident: str, episode: int, seq: int) -> str:
    """The idempotency key of an incident's ``seq``-th notification in ``episode``."""
    return f"{incident}#{episode}/{seq}"


class Notification(msgspec.Struct, frozen=True, kw_only=True, tag="notification", omit_defaults=True):
    """One change of one incident that someone must hear about; delivered once per target."""

    schema: int = SCHEMA_VERSION
    key: str  # notification_key(...): each target gets a key once
    kind: NotificationKind
    incident: Incident  # the incident as this change left it
    alert: Alert | None = None  # the alert behind the change (its title and body), if any
    change: str = ""  # one line: what changed ("APS-02 FAILED", "acknowledged by @ana")
    audience: Audience = "all"
    tags: tuple[str, ...] = ()  # route to these tags instead of the incident's (escalation steps)
    created_at: datetime
    replay: bool = False  # re-delivery from the dead-letter topic: a "dead" mark does not stop it




class DeadLetter(msgspec.Struct, frozen=True, kw_only=True, tag="dead", omit_defaults=True):
    """A notification that could not be delivered within the retry budget, and why."""

    schema: int = SCHEMA_VERSION
    notification: Notification
    reason: str
    attempts: int
    failed_targets: tuple[str, ...] = ()
    failed_at: datetime

    @property
    def key(self) -> str:
        return self.notification.key

    @property
    def alert(self) -> Alert | None:
        """The alert behind the notification (what it said)."""
        return self.notification.alert or self.notification.incident.last_alert


class TrackRequest(msgspec.Struct, frozen=True, kw_only=True, tag="track", omit_defaults=True):
    """Asks watcher to follow a by-id job (EVS, App job) until it ends.

    Other systems publish this to the track topic right after they start a job::

        {"type": "track", "source": "evs", "region": "cn-north-4",
         "project_id": "0bec…", "job_id": "ff8080…"}
    """

    schema: int = SCHEMA_VERSION
    source: str
    region: str  # matched against the config's targets: an unknown one is dropped with a WARNING
    project_id: Id  # ids are validated on decode: a request with a malformed one is refused whole
    job_id: Id
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


ActionKind = Literal["ack", "unack", "snooze", "silence"]
ActionVia = Literal["slack", "http", "cli", "ui"]


class Action(msgspec.Struct, frozen=True, kw_only=True, tag="action", omit_defaults=True):
    """Someone acted on an incident: the audit trail, and the input of the incident stage.

    ``ack``: no reminders or escalation until the incident resolves; ``unack`` undoes it;
    ``snooze``: reminders and escalation wait until ``until``; ``silence``: a silence for the
    incident's rule and job type was created (``silence_id``) for ``until``.
    """

    schema: int = SCHEMA_VERSION
    id: str  # unique per action (a replayed record is applied once)
    incident: str
    kind: ActionKind
    by: str  # who: a Slack user (@name), a CLI user, a UI user
    at: datetime
    via: ActionVia
    until: datetime | None = None
    silence_id: str | None = None
    comment: str = ""


class TargetStatus(msgspec.Struct, frozen=True, kw_only=True, tag="target_status", omit_defaults=True):
    """What the worker polling a target last saw of it (``<prefix>.status``, keyed by target)."""

    schema: int = SCHEMA_VERSION
    target: str
    source: str
    region: str
    project_id: str
    worker: str  # host:pid of the worker that polls it now
    polls: int = 0
    failures: int = 0  # in a row
    last_ok: datetime | None = None
    last_attempt: datetime | None = None
    last_error: str | None = None
    open_jobs: int = 0
    requests_10m: int = 0
    throttled_10m: int = 0  # 429 answers in the last 10 minutes
    blind_since: datetime | None = None
    updated_at: datetime


class WorkerStatus(msgspec.Struct, frozen=True, kw_only=True, tag="worker_status", omit_defaults=True):
    """One worker's view of itself (``<prefix>.status``, keyed by ``worker:<host:pid>``)."""

    schema: int = SCHEMA_VERSION
    worker: str
    started_at: datetime
    broker: Literal["ok", "slow", "away"] = "ok"
    outage_buffer: int = 0
    targets: int = 0  # poll targets it owns
    rules_loaded: int = 0
    last_reload: str = ""  # "applied at …" / "refused: file:line: message"
    eval_errors: dict[str, int] = {}  # CEL evaluation errors by rule
    updated_at: datetime


AnyRecord = (
    JobEvent | Alert | DeadLetter | TrackRequest | Decision | Incident | Notification | Action | TargetStatus
    | WorkerStatus
)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyRecord)


def encode(record: AnyRecord) -> bytes:
    return _encoder.encode(record)


def decode(data: bytes) -> AnyRecord:
    """Decode any record; raises msgspec.ValidationError/DecodeError on bad input."""
    return _decoder.decode(data)
