"""What a rule can see of an event: the CEL activation and template variables of a JobEvent.

One flat dict serves both CEL expressions (``phase == "failed" && duration_seconds > 600``)
and templates (``{{ event.job_type }}``), so a field has the same name everywhere:

============== ========================================================================
source          workspace | workspaceapp | appjob | script | evs
region          e.g. cn-north-4
project         the project id (alias of ``project_id``)
job_key         source/region/project/job id: the stable key of the job
job_id          the job (or sub-job) id; ``parent_job_id`` its parent, or null
job_type        e.g. createDesktops, CREATE_SERVER, createVolume
status          the API's own word: FAILED, FAIL, FINISH, "0" (App job v1)
phase           pending | running | succeeded | failed | other
prev_status     the status before this change; null when the job was first seen
prev_phase      the phase before this change; null when the job was first seen
change          appeared | changed | vanished
error_code      the API's error code, or null; ``message`` the failure text, or null
entities        map: desktop_id, desktop_name, user_name, product_id, ip_address,
                desktop_pool_id, desktop_pool_name, volume_id, volume_name, volume_type,
                size_gb, resource_id, resource_name (null when unknown), scripts (list)
counts          map: success, failed, skipped (script tasks; zeros for other sources)
begin_time      CEL timestamps (UTC) or null: ``end_time``, ``observed_at`` likewise
duration_seconds double: end (or observed) minus begin; null without a begin time
target          the id of the poll target that saw the job
============== ========================================================================

Timestamps are real CEL timestamps: ``observed_at - begin_time > duration("1h")`` works.
Pure: imports msgspec and the event contract only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from watcher.events import Entities, JobEvent, TaskCounts, job_key

ENTITY_KEYS: tuple[str, ...] = tuple(f.name for f in msgspec.structs.fields(Entities))
COUNT_KEYS: tuple[str, ...] = tuple(f.name for f in msgspec.structs.fields(TaskCounts))

#: Every top-level name an expression or template may use.
FIELDS: tuple[str, ...] = (
    "source", "region", "project", "project_id", "job_key", "job_id", "parent_job_id",
    "job_type", "status", "phase", "prev_status", "prev_phase", "change", "error_code",
    "message", "entities", "counts", "begin_time", "end_time", "observed_at",
    "duration_seconds", "target",
)  # fmt: skip

#: Map-valued fields and the keys they always carry.
MAP_KEYS: dict[str, tuple[str, ...]] = {"entities": ENTITY_KEYS, "counts": COUNT_KEYS}

_NO_COUNTS = TaskCounts()


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)  # the poller stores UTC; a naive time is UTC


def event_context(event: JobEvent) -> dict[str, Any]:
    """The fields of ``event`` as one flat dict of CEL-friendly values (see module doc)."""
    begin, end, observed = _utc(event.begin_time), _utc(event.end_time), _utc(event.observed_at)
    duration = None
    if begin is not None:
        duration = ((end or observed) - begin).total_seconds()
    entities = {name: getattr(event.entities, name) for name in ENTITY_KEYS}
    entities["scripts"] = list(event.entities.scripts)
    counts = event.counts or _NO_COUNTS
    return {
        "source": event.source,
        "region": event.region,
        "project": event.project_id,
        "project_id": event.project_id,
        "job_key": event.job_key,
        "job_id": event.job_id,
        "parent_job_id": event.parent_job_id,
        "job_type": event.job_type,
        "status": event.status,
        "phase": event.phase,
        "prev_status": event.prev_status,
        "prev_phase": event.prev_phase,
        "change": event.change,
        "error_code": event.error_code,
        "message": event.message,
        "entities": entities,
        "counts": {name: getattr(counts, name) for name in COUNT_KEYS},
        "begin_time": begin,
        "end_time": end,
        "observed_at": observed,
        "duration_seconds": duration,
        "target": event.target,
    }


def sample_event() -> JobEvent:
    """A fully populated event: rules are evaluated and rendered against it at load time."""
    begin = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    return JobEvent(
        source="workspace",
        region="cn-north-4",
        project_id="0bec0000000000000000000000000000",
        job_key=job_key("workspace", "cn-north-4", "0bec0000000000000000000000000000", "sample-job"),
        job_id="sample-job",
        parent_job_id="sample-parent",
        job_type="createDesktops",
        status="FAILED",
        phase="failed",
        prev_status="RUNNING",
        prev_phase="running",
        begin_time=begin,
        end_time=begin.replace(minute=14),
        error_code="WKS.0001",
        message="sample failure",
        entities=Entities(
            desktop_id="d-1",
            desktop_name="desk-1",
            user_name="alice",
            product_id="p-1",
            ip_address="10.0.0.1",
            desktop_pool_id="pool-1",
            desktop_pool_name="pool",
            volume_id="v-1",
            volume_name="vol",
            volume_type="SSD",
            size_gb=10,
            resource_id="r-1",
            resource_name="res",
            scripts=("s-1",),
        ),  # fmt: skip
        counts=TaskCounts(success=1, failed=1, skipped=0),
        observed_at=begin.replace(minute=15),
        target="workspace/cn-north-4/0bec0000000000000000000000000000",
    )
