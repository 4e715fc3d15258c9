"""Diffing: what changed between the last known state of a target's jobs and a new poll.

Pure functions. The poller loop keeps :class:`JobState` per job in Kafka-backed state and
feeds each poll result through :func:`diff`; only what it returns is published, so a job
seen again with the same status publishes nothing, a first sighting publishes one
``appeared`` event and a tracked job that vanished publishes one ``vanished`` event.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import msgspec

from watcher.events import TERMINAL_PHASES, JobEvent, Phase, job_key
from watcher.sources.base import FetchResult, Observation, Target

VANISHED = "VANISHED"


class JobState(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """What the poller remembers of one job (compact: it is kept for every job)."""

    status: str
    phase: Phase
    since: float  # epoch seconds of the last change


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
    )


def diff(
    target: Target,
    known: Mapping[str, JobState],
    result: FetchResult,
    now: datetime,
    last_seen: Mapping[str, Observation] | None = None,
) -> Diff:
    """Events for every change in ``result`` against ``known`` (job_id -> state).

    ``known`` must hold at least every job in ``result`` that was seen before, and every
    job last seen non-terminal (so vanishing can be told). ``last_seen`` supplies job
    details for vanished jobs' events when available.
    """
    ts = now.timestamp()
    events: list[JobEvent] = []
    states: dict[str, JobState | None] = {}
    seen: set[str] = set()
    for obs in result.observations:
        if obs.job_id in seen:  # a page boundary moved under us: first copy wins
            continue
        seen.add(obs.job_id)
        prev = known.get(obs.job_id)
        if prev is not None and prev.status == obs.status:
            continue
        events.append(_event(target, obs, prev, "appeared" if prev is None else "changed", now))
        states[obs.job_id] = JobState(status=obs.status, phase=obs.phase, since=ts)
    gone = set(result.gone)
    for job_id, prev in known.items():
        if job_id in seen or prev.phase in TERMINAL_PHASES or prev.status == VANISHED:
            continue
        if job_id in gone or (result.complete and not target_is_by_id(target)):
            base = (last_seen or {}).get(job_id) or Observation(
                job_id=job_id, job_type="", status=prev.status, phase=prev.phase
            )
            events.append(_event(target, base, prev, "vanished", now, status=VANISHED, phase="other"))
            states[job_id] = JobState(status=VANISHED, phase="other", since=ts)
    return Diff(events=events, states=states)


def target_is_by_id(target: Target) -> bool:
    # By-id sources report vanishing through FetchResult.gone only: a job id not asked
    # for in this cycle is not missing.
    return target.source in ("appjob", "evs")


def active_ids(states: Mapping[str, JobState]) -> list[str]:
    """Ids of jobs still worth polling: not terminal, not vanished."""
    return sorted(j for j, s in states.items() if s.phase not in TERMINAL_PHASES and s.status != VANISHED)
