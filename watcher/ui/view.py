"""The status page's memory: what the deployment's topics say now, bounded, updated record by record.

:class:`TopicView` is fed one record at a time by :mod:`watcher.ui.follow` (or directly, in
tests and the benchmark) and answers the pages' questions without I/O. It keeps:

* the status records (``P.status``): the latest per target and per worker — small, all kept;
* the incidents table (its changelog): every incident not resolved more than ``keep`` ago;
* silences: all of them (the topic is small; expired ones stay listed as the CLI lists them);
* alerts, grouped alerts, decisions, dead letters, notifications and actions: those of the
  last ``keep`` (24 h) and at most ``limit`` of each kind, oldest dropped first, with at most
  ``per_key`` of them per incident and per job (the newest);
* delivered marks: the latest ``limit`` notification keys' marks;
* job events (``P.events``): those observed in the last ``keep``, at most ``limit`` and
  ``per_key`` per job, indexed by job key and kept as the bytes they came in (the Job page
  decodes the few of one job when asked: :meth:`TopicView.job_events`).

Records arrive per partition in offset order; across partitions they are only roughly in time
order, so "the last 24 h" is trimmed from the oldest *arrived* end. A job's events all travel
on one partition (keyed by the job's incident subject), so the view holds a job's whole history
exactly when it still holds the job's first sighting (no previous status) and dropped none of
its events since; otherwise :meth:`TopicView.job_events` says it cannot tell, and the Job page
reads the topic. Pure: imports the event contract, the silence struct and the standard library.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, NamedTuple, TypeVar

import msgspec

from watcher import events as ev
from watcher.rules.silence import Silence

T = TypeVar("T")

KEEP = timedelta(hours=24)
LIMIT = 50_000  # records of each kind
PER_KEY = 50  # records of each kind per incident / per job

_silence_dec = msgspec.json.Decoder(Silence)


class _EventHead(msgspec.Struct, tag="job"):
    """What indexing a ``JobEvent`` needs; the rest of the record is kept undecoded."""

    job_key: str
    observed_at: datetime
    prev_status: str | None = None


_head_dec = msgspec.json.Decoder(_EventHead)


class EventRef(NamedTuple):
    """One job event as the view keeps it: its index fields and the record's bytes."""

    at: datetime
    job_key: str
    first: bool  # the job's first sighting: nothing came before it
    raw: bytes


class Recent(Generic[T]):
    """The newest records of one kind: at most ``limit`` in all and ``per_key`` per index key."""

    def __init__(self, when: Callable[[T], datetime], keys: Callable[[T], Iterable[str]], limit: int,
                 per_key: int) -> None:  # fmt: skip
        self.when, self.keys, self.per_key = when, keys, per_key
        self.items: deque[T] = deque()
        self.limit = limit
        self.by: dict[str, deque[T]] = {}
        self.cut: set[str] = set()  # keys that lost a record while keeping others (not their whole story)

    def __len__(self) -> int:
        return len(self.items)

    def add(self, item: T) -> None:
        if len(self.items) >= self.limit:
            self._evict()
        self.items.append(item)
        for k in self.keys(item):
            d = self.by.get(k)
            if d is None:
                d = self.by[k] = deque(maxlen=self.per_key)
            elif len(d) == self.per_key:  # the append pushes its oldest out
                self.cut.add(k)
            d.append(item)

    def _evict(self) -> None:
        old = self.items.popleft()
        for k in self.keys(old):
            d = self.by.get(k)
            if d and d[0] is old:  # FIFO both ways: the oldest of its keys too, unless already pushed out
                d.popleft()
                self.cut.add(k)
            if d is not None and not d:
                del self.by[k]
                self.cut.discard(k)

    def trim(self, cutoff: datetime) -> None:
        while self.items and self.when(self.items[0]) < cutoff:
            self._evict()

    def get(self, key: str) -> list[T]:
        return list(self.by.get(key, ()))


def _alert_keys(a: ev.Alert | None) -> list[str]:
    if a is None:
        return []
    # A grouped message stands for its members' jobs too (``members``, where the contract has it).
    keys = list(dict.fromkeys([f"j:{a.event.job_key}", *(f"j:{m.job_key}" for m in getattr(a, "members", ()))]))
    if a.incident:
        keys.append(f"i:{a.incident}")
    for text in (a.key, a.incident):
        if "|group@" in text:
            keys.append(f"g:{text.split('|group@', 1)[0]}")
            break
    return keys


def dead_key(d: ev.DeadLetter) -> str:
    """What ``watcher dlq replay --key`` takes for a dead letter: its notification's key, or its alert's."""
    key = getattr(d, "key", None)
    return key if isinstance(key, str) else d.alert.key  # type: ignore[union-attr]


