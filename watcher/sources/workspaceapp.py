"""Workspace App sub-jobs: ``GET /v1/{project_id}/app-server-sub-jobs`` (SDK ``ListSubJobs``).

Upstream (huawei-job-apis.md §5.2, seed S1): one row per sub-job of an application-streaming
server job; ``id`` is the sub-job, ``job_id`` its parent. Quirks:

* ``job_type`` is **mandatory** and single-valued (S1, GO): one request stream per
  ``Target.job_types`` entry; a target without job types is a config error. ``status`` is
  single-valued too, so a ``Target.statuses`` filter adds one stream per status.
* ``limit`` is 1–100 (default 10); the total is ``count`` and rows are ``items``. S1's own
  example says ``count: 0`` next to one item, so paging trusts ``count`` but never loses
  the rows already received.
* Seven statuses; no source says which of ABNORMAL/ROLLBACK/ABORTING are final. Chosen:

  ========  =========  ==========================================================
  status    phase      why
  ========  =========  ==========================================================
  WAITING   pending
  RUNNING   running
  SUCCESS   succeeded
  FAILED    failed
  ABNORMAL  failed     the job stopped in a broken state nothing resolves by itself:
                       someone must act, so it alerts like a failure
  ROLLBACK  running    rolling back is still changing; it ends in another status
                       (a rule can still match the raw word ROLLBACK early)
  ABORTING  running    a cancel in progress, still changing
  ========  =========  ==========================================================

  A list source re-reads every row each poll, so a "terminal" ABNORMAL row that later moves
  on is still seen.
* Times: ``2022-03-07T10:40:43.858Z``. Failure text: ``error_message`` (not ``fail_reason``).
  ``job_resource_info`` → ``resource_id``/``resource_name``.

``active`` is not needed: every poll lists everything the filter matches (``complete=True``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import msgspec

from watcher.errors import ConfigError
from watcher.events import Entities, Phase
from watcher.sources.base import FetchResult, Observation, Target
from watcher.sources.fields import phase_of, text
from watcher.sources.paging import collect
from watcher.sources.session import Session
from watcher.sources.timefmt import RawTime, parse_time

NAME = "workspaceapp"
SERVICE = "workspaceapp"
API = "workspaceapp.list_sub_jobs"
PATH = "/v1/{project_id}/app-server-sub-jobs"
LIMIT = 100  # the documented maximum

#: ``JobDetailStatus``: shared by this API and the sub-jobs of the v2 App job (``appjob``).
PHASES: dict[str, Phase] = {
    "WAITING": "pending",
    "RUNNING": "running",
    "SUCCESS": "succeeded",
    "FAILED": "failed",
    "ABNORMAL": "failed",
    "ROLLBACK": "running",
    "ABORTING": "running",
}

#: Documented ``job_type`` filter values (S1); others are still sent, the server decides.
JOB_TYPES: tuple[str, ...] = (
    "CREATE_SERVER", "DELETE_SERVER", "REJOIN_DOMAIN", "CHANGE_SERVER_IMAGE", "REINSTALL_OS",
    "MIGRATE_SERVER", "UPDATE_SERVER_TSVI", "UPGRADE_ACCESS_AGENT", "SCHEDULED_TASK", "UPDATE_FREEZE_STATUS",
)  # fmt: skip


class AppResourceInfo(msgspec.Struct, kw_only=True):
    resource_id: str | None = None
    resource_name: str | None = None


class AppSubJob(msgspec.Struct, kw_only=True):
    """``SubJobDetailInfo`` (also the v2 App job's ``sub_jobs[]`` item)."""

    id: str
    status: str
    job_id: str | None = None
    job_type: str | None = None
    job_resource_info: AppResourceInfo | None = None
    begin_time: RawTime = None
    end_time: RawTime = None
    error_code: str | None = None
    error_message: str | None = None


class AppPage(msgspec.Struct, kw_only=True):
    count: int | None = None
    items: list[AppSubJob] | None = None


def normalize(row: AppSubJob, parent: str | None = None) -> Observation:
    """One sub-job row as an Observation; ``parent`` overrides the row's ``job_id``."""
    res = row.job_resource_info or AppResourceInfo()
    return Observation(
        job_id=row.id,
        parent_job_id=parent or text(row.job_id),
        job_type=row.job_type or "",
        status=row.status,
        phase=phase_of(PHASES, row.status),
        begin_time=parse_time(row.begin_time),
        end_time=parse_time(row.end_time),
        error_code=text(row.error_code),
        message=text(row.error_message),
        entities=Entities(resource_id=text(res.resource_id), resource_name=text(res.resource_name)),
    )


def streams(target: Target) -> list[list[tuple[str, str]]]:
    """Base params of each request stream: job type × status × job id."""
    if not target.job_types:
        raise ConfigError(
            f"target {target.id}: the workspaceapp API requires a job_type; set job_types to one or more of "
            + ", ".join(JOB_TYPES),
            key="job_types",
        )
    out = []
    for job_type in target.job_types:
        for status in target.statuses or (None,):
            for job_id in target.job_ids or (None,):
                params = [("job_type", job_type)]
                if status:
                    params.append(("status", status))
                if job_id:
                    params.append(("job_id", job_id))
                out.append(params)
    return out


class WorkspaceAppSource:
    """Lists Workspace App sub-jobs, one stream per job type."""

    name = NAME
    service = SERVICE
    by_id = False

    async def fetch(self, client: Any, target: Target, active: Collection[str]) -> FetchResult:
        session = Session(client, service=self.service, target=target)
        path = PATH.format(project_id=session.project_path)
        seen: dict[str, Observation] = {}
        for base in streams(target):

            async def page(
                offset: int, limit: int, base: list[tuple[str, str]] = base
            ) -> tuple[list[AppSubJob], int | None]:
                body = await session.get(API, path, [*base, ("limit", str(limit)), ("offset", str(offset))], AppPage)
                return body.items or [], body.count

            rows, _ = await collect(page, limit=LIMIT)
            seen.update((r.id, normalize(r)) for r in rows)
        return FetchResult(observations=list(seen.values()), complete=True, requests=session.requests)
