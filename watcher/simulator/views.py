"""One job at one virtual time -> the JSON its API answers with (pure).

Each API spells times its own way (huawei-job-apis.md §6) and names its failure text its
own way (``fail_reason``, ``error_message``, ``execute_message``); this module is the one
place that knows. A time that has not happened yet is ``null`` (``""`` for EVS
``end_time``, as in S4's RUNNING example). Workspace App times are never ``""``: the SDK
would keep the string and warn.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from watcher.simulator.jobs import (
    AppJob,
    AppSubJob,
    DesktopJob,
    EvsJob,
    EvsSubJob,
    Phase,
    ScriptTask,
    State,
    Timeline,
    phase_of,
    word,
)

Body = dict[str, Any]


class Clockface:
    """Virtual seconds -> wall times in each API's format.

    Each formatted time is kept once made: a job's times are a few fixed instants asked for
    on every answer, and formatting was a tenth of the simulator's time per request at scale.
    """

    def __init__(self, epoch: datetime) -> None:
        self.epoch = epoch
        self._made: dict[tuple[str, float], str] = {}

    def at(self, seconds: float) -> datetime:
        return self.epoch + timedelta(seconds=seconds)

    def _format(self, kind: str, seconds: float) -> str:
        moment = self.at(seconds)
        if kind == "workspace":
            return moment.strftime("%Y-%m-%d %H:%M:%S")
        if kind == "millis":
            return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def _cached(self, kind: str, seconds: float) -> str:
        made = self._made.get((kind, seconds))
        if made is None:
            made = self._made[kind, seconds] = self._format(kind, seconds)
        return made

    def workspace(self, seconds: float) -> str:  # 2020-04-10 06:45:14 (UTC, no zone)
        return self._cached("workspace", seconds)

    def millis(self, seconds: float) -> str:  # 2022-03-07T10:40:43.858Z (App sub-jobs, EVS)
        return self._cached("millis", seconds)

    def zulu(self, seconds: float) -> str:  # 2023-06-06T02:30:06Z (App job v1, script tasks)
        return self._cached("zulu", seconds)


def _ended(tl: Timeline, phase: Phase) -> float | None:
    return tl.ended if phase in ("succeeded", "failed") else None


def _progress(tl: Timeline, phase: Phase, t: float) -> int:
    if phase in ("succeeded", "failed"):
        return 100
    if phase == "pending" or tl.planned_end <= tl.running:
        return 0
    return min(99, int(100 * (t - tl.running) / (tl.planned_end - tl.running)))


def workspace_row(job: DesktopJob, phase: Phase, t: float, clock: Clockface) -> Body:
    """``JobDetailInfo`` (Workspace, SDK field set)."""
    tl = job.timeline
    end = _ended(tl, phase)
    failed = phase == "failed" and tl.error is not None
    return {
        "id": job.id,
        "job_type": job.job_type,
        "entities": {
            "desktop_id": job.desktop_id,
            "product_id": job.product_id,
            "user_name": job.user_name,
            "desktop_name": job.desktop_name,
            "ip_address": job.ip_address,
        },
        "begin_time": clock.workspace(tl.created),
        "end_time": clock.workspace(end) if end is not None else None,
        "status": word("workspace", phase),
        "error_code": tl.error.code if failed and tl.error else None,
        "fail_reason": tl.error.message if failed and tl.error else None,
        "job_id": job.job_id,
        "host": job.host,
        "project_id": job.project,
        "process": _progress(tl, phase, t),
        "attach_user": job.user_name,
        "entity": job.desktop_id,
    }


def app_sub_job_row(sub: AppSubJob, state: State, project: str, clock: Clockface) -> Body:
    """``SubJobDetailInfo``: a row of ``app-server-sub-jobs`` and of the v2 job's ``sub_jobs``.

    ``state`` is a phase or a path word (ABNORMAL, ROLLBACK…); from the first path word on,
    the row carries the error it will end with (it went wrong at ABNORMAL, not at FAILED)."""
    tl = sub.timeline
    end = _ended(tl, phase_of(state))
    err = tl.error if state == "failed" or (tl.failed and state in ("ABNORMAL", "ROLLBACK", "ABORTING")) else None
    return {
        "id": sub.id,
        "job_type": sub.job_type,
        "job_resource_info": {"resource_id": sub.resource_id, "resource_name": sub.resource_name},
        "begin_time": clock.millis(tl.created),
        "end_time": clock.millis(end) if end is not None else None,
        "status": word("workspaceapp", state),
        "error_code": err.code if err else None,
        "error_message": err.message if err else None,
        "project_id": project,
        "job_id": sub.job_id,
    }


def app_job_v2(job: AppJob, t: float, clock: Clockface) -> Body:
    """``ShowJobDetailResponse``: the job at the top level, sub-jobs that exist at ``t``."""
    phase = job.timeline.phase_at(t) or "pending"
    end = _ended(job.timeline, phase)
    subs = [app_sub_job_row(s, st, job.project, clock) for s in job.subs if (st := s.timeline.state_at(t))]
    return {
        "id": job.id,
        "job_type": job.job_type,
        "begin_time": clock.millis(job.timeline.created),
        "end_time": clock.millis(end) if end is not None else None,
        "status": word("appjob", phase),
        "sub_jobs_total": len(subs),
        "sub_jobs": subs,
    }


def _v1_resource(sub: AppSubJob) -> Body:
    return {
        "resource_id": sub.resource_id,
        "resource_name": sub.resource_name,
        "cloud_service_type": "hws.service.type.vdi",
        "resource_type": "hws.resource.type.workspace.appstream",
        "resource_spec_code": "workspace.appstream.general.xlarge.4",
        "is_main_resource": 1,
    }


def _v1_result(tl: Timeline, phase: Phase) -> tuple[str, str]:
    if phase == "failed" and tl.error is not None:
        return tl.error.code, tl.error.message
    return "", ""


def app_job_v1(job: AppJob, t: float, clock: Clockface) -> Body:
    """``ShowJobResponse`` (deprecated): integer statuses, ``job_type`` 1 and 2."""
    tl = job.timeline
    phase = tl.phase_at(t) or "pending"
    subs = []
    for sub in job.subs:
        state = sub.timeline.state_at(t)
        if state is None:
            continue
        sp = phase_of(state)
        code, message = _v1_result(sub.timeline, sp)
        end = _ended(sub.timeline, sp)
        subs.append(
            {
                "job_id": sub.id,
                "job_type": 2,
                "job_status": int(word("appjob.v1", state)),
                "entities": [_v1_resource(sub)],
                "begin_time": clock.zulu(sub.timeline.created),
                "end_time": clock.zulu(end) if end is not None else None,
                "execute_code": code,
                "execute_message": message,
            }
        )
    code, message = _v1_result(tl, phase)
    end = _ended(tl, phase)
    return {
        "job": {
            "job_id": job.id,
            "job_type": 1,
            "job_status": int(word("appjob.v1", phase)),
            "sub_jobs": subs,
            "begin_time": clock.zulu(tl.created),
            "end_time": clock.zulu(end) if end is not None else None,
            "expected_end_time": clock.zulu(tl.planned_end),
            "execute_code": code,
            "execute_message": message,
        }
    }


def script_task_row(task: ScriptTask, phase: Phase, clock: Clockface) -> Body:
    """``ScriptExecutionTask``; the counters are filled in when the task ends."""
    tl = task.timeline
    end = _ended(tl, phase)
    done = end is not None
    return {
        "id": task.id,
        "desktop_pool_id": task.desktop_pool_id,
        "desktop_pool_name": task.desktop_pool_name,
        "scripts": [{"id": task.script_id, "name": task.script_name}] if task.task_type == "SCRIPT" else [],
        "command_content": task.command_content,
        "command_type": task.command_type,
        "start_time": clock.zulu(tl.created),
        "end_time": clock.zulu(end) if end is not None else None,
        "status": word("script", phase),
        "success_num": task.desktops - task.failed_num - task.skip_num if done else 0,
        "failed_num": task.failed_num if done else 0,
        "skip_num": task.skip_num if done else 0,
    }


def _evs_fields(tl: Timeline, phase: Phase, clock: Clockface) -> Body:
    end = _ended(tl, phase)
    err = tl.error if phase == "failed" else None
    return {
        "status": word("evs", phase),
        "begin_time": clock.millis(tl.created),
        "end_time": clock.millis(end) if end is not None else "",
        "error_code": err.code if err else None,
        "fail_reason": err.message if err else None,
    }


def _volume(unit: EvsJob | EvsSubJob) -> Body:
    return {"volume_id": unit.volume_id, "name": unit.name, "size": unit.size, "volume_type": unit.volume_type}


def evs_job(job: EvsJob, t: float, clock: Clockface) -> Body:
    """EVS ``ShowJob``: a volume in ``entities``, or ``entities.sub_jobs`` for batch jobs."""
    phase = job.timeline.phase_at(t) or "pending"
    if job.subs:
        subs = []
        for sub in job.subs:
            sp = sub.timeline.phase_at(t) or "pending"
            subs.append(
                {
                    "status": "",
                    "entities": _volume(sub),
                    "job_id": sub.id,
                    "job_type": sub.job_type,
                    **_evs_fields(sub.timeline, sp, clock),
                }
            )
        entities: Body = {"sub_jobs": subs}
    else:
        entities = _volume(job)
    body = {"status": "", "entities": entities, "job_id": job.id, "job_type": job.job_type}
    body.update(_evs_fields(job.timeline, phase, clock))
    return body
