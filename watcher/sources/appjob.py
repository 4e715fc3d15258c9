"""Workspace App job by id: ``GET /v2/{project_id}/job/{job_id}`` or the deprecated ``/v1/…``.

Upstream (huawei-job-apis.md §5.3/§5.3b, seed S2 for v1; the SDK only for v2). Chosen by
``Target.api_version`` (default ``"v2"``). Quirks:

* **v1** (``ShowJob``, "discarded") answers ``{"job": {…}}`` with **integer** ``job_status``
  (0 failed, 1 succeeded, 2 processing, 3 initializing) and integer ``job_type`` (1 job,
  2 sub-job). The raw status is kept as the decimal string (``"0"``…``"3"``), the word a
  rule writes (``appjob: "0" *``); ``job_type`` likewise (``"1"``/``"2"``). Result text is
  ``execute_code``/``execute_message``; a sub-job's ``entities`` is a list of resources,
  the main one (``is_main_resource == 1``, else the first) fills ``resource_id``/``_name``.
* **v2** (``ShowJobDetail``) answers the job at the top level (``id``, ``status``
  WAITING/RUNNING/SUCCESS/FAILED, ``sub_jobs[]`` shaped like the ``workspaceapp`` rows with
  their seven statuses). No example body exists in any source; the SDK model is followed.
* Times: ``2023-06-06T02:30:06Z`` (v1), ISO with ``Z`` (v2).

Each job yields one Observation, plus one per sub-job (``job_id`` = sub-job id,
``parent_job_id`` = the job). The top-level observation always carries the id that was
asked for, so the poller's tracking key matches whatever the body says.

**Final statuses**: v1 ``0`` (failed) and ``1`` (successful), S2's two results; v2
SUCCESS/FAILED for the job (:data:`V2_FINAL`) and, for its sub-jobs, the ``workspaceapp``
table (SUCCESS/FAILED only: ABNORMAL, ROLLBACK and ABORTING are not documented final). A
sub-job's ``final`` is its own status's. The job's ``final`` is True only when its own status
*and every sub-job's* is final: the job is the only handle on its sub-jobs, so while one of
them can still move (a FAILED job whose sub-job is ROLLBACK), the job is polled on.

``active``: the top-level job ids the poller still tracks (it already merged in
``Target.job_ids`` not yet known final); those are fetched, a few at a time and least
recently fetched first, within a time budget (:mod:`watcher.sources.byid`: how late an id
can be seen, and why). A job the API does not know (404) goes to ``FetchResult.gone``.
``complete`` is True when every active id was asked for this poll.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import msgspec

from watcher.errors import ConfigError
from watcher.events import Entities, Phase
from watcher.sources.base import FetchResult, Observation, Target
from watcher.sources.byid import BUDGET, CONCURRENCY, ByIdFetcher, Clock
from watcher.sources.fields import is_final, phase_of, text
from watcher.sources.session import Session, segment
from watcher.sources.timefmt import RawTime, parse_time
from watcher.sources.workspaceapp import FINAL as SUB_JOB_FINAL
from watcher.sources.workspaceapp import PHASES as SUB_JOB_PHASES
from watcher.sources.workspaceapp import AppSubJob
from watcher.sources.workspaceapp import normalize as normalize_sub_job

NAME = "appjob"
SERVICE = "workspaceapp"
API_V1 = "appjob.show_job"
API_V2 = "appjob.show_job_detail"
PATH_V1 = "/v1/{project_id}/job/{job_id}"
PATH_V2 = "/v2/{project_id}/job/{job_id}"

#: v1 ``job_status`` integers, as the decimal strings the raw status carries.
V1_PHASES: dict[str, Phase] = {"0": "failed", "1": "succeeded", "2": "running", "3": "pending"}
#: v2 top-level ``JobStatus``.
V2_PHASES: dict[str, Phase] = {"WAITING": "pending", "RUNNING": "running", "SUCCESS": "succeeded", "FAILED": "failed"}
#: v1 ``job_status`` results S2 documents: 0 failed, 1 successful (2 and 3 are in progress).
V1_FINAL: frozenset[str] = frozenset({"0", "1"})
#: v2 ``JobStatus`` ends.
V2_FINAL: frozenset[str] = frozenset({"SUCCESS", "FAILED"})


class V1Resource(msgspec.Struct, kw_only=True):
    resource_id: str | None = None
    resource_name: str | None = None
    is_main_resource: int | None = None


class V1SubJob(msgspec.Struct, kw_only=True):
    job_id: str
    job_status: int | str
    job_type: int | str | None = None
    entities: list[V1Resource] | None = None
    begin_time: RawTime = None
    end_time: RawTime = None
    execute_code: str | None = None
    execute_message: str | None = None


class V1Job(msgspec.Struct, kw_only=True):
    job_status: int | str
    job_id: str | None = None
    job_type: int | str | None = None
    sub_jobs: list[V1SubJob] | None = None
    begin_time: RawTime = None
    end_time: RawTime = None
    execute_code: str | None = None
    execute_message: str | None = None


class V1Body(msgspec.Struct, kw_only=True):
    job: V1Job


class V2Body(msgspec.Struct, kw_only=True):
    status: str
    id: str | None = None
    job_type: str | None = None
    begin_time: RawTime = None
    end_time: RawTime = None
    sub_jobs_total: int | None = None
    sub_jobs: list[AppSubJob] | None = None
    error_code: str | None = None  # not in the SDK model; read if a server sends it
    error_message: str | None = None


def _word(value: int | str | None) -> str:
    return "" if value is None else str(value)


def _main_resource(resources: list[V1Resource] | None) -> Entities:
    if not resources:
        return Entities()
    main = next((r for r in resources if r.is_main_resource == 1), resources[0])
    return Entities(resource_id=text(main.resource_id), resource_name=text(main.resource_name))


def normalize_v1(job_id: str, body: V1Body) -> list[Observation]:
    """The v1 job (under the id asked for) and its sub-jobs."""
    job = body.job
    subs: list[Observation] = []
    for sub in job.sub_jobs or ():
        sub_status = _word(sub.job_status)
        subs.append(
            Observation(
                job_id=sub.job_id,
                parent_job_id=job_id,
                job_type=_word(sub.job_type),
                status=sub_status,
                phase=phase_of(V1_PHASES, sub_status),
                final=is_final(V1_FINAL, sub_status),
                begin_time=parse_time(sub.begin_time),
                end_time=parse_time(sub.end_time),
                error_code=text(sub.execute_code),
                message=text(sub.execute_message),
                entities=_main_resource(sub.entities),
            )
        )
    status = _word(job.job_status)
    top = Observation(
        job_id=job_id,
        job_type=_word(job.job_type),
        status=status,
        phase=phase_of(V1_PHASES, status),
        final=is_final(V1_FINAL, status) and all(o.final for o in subs),
        begin_time=parse_time(job.begin_time),
        end_time=parse_time(job.end_time),
        error_code=text(job.execute_code),
        message=text(job.execute_message),
    )
    return [top, *subs]


def normalize_v2(job_id: str, body: V2Body) -> list[Observation]:
    """The v2 job (under the id asked for) and its sub-jobs."""
    subs = [normalize_sub_job(sub, parent=job_id) for sub in body.sub_jobs or ()]
    top = Observation(
        job_id=job_id,
        job_type=body.job_type or "",
        status=body.status,
        phase=phase_of(V2_PHASES, body.status),
        final=is_final(V2_FINAL, body.status) and all(o.final for o in subs),
        begin_time=parse_time(body.begin_time),
        end_time=parse_time(body.end_time),
        error_code=text(body.error_code),
        message=text(body.error_message),
    )
    return [top, *subs]


class AppJobSource:
    """Follows Workspace App jobs by id (v2 by default, v1 on request)."""

    name = NAME
    service = SERVICE
    by_id = True

    def __init__(
        self, *, concurrency: int = CONCURRENCY, budget: float | None = BUDGET, clock: Clock | None = None
    ) -> None:
        self._byid = ByIdFetcher(concurrency=concurrency, budget=budget, **({"clock": clock} if clock else {}))

    async def fetch(self, client: Any, target: Target, active: Collection[str]) -> FetchResult:
        if target.api_version not in ("v1", "v2"):
            raise ConfigError(
                f"target {target.id}: api_version must be 'v1' or 'v2', got {target.api_version!r}", key="api_version"
            )
        session = Session(client, service=self.service, target=target)
        v1 = target.api_version == "v1"

        async def one(job_id: str) -> list[Observation]:
            if v1:
                path = PATH_V1.format(project_id=session.project_path, job_id=segment(job_id))
                return normalize_v1(job_id, await session.get(API_V1, path, (), V1Body))
            path = PATH_V2.format(project_id=session.project_path, job_id=segment(job_id))
            return normalize_v2(job_id, await session.get(API_V2, path, (), V2Body))

        got = await self._byid.fetch(target.id, active, one)
        return FetchResult(
            observations=got.observations, complete=got.complete, gone=got.gone, requests=session.requests
        )


__all__ = [
    "SUB_JOB_FINAL", "SUB_JOB_PHASES", "V1_FINAL", "V1_PHASES", "V2_FINAL", "V2_PHASES",
    "AppJobSource", "normalize_v1", "normalize_v2",
]  # fmt: skip
