"""How a job's facts read in a message: the job type's name and the Status line.

Shared by the rule templates (:mod:`watcher.rules.templates`, which rule bodies and stage
bodies render) and the notifier's per-channel layouts (:mod:`watcher.notify.render`), so an
alert says the same thing on every path. Where the API's own words mislead a reader they are
explained, not replaced: a script task whose desktops partly failed says so (its status says
FINISH), a stuck job says for how long (not "first seen"), and the deprecated App job API's
integer job types get their names. Pure: imports the event contract only.
"""

from __future__ import annotations

from datetime import datetime

from watcher.events import JobEvent, TaskCounts

#: The deprecated App job API (v1) types its jobs with integers (huawei-job-apis.md §2).
JOB_TYPE_NAMES: dict[tuple[str, str], str] = {("appjob", "1"): "App job", ("appjob", "2"): "App sub-job"}


def job_type_name(source: str, job_type: str | None) -> str:
    """``job_type`` as a reader should see it: the name of an integer type, else as the API says it."""
    if not job_type:
        return f"{source} job"
    return JOB_TYPE_NAMES.get((source, job_type), job_type)


def status_text(
    source: str,
    status: str,
    prev_status: str | None,
    counts: TaskCounts | None = None,
    *,
    held: str | None = None,
    since: datetime | None = None,
) -> str:
    """What the Status line says.

    * a stuck job: ``RUNNING for 31m, since 2026-12-01 08:00:12 UTC``;
    * a script task with failed desktops: ``2 of 5 desktops failed (task RUNNING → FINISH)``;
    * otherwise the change, ``RUNNING → FAILED``, or ``FAILED (first seen)``.
    """
    if held:
        when = f", since {since.strftime('%Y-%m-%d %H:%M:%S UTC')}" if since is not None else ""
        return f"{status} for {held}{when}"
    change = f"{prev_status} → {status}" if prev_status else f"{status} (first seen)"
    if source == "script" and counts is not None and counts.failed:
        total = counts.success + counts.failed + counts.skipped
        return f"{counts.failed} of {total} desktops failed (task {change})"
    return change


def event_status(event: JobEvent, *, held: str | None = None, since: datetime | None = None) -> str:
    return status_text(event.source, event.status, event.prev_status, event.counts, held=held, since=since)