def dead_incident(d: ev.DeadLetter) -> str:
    note = getattr(d, "notification", None)
    return note.incident.id if note is not None else (d.alert.incident if d.alert is not None else "")


def _dead_keys(d: ev.DeadLetter) -> list[str]:
    keys = [k for k in _alert_keys(d.alert) if not k.startswith("i:")]
    return [*keys, f"i:{dead_incident(d)}"] if dead_incident(d) else keys


@dataclass(frozen=True)
class Delivery:
    """What the delivered marks say of one notification (or, before incidents, one alert key)."""

    key: str
    whole: str | None  # "1" delivered to every target, "dead", or None: not settled yet
    accepted: tuple[str, ...]  # targets that accepted it

    @property
    def fate(self) -> str:
        if self.whole == "1":
            return "delivered"
        if self.whole == "dead":
            return "dead-lettered"
        return "retrying" if self.accepted else "pending"


class TopicView:
    """The whole deployment as its topics tell it; see the module docstring for what is kept."""

    def __init__(self, *, keep: timedelta = KEEP, limit: int = LIMIT, per_key: int = PER_KEY,
                 clock: Callable[[], datetime] | None = None) -> None:  # fmt: skip
        self.keep, self.limit, self.per_key = keep, limit, per_key
        self.clock = clock or now_utc  # what "the last 24 h" counts back from, as events arrive
        self.clear()

    def clear(self) -> None:
        """Forget everything (before the topics are read again from their beginning)."""
        limit, per_key = self.limit, self.per_key
        self.targets: dict[str, ev.TargetStatus] = {}
        self.workers: dict[str, ev.WorkerStatus] = {}
        self.incidents: dict[str, ev.Incident] = {}
        self.silences: dict[str, Silence] = {}
        self.marks: OrderedDict[str, dict[str, str]] = OrderedDict()  # notification key -> target|"*" -> value

        def recent(when: Callable[[T], datetime], keys: Callable[[T], Iterable[str]]) -> Recent[T]:
            return Recent(when, keys, limit, per_key)

        self.alerts: Recent[ev.Alert] = recent(lambda a: a.fired_at, _alert_keys)
        self.grouped: Recent[ev.Alert] = recent(lambda a: a.fired_at, _alert_keys)
        self.decisions: Recent[ev.Decision] = recent(lambda d: d.decided_at, lambda d: _alert_keys(d.alert))
        self.dead: Recent[ev.DeadLetter] = recent(lambda d: d.failed_at, _dead_keys)
        self.notifications: Recent[ev.Notification] = recent(
            lambda n: n.created_at,
            lambda n: [f"i:{n.incident.id}", *([f"j:{n.alert.event.job_key}"] if n.alert is not None else [])],
        )
        self.actions: Recent[ev.Action] = recent(lambda a: a.at, lambda a: [f"i:{a.incident}"])
        self.events: Recent[EventRef] = recent(lambda r: r.at, lambda r: [r.job_key])
        self.version = 0  # bumped by every applied record: the pages' "something changed"
        self.malformed = 0

    # -- feeding ------------------------------------------------------------------------------

    def apply(self, kind: str, key: bytes | None, value: bytes | None) -> None:
        """One record of the topic ``kind`` names (see :data:`KINDS`); a bad record is counted, not raised."""
        try:
            getattr(self, f"_on_{kind}")(key, value)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, ValueError, AttributeError,
                TypeError):  # fmt: skip
            self.malformed += 1  # one odd record must not stop the page from following the rest
            return
        self.version += 1

    def _on_status(self, key: bytes | None, value: bytes | None) -> None:
        k = (key or b"").decode()
        if value is None:  # a tombstone: the target or worker is gone
            self.targets.pop(k, None)
            self.workers.pop(k.removeprefix("worker:"), None)
            return
        rec = ev.decode(value)
        if isinstance(rec, ev.TargetStatus):
            self.targets[rec.target] = rec
        elif isinstance(rec, ev.WorkerStatus):
            self.workers[rec.worker] = rec

    def _on_incidents(self, key: bytes | None, value: bytes | None) -> None:
        k = table_text(key)
        text = table_text(value)
        if text is None:
            if k is not None:
                self.incidents.pop(k, None)
            return
        rec = ev.decode(text.encode())
        if isinstance(rec, ev.Incident):
            self.incidents[rec.id] = rec

    def _on_delivered(self, key: bytes | None, value: bytes | None) -> None:
        k, v = table_text(key), table_text(value)
        if not k or "|" not in k:
            return
        head, target = k.rsplit("|", 1)
        marks = self.marks.get(head)
        if v is None:
            if marks is not None:
                marks.pop(target, None)
            return
        if marks is None:
            marks = self.marks[head] = {}
            if len(self.marks) > self.limit:
                self.marks.popitem(last=False)
        marks[target] = v

    def _record(self, value: bytes | None) -> ev.AnyRecord | None:
        return ev.decode(value) if value else None

    def _on_alerts(self, key: bytes | None, value: bytes | None) -> None:
        if isinstance(rec := self._record(value), ev.Alert):
            self.alerts.add(rec)

    def _on_grouping(self, key: bytes | None, value: bytes | None) -> None:
        if isinstance(rec := self._record(value), ev.Alert):
            self.grouped.add(rec)

    def _on_decisions(self, key: bytes | None, value: bytes | None) -> None:
        if isinstance(rec := self._record(value), ev.Decision):
            self.decisions.add(rec)

    def _on_dlq(self, key: bytes | None, value: bytes | None) -> None:
        if isinstance(rec := self._record(value), ev.DeadLetter):
            self.dead.add(rec)

    def _on_notifications(self, key: bytes | None, value: bytes | None) -> None:
        if isinstance(rec := self._record(value), ev.Notification):
            self.notifications.add(rec)

    def _on_actions(self, key: bytes | None, value: bytes | None) -> None:
        if isinstance(rec := self._record(value), ev.Action):
            self.actions.add(rec)

    def _on_events(self, key: bytes | None, value: bytes | None) -> None:
        if not value:
            return
        head = _head_dec.decode(value)
        if head.observed_at < self.clock() - self.keep:  # read from the topic's start: most are older
            return
        self.events.add(EventRef(head.observed_at, head.job_key, head.prev_status is None, bytes(value)))

    def _on_silences(self, key: bytes | None, value: bytes | None) -> None:
        if value:
            s = _silence_dec.decode(value)
            self.silences[s.id] = s

    def trim(self, now: datetime) -> None:
        """Forget what is older than ``keep``: records by their time, incidents resolved before it."""
        cutoff = now - self.keep
        for recent in (self.alerts, self.grouped, self.decisions, self.dead, self.notifications, self.actions,
                       self.events):  # fmt: skip
            recent.trim(cutoff)
        gone = [i for i, inc in self.incidents.items() if inc.resolved_at is not None and inc.resolved_at < cutoff]
        for i in gone:
            del self.incidents[i]
        if gone:
            self.version += 1

    # -- questions ----------------------------------------------------------------------------

    def job_events(self, job_key: str) -> list[ev.JobEvent] | None:
        """Every event of the job, oldest first, when the view holds its whole history (from its
        first sighting, nothing dropped since); None when it cannot tell: the job is older than
        the view keeps, unknown, or some of its events were pushed out."""
        refs = self.events.by.get(job_key)
        if not refs or job_key in self.events.cut or not refs[0].first:
            return None
        out = []
        for r in refs:
            try:
                rec = ev.decode(r.raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                return None  # its head decoded, the rest not: let the topic reader say what it says
            if isinstance(rec, ev.JobEvent):
                out.append(rec)
        return out

    def delivery(self, key: str) -> Delivery:
        marks = self.marks.get(key, {})
        return Delivery(key, marks.get("*"), tuple(sorted(t for t, v in marks.items() if t != "*" and v == "1")))

    def marks_of(self, keys: Iterable[str]) -> Iterator[tuple[str, str]]:
        """``(<key>|<target>, value)`` of the marks of ``keys``, as the changelog has them."""
        for k in keys:
            for target, value in self.marks.get(k, {}).items():
                yield f"{k}|{target}", value

    def eval_errors(self) -> dict[str, int]:
        """CEL evaluation errors by rule, summed over the workers."""
        out: dict[str, int] = {}
        for w in self.workers.values():
            for rule, n in w.eval_errors.items():
                out[rule] = out.get(rule, 0) + n
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def table_text(raw: bytes | None) -> str | None:
    """A Faust table changelog key or value as text: JSON strings decoded, raw bytes as UTF-8."""
    if raw is None:
        return None
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw.decode("utf-8")
    return value if isinstance(value, str) else raw.decode("utf-8")


def now_utc() -> datetime:
    return datetime.now(UTC)


#: The topics the view follows: kind (``TopicView._on_<kind>``) -> topic name for a prefix and app id.
def topics(prefix: str, app_id: str) -> dict[str, str]:
    return {
        "status": f"{prefix}.status",
        "incidents": f"{app_id}-{prefix}-incidents-changelog",
        "delivered": f"{app_id}-{prefix}-delivered-changelog",
        "notifications": f"{prefix}.notifications",
        "decisions": f"{prefix}.decisions",
        "dlq": f"{prefix}.dlq",
        "silences": f"{prefix}.silences",
        "actions": f"{prefix}.actions",
        "alerts": f"{prefix}.alerts",
        "grouping": f"{prefix}.grouping",
        "events": f"{prefix}.events",
    }
