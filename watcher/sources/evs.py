"""EVS jobs by id: ``GET /v1/{project_id}/jobs/{job_id}`` (SDK ``EvsClient.show_job``, package v2).

Upstream (huawei-job-apis.md §5.5, seed S4). Quirks:

* Statuses SUCCESS / RUNNING / **FAIL** (not FAILED) / **INIT**: FAIL → failed, INIT → pending.
  Final (:data:`FINAL`): SUCCESS and FAIL. A sub-job's ``final`` is its own; the job's is True
  only when its status and every sub-job's are final (the batch is the only handle on its
  sub-jobs: while one can still move, the batch is polled on).
* Times ``2016-03-08T07:40:13.219Z``; ``end_time`` is ``""`` while running (→ None).
* ``error_code``/``fail_reason`` are ``null`` until something fails.
* ``entities`` depends on the job type: a single-volume job carries ``volume_id``, ``name``,
  ``size`` (GB), ``volume_type``; a batch job carries ``sub_jobs[]`` instead, each a full job
  (no nested sub_jobs). Each sub-job becomes its own Observation with the batch as parent.
* S4 also documents a 200 body ``{"error": {"code", "message"}}``, which the SDK drops. Here
  it is an error answer: ``Common.0011`` (EVS's "job not found", normally a 400) puts the id in
  ``gone``; any other code fails the poll as a CloudError naming the code. A body that has
  a ``status`` *and* an ``error`` is a job: the error fills ``error_code``/``message`` only
  where ``error_code``/``fail_reason`` are empty.
* An unknown job id answers **400 Common.0011** (not 404); the client raises JobNotFound and
  the id lands in ``FetchResult.gone``.

``active``: the top-level job ids still tracked (``Target.job_ids`` already merged in by the
poller); those are fetched a few at a time, least recently fetched first, within a time
budget (:mod:`watcher.sources.byid`). ``complete`` is True when every active id was asked for.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import msgspec

from watcher.errors import CloudError, JobNotFound, MalformedResponse
from watcher.events import Entities, Phase
from watcher.sources.base import FetchResult, Observation, Target
from watcher.sources.byid import BUDGET, CONCURRENCY, ByIdFetcher, Clock
from watcher.sources.fields import is_final, phase_of, text
from watcher.sources.session import Session, segment
from watcher.sources.timefmt import RawTime, parse_time

NAME = "evs"
SERVICE = "evs"
API = "evs.show_job"
PATH = "/v1/{project_id}/jobs/{job_id}"
NOT_FOUND_CODE = "Common.0011"

PHASES: dict[str, Phase] = {"INIT": "pending", "RUNNING": "running", "SUCCESS": "succeeded", "FAIL": "failed"}
#: The statuses S4 documents as an end.
FINAL: frozenset[str] = frozenset({"SUCCESS", "FAIL"})


class EvsSubEntities(msgspec.Struct, kw_only=True):
    name: str | None = None
    size: int | None = None
    volume_id: str | None = None
    volume_type: str | None = None


class EvsSubJob(msgspec.Struct, kw_only=True):
    job_id: str
    status: str
    job_type: str | None = None
    entities: EvsSubEntities | None = None
    begin_time: RawTime = None
    end_time: RawTime = None
    error_code: str | None = None
    fail_reason: str | None = None


class EvsEntities(EvsSubEntities, kw_only=True):
    sub_jobs: list[EvsSubJob] | None = None


class EvsError(msgspec.Struct, kw_only=True):
    code: str | None = None
    message: str | None = None


class EvsBody(msgspec.Struct, kw_only=True):
    status: str | None = None
    job_id: str | None = None
    job_type: str | None = None
    entities: EvsEntities | None = None
    begin_time: RawTime = None
    end_time: RawTime = None
    error_code: str | None = None
    fail_reason: str | None = None
    error: EvsError | None = None


def _volume(ents: EvsSubEntities | None) -> Entities:
    if ents is None:
        return Entities()
    return Entities(
        volume_id=text(ents.volume_id),
        volume_name=text(ents.name),
        volume_type=text(ents.volume_type),
        size_gb=ents.size,
    )


def normalize(job_id: str, body: EvsBody, *, project_id: str = "") -> list[Observation]:
    """The job (under the id asked for) and its sub-jobs; an error body raises (see module note)."""
    err = body.error or EvsError()
    if body.status is None:
        if body.error is None:
            raise MalformedResponse(
                f"malformed {API} response for job {job_id}: no `status` and no `error` - at `$`",
                api=API,
                project_id=project_id,
            )
        cls = JobNotFound if text(err.code) == NOT_FOUND_CODE else CloudError
        raise cls(
            f"{API} answered 200 with an error for job {job_id}: {text(err.message) or '(no message)'}",
            api=API,
            project_id=project_id,
            status=200,
            error_code=text(err.code),
        )
    subs = [
        Observation(
            job_id=sub.job_id,
            parent_job_id=job_id,
            job_type=sub.job_type or "",
            status=sub.status,
            phase=phase_of(PHASES, sub.status),
            final=is_final(FINAL, sub.status),
            begin_time=parse_time(sub.begin_time),
            end_time=parse_time(sub.end_time),
            error_code=text(sub.error_code),
            message=text(sub.fail_reason),
            entities=_volume(sub.entities),
        )
        for sub in (body.entities.sub_jobs if body.entities else None) or ()
    ]
    top = Observation(
        job_id=job_id,
        job_type=body.job_type or "",
        status=body.status,
        phase=phase_of(PHASES, body.status),
        final=is_final(FINAL, body.status) and all(o.final for o in subs),
        begin_time=parse_time(body.begin_time),
        end_time=parse_time(body.end_time),
        error_code=text(body.error_code) or text(err.code),
        message=text(body.fail_reason) or text(err.message),
        entities=_volume(body.entities),
    )
    return [top, *subs]


class EvsSource:
    """Follows EVS jobs by id."""

    name = NAME
    service = SERVICE
    by_id = True

    def __init__(
        self, *, concurrency: int = CONCURRENCY, budget: float | None = BUDGET, clock: Clock | None = None
    ) -> None:
        self._byid = ByIdFetcher(concurrency=concurrency, budget=budget, **({"clock": clock} if clock else {}))

    async def fetch(self, client: Any, target: Target, active: Collection[str]) -> FetchResult:
        session = Session(client, service=self.service, target=target)

        async def one(job_id: str) -> list[Observation]:
            path = PATH.format(project_id=session.project_path, job_id=segment(job_id))
            body = await session.get(API, path, (), EvsBody)
            return normalize(job_id, body, project_id=target.project_id)

        got = await self._byid.fetch(target.id, active, one)
        return FetchResult(
            observations=got.observations, complete=got.complete, gone=got.gone, requests=session.requests
        )
