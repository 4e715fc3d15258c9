"""What each page shows, as plain data made from a :class:`~watcher.ui.view.TopicView`; no I/O, no HTML.

The templates only lay these out, so what a page says can be tested (and benchmarked) without
a browser. Every list a page shows is capped (``SHOW``) with the count of what was left out.
Pure: imports the view, the event contract, silences and the explain story.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from watcher import events as ev
from watcher.rules.silence import Silence, matches
from watcher.sources.base import Target
from watcher.ui.view import TopicView, dead_key

SHOW = 100  # rows per list on a page
STALE_AFTER = timedelta(minutes=2)  # a last successful poll older than this is flagged


def ago(when: datetime | None, now: datetime) -> str:
    """``"42s ago"``, ``"3m 5s ago"``, ``"2h 10m ago"``, ``"3d 4h ago"``; ``"never"`` for None."""
    if when is None:
        return "never"
    s = int((now - when).total_seconds())
    if s < 0:
        return "in the future"
    if s < 60:
        return f"{s}s ago"
    if s < 3600:
        return f"{s // 60}m {s % 60}s ago"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m ago"
    return f"{s // 86400}d {s % 86400 // 3600}h ago"


def stamp(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC") if when is not None else "-"


# -- overview -----------------------------------------------------------------------------------


@dataclass
class TargetRow:
    id: str
    source: str
    region: str
    project: str
    status: ev.TargetStatus | None
    health: str  # "ok" | "stale" | "failing" | "blind" | "no status yet"
    last_ok: str
    age: str



@dataclass
class Overview:
    targets: list[TargetRow]
    workers: list[ev.WorkerStatus]
    eval_errors: dict[str, int]
    health: dict[str, int]  # health -> targets


def overview(view: TopicView, configured: Sequence[Target], now: datetime) -> Overview:
    """Every poll target, the configured ones first (with or without a status record yet)."""
    rows: list[TargetRow] = []
    seen: set[str] = set()
    for t in configured:
        seen.add(t.id)
        rows.append(_target_row(t.id, t.source, t.region, t.project_id, view.targets.get(t.id), now))
    for tid, st in sorted(view.targets.items()):
        if tid not in seen:
            rows.append(_target_row(tid, st.source, st.region, st.project_id, st, now))
    health: dict[str, int] = {}
    for r in rows:
        health[r.health] = health.get(r.health, 0) + 1
    workers = sorted(view.workers.values(), key=lambda w: w.worker)
    return Overview(rows, workers, view.eval_errors(), health)


def _target_row(tid: str, source: str, region: str, project: str, st: ev.TargetStatus | None,
                now: datetime) -> TargetRow:  # fmt: skip
    if st is None:
        health = "no status yet"
    elif st.blind_since is not None:
        health = "blind"
    elif st.failures:
        health = "failing"
    elif st.last_ok is None or now - st.last_ok > STALE_AFTER:
        health = "stale"
    else:
        health = "ok"
    last_ok = st.last_ok if st is not None else None
    return TargetRow(tid, source, region, project, st, health, stamp(last_ok), ago(last_ok, now))


# -- incidents ----------------------------------------------------------------------------------


@dataclass
class TargetFate:
    target: str
    fate: str  # delivered | retrying | dead-lettered


@dataclass
class NoteRow:
    """One notification of an incident and what became of it, per target."""

    note: ev.Notification
    fate: str  # delivered | retrying | pending | dead-lettered | nothing to tell
    targets: list[TargetFate]


@dataclass
class Dead:
    """A dead letter as the card shows it: the key ``dlq replay`` takes, and why it died."""

    key: str
    reason: str
    attempts: int
    failed_targets: tuple[str, ...]


@dataclass
class Card:
    incident: ev.Incident
    status: str  # firing | acknowledged | snoozed | resolved
    jobs: list[ev.IncidentJob]
    more_jobs: int
    notes: list[NoteRow]
    mutes: list[ev.Decision]  # alerts of this incident silenced, inhibited or deduplicated
    grouped: list[ev.Alert]  # alerts of this incident held in a group
    dead: list[Dead]
    actions: list[ev.Action]


STATES = ("firing", "acknowledged", "snoozed", "resolved")


@dataclass
class Incidents:
    sections: dict[str, list[Card]]
    counts: dict[str, int]
    muted: list[ev.Decision]  # the latest mutes of the last 24 h, incident or not
    muted_count: int


def status_of(inc: ev.Incident, now: datetime) -> str:
    if inc.state == "resolved":
        return "resolved"
    if inc.snoozed_until is not None and inc.snoozed_until > now:
        return "snoozed"
    return "acknowledged" if inc.state == "acknowledged" else "firing"


def card(view: TopicView, inc: ev.Incident, now: datetime, jobs: int = 20) -> Card:
    key = f"i:{inc.id}"
    dead = view.dead.get(key)
    failed = {t for d in dead for t in d.failed_targets}
    notes = []
    for n in view.notifications.get(key):
        if n.incident.episode != inc.episode:
            continue
        d = view.delivery(n.key)
        targets = [TargetFate(t, "delivered") for t in d.accepted]
        if d.fate == "dead-lettered":
            targets += [TargetFate(t, "dead-lettered") for t in sorted(failed - set(d.accepted))]
        # Settled with no target: an update only editable targets hear (a card edited in place),
        # and none here; `watcher explain` says "nothing to tell here" of it too.
        fate = "nothing to tell" if d.fate == "delivered" and not d.accepted else d.fate
        notes.append(NoteRow(n, fate, targets))
    shown = [Dead(dead_key(d), d.reason, d.attempts, d.failed_targets) for d in dead]
    return Card(inc, status_of(inc, now), list(inc.jobs[:jobs]), max(0, len(inc.jobs) - jobs) + inc.more_jobs,
                notes, view.decisions.get(key), view.grouped.get(key), shown, view.actions.get(key))  # fmt: skip


def incidents(view: TopicView, now: datetime, show: int = SHOW) -> Incidents:
    by_state: dict[str, list[ev.Incident]] = {s: [] for s in STATES}
    for inc in view.incidents.values():
        by_state[status_of(inc, now)].append(inc)
    sections, counts = {}, {}
    for state, items in by_state.items():
        counts[state] = len(items)
        items.sort(key=lambda i: i.updated_at, reverse=True)
        sections[state] = [card(view, i, now) for i in items[:show]]
    muted = list(view.decisions.items)
    return Incidents(sections, counts, muted[-show:][::-1], len(muted))


# -- silences -----------------------------------------------------------------------------------


@dataclass
class SilenceRow:
    silence: Silence
    state: str  # active | pending | expired
    origin: str  # "run time" | file:line
    expirable: bool


_SINCE_ALWAYS = datetime.min.replace(tzinfo=UTC)


def silence_state(s: Silence, now: datetime) -> str:
    return "active" if s.active(now) else ("expired" if s.ends is not None and s.ends <= now else "pending")


def silences(view: TopicView, from_files: Iterable[Silence], now: datetime) -> dict[str, list[SilenceRow]]:
    out: dict[str, list[SilenceRow]] = {"active": [], "pending": [], "expired": []}
    for s in view.silences.values():
        state = silence_state(s, now)
        out[state].append(SilenceRow(s, state, "run time", state != "expired"))
    for s in from_files:
        state = silence_state(s, now)
        out[state].append(SilenceRow(s, state, s.origin, False))
    for rows in out.values():
        rows.sort(key=lambda r: (r.silence.starts or _SINCE_ALWAYS, r.silence.id), reverse=True)  # newest first
    return out


def would_match(view: TopicView, match: str, now: datetime) -> int:
    """How many alerts of the last ``view.keep`` the match expression would have muted (it must compile)."""
    probe = Silence(id="preview", match=match)
    cutoff = now - view.keep
    return sum(1 for a in view.alerts.items if a.fired_at >= cutoff and matches(probe, a))


# -- search -------------------------------------------------------------------------------------


@dataclass
class Found:
    incidents: list[ev.Incident] = field(default_factory=list)
    jobs: list[tuple[str, ev.Alert]] = field(default_factory=list)  # job key -> its latest alert
    more: int = 0


SEARCH_KINDS = ("any", "job", "project", "rule", "text")


def search(view: TopicView, query: str, kind: str = "any", show: int = SHOW) -> Found:
    """Incidents and jobs (from the alerts of the last 24 h) whose job id, project, rule or text
    contains ``query`` (case-insensitive)."""
    q = query.strip().lower()
    found = Found()
    if not q:
        return found

    def hit(job: Iterable[str], project: Iterable[str], rule: Iterable[str], text: Iterable[str]) -> bool:
        fields = {"job": job, "project": project, "rule": rule, "text": text}
        pools = fields.values() if kind == "any" else [fields.get(kind, ())]
        return any(q in v.lower() for pool in pools for v in pool if v)

    incs = [i for i in view.incidents.values() if hit(
        [j.job_key for j in i.jobs], [i.project_id], [i.rule],
        [i.title, i.id, *(j.message or "" for j in i.jobs), *(j.error_code or "" for j in i.jobs)],
    )]  # fmt: skip
    incs.sort(key=lambda i: i.updated_at, reverse=True)
    jobs: dict[str, ev.Alert] = {}
    for a in reversed(view.alerts.items):
        e = a.event
        if e.job_key not in jobs and hit([e.job_key], [e.project_id], [a.rule],
                                         [a.title, e.message or "", e.error_code or "", e.job_type]):
            jobs[e.job_key] = a
    found.incidents = incs[:show]
    found.jobs = list(jobs.items())[:show]
    found.more = max(0, len(incs) - show) + max(0, len(jobs) - show)
    return found
