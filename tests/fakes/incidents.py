"""Incidents and notifications to hand to channels in tests (what the incident stage would make)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from watcher.events import Entities, Incident, IncidentJob, Notification, incident_id, notification_key

OPENED = datetime(2026, 11, 23, 8, 0, 0, tzinfo=UTC)
PROJECT = "0bec5db98280d2d02fd6c00c2de791ce"
SUBJECT = "workspace-batch/cn-north-4/" + PROJECT + "/pool-7"
RULE = "desktop-failed"


def job(i: int, *, status: str = "FAILED", firing: bool = True, prev: str | None = "RUNNING",
        code: str | None = "WKS.0001", message: str | None = "quota exceeded", **entities: Any) -> IncidentJob:
    ents = Entities(desktop_id=f"desk-id-{i:02d}", desktop_name=f"desk-{i:02d}", **entities)
    return IncidentJob(job_key=f"workspace/cn-north-4/{PROJECT}/job-{i:02d}", source="workspace",
                       job_id=f"job-{i:02d}", job_type="createDesktops", status=status,
                       phase="failed" if status in ("FAILED", "ABNORMAL") else "succeeded",
                       prev_status=prev, error_code=code, message=message, entities=ents, firing=firing,
                       first_seen=OPENED, updated=OPENED)  # fmt: skip


def incident(n: int = 1, **changes: Any) -> Incident:
    base = Incident(id=incident_id(RULE, SUBJECT), rule=RULE, kind="group", subject=SUBJECT, severity="error",
                    tags=("ops",), source="workspace", region="cn-north-4", project_id=PROJECT,
                    title="[FAILED] createDesktops in project 0bec… (cn-north-4)", opened_at=OPENED,
                    updated_at=OPENED, jobs=tuple(job(i) for i in range(1, n + 1)), seq=1)  # fmt: skip
    return msgspec.structs.replace(base, **changes) if changes else base


def note(kind: str, inc: Incident, *, change: str = "", minutes: float = 0, seq: int | None = None,
         **extra: Any) -> Notification:
    seq = inc.seq if seq is None else seq
    inc = msgspec.structs.replace(inc, seq=seq)
    return Notification(key=notification_key(inc.id, inc.episode, seq), kind=kind, incident=inc,  # type: ignore[arg-type]
                        change=change, created_at=OPENED + timedelta(minutes=minutes), **extra)
