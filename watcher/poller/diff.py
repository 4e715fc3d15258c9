"""Diffing: what changed between the last known state of a target's jobs and a new poll.

Pure functions. The poll stage keeps a :class:`JobState` per job in Kafka-backed state and
feeds each poll result through :func:`diff`; only what it returns is published, so a job
seen again with the same status publishes nothing, a first sighting publishes one
``appeared`` event and a job that is really gone publishes one ``vanished`` event.

What "really gone" means: an API can answer short (a truncated page the paging did not
catch, a listing that raced a page boundary), so one answer without a job proves little.
A job that is not final and missing from a complete answer is *missing* once (its state
records it, nothing is published); missing from a second consistent answer in a row it has
*vanished*. A by-id API that says "no such job" (EVS ``Common.0011``, App job 404) is taken
at its word at once. A job seen again before the second answer is simply still there.

A job is polled until its status is *final* (the API documents it so: ``Observation.final``),
not merely until its phase is failed or succeeded: Workspace App's ABNORMAL alerts as a
failure but is followed until it settles, so ABNORMAL → ROLLBACK → FAILED is three events.

A job first seen already final, whose end lies before ``horizon`` (the poll stage passes
now − retention), is old history, not news: on a first start, or after its state was
evicted, it publishes nothing. That is what lets ended jobs leave the state at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import msgspec

from watcher.events import JobEvent, Phase, job_key, subject_of
from watcher.sources.base import FetchResult, Observation, Target

VANISHED = "VANISHED"
#: The status of a job asked to be tracked (``watcher track``) that no answer has shown yet.
UNSEEN = ""


class JobState(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """What the poller remembers of one job (compact: it is kept for every job)."""

    status: str
    phase: Phase
    since: float  # epoch seconds of the last change (for a final job: when it ended here)
    final: bool = False  # the status is documented final: no more polling
    missing: int = 0  # consecutive complete answers without this job
    sub: bool = False  # a by-id job's sub-job: seen through its parent, never asked for by id

    @property
    def open(self) -> bool:
        """Still worth polling: not final, not vanished."""
        return not self.final and self.status != VANISHED


def tracked(now: float) -> JobState:
    """The state of a job someone asked to track, not seen yet."""
    return JobState(status=UNSEEN, phase="other", since=now)


class Diff(msgspec.Struct, kw_only=True):
    events: list[JobEvent]
    states: dict[str, JobState | None]  # job_id -> new state (None: forget)


def _event(
    target: Target,
    obs: Observation,
    prev: JobState | None,
    change: str,
    now: datetime,
    status: str | None = None,
    phase: Phase | None = None,
    final: bool | None = None,
) -> JobEvent:
    return JobEvent(
        source=target.source,
        region=target.region,
        project_id=target.project_id,
        job_key=job_key(target.source, target.region, target.project_id, obs.job_id),
        job_id=obs.job_id,
        parent_job_id=obs.parent_job_id,
        job_type=obs.job_type,
        status=status or obs.status,
        phase=phase or obs.phase,
        prev_status=prev.status if prev else None,
        prev_phase=prev.phase if prev else None,
        change=change,  # type: ignore[arg-type]
        begin_time=obs.begin_time,
        end_time=obs.end_time,
        error_code=obs.error_code,
        message=obs.message,
        entities=obs.entities,
        counts=obs.counts,
        observed_at=now,
        target=target.id,
        final=obs.final if final is None else final,
        subject=subject_of(target.source, target.region, target.project_id, obs.job_id, obs.parent_job_id),
    )


def _ended_before(obs: Observation, horizon: float) -> bool:
    when = obs.end_time or obs.begin_time
    return when is not None and when.timestamp() < horizon


def diff(
    target: Target,
    known: Mapping[str, JobState],
    result: FetchResult,
    now: datetime,
    last_seen: Mapping[str, Observation] | None = None,
    *,
    horizon: float | None = None,
) -> Diff:
    """Events for every change in ``result`` against ``known`` (job_id -> state).

    ``known`` must hold at least every job in ``result`` that was seen before, and every
    job last seen open (so vanishing can be told). ``last_seen`` supplies job details for
    vanished jobs' events when available. ``horizon`` (epoch seconds): a final job first
    seen with an end before it is history and publishes nothing (see the module note).
    """
    ts = now.timestamp()
    by_id = target_is_by_id(target)
    events: list[JobEvent] = []
    states: dict[str, JobState | None] = {}
    seen: set[str] = set()
    for obs in result.observations:
        if obs.job_id in seen:  # a page boundary moved under us: first copy wins
            continue
        seen.add(obs.job_id)
        stored = known.get(obs.job_id)
        prev = stored if stored is not None and stored.status != UNSEEN else None
        sub = by_id and obs.parent_job_id is not None
        if prev is not None and prev.status == obs.status:
            if prev.missing or prev.final != obs.final:  # still there after all / finality learned
                states[obs.job_id] = JobState(status=prev.status, phase=prev.phase, since=prev.since,
                                              final=obs.final, sub=prev.sub)  # fmt: skip
            continue
        if prev is None and obs.final and horizon is not None and _ended_before(obs, horizon):
            if stored is not None or (by_id and not sub):  # asked for by id: remember it ended, stop asking
                ended = (obs.end_time or obs.begin_time or now).timestamp()
                states[obs.job_id] = JobState(status=obs.status, phase=obs.phase, since=ended, final=True, sub=sub)
            continue
        events.append(_event(target, obs, prev, "appeared" if prev is None else "changed", now))
        states[obs.job_id] = JobState(status=obs.status, phase=obs.phase, since=ts, final=obs.final, sub=sub)
    gone = set(result.gone)
    for job_id, prev in known.items():
        if job_id in seen or not prev.open:
            continue
        if prev.status == UNSEEN:
            if job_id in gone:  # asked to track a job the API does not know: nothing to follow
                states[job_id] = None
            continue
        if by_id:
            absent, certain = job_id in gone, True  # the API said "no such job"
        else:
            absent, certain = job_id in gone or result.complete, False
        if not absent:
            continue
        if certain or prev.missing >= 1:
            base = (last_seen or {}).get(job_id) or Observation(
                job_id=job_id, job_type="", status=prev.status, phase=prev.phase
            )
            events.append(_event(target, base, prev, "vanished", now, status=VANISHED, phase="other", final=True))
            states[job_id] = JobState(status=VANISHED, phase="other", since=ts, final=True, sub=prev.sub)
        else:  # one answer without it: wait for a second consistent one before calling it gone
            states[job_id] = JobState(status=prev.status, phase=prev.phase, since=prev.since, missing=1, sub=prev.sub)
    return Diff(events=events, states=states)


def target_is_by_id(target: Target) -> bool:
    # By-id sources report vanishing through FetchResult.gone only: a job id not asked
    # for in this cycle is not missing.
    return target.source in ("appjob", "evs")


def active_ids(states: Mapping[str, JobState]) -> list[str]:
    """Ids of jobs still worth polling: open, and asked for by id where the source is by-id."""
    return sorted(j for j, s in states.items() if s.open and not s.sub)
