"""The Source protocol: what one Huawei job API module declares and implements.

Sit between ``cloud/`` (signed HTTP) and ``poller/`` (diffing, publishing). A source turns
one API's pages into :class:`Observation` rows: its own status word plus the normalized
phase, whether the API documents that word as final (only final ends polling), times in
UTC, error code/message from whichever field the API uses. It never diffs and never publishes.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Protocol

import msgspec

from watcher.events import Entities, Phase, TaskCounts


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """One thing to poll: a source in one project and region, with its filter.

    List sources use ``job_types``/``statuses``/``desktop_pool_id``; by-id sources
    (``appjob``, ``evs``) use ``job_ids`` (from config; more arrive at run time).
    """

    source: str
    region: str
    project_id: str
    job_types: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    desktop_pool_id: str | None = None
    job_ids: tuple[str, ...] = ()
    api_version: str = "v2"  # appjob only: "v1" (deprecated) or "v2"

    @property
    def id(self) -> str:
        parts = [self.source, self.region, self.project_id]
        if self.job_types:
            parts.append(",".join(self.job_types))
        if self.statuses:
            parts.append("status=" + ",".join(self.statuses))
        if self.desktop_pool_id:
            parts.append("pool=" + self.desktop_pool_id)
        return "/".join(parts)


class Observation(msgspec.Struct, frozen=True, kw_only=True):
    """One job as one API answer showed it."""

    job_id: str
    parent_job_id: str | None = None
    job_type: str
    status: str
    phase: Phase
    begin_time: datetime | None = None
    end_time: datetime | None = None
    error_code: str | None = None
    message: str | None = None
    entities: Entities = Entities()
    counts: TaskCounts | None = None
    #: The API documents ``status`` as final: the job changes no more and is no longer polled.
    #: Anything else (ABNORMAL, ROLLBACK, ABORTING, an unknown word) keeps it on the fast schedule.
    final: bool = False


class FetchResult(msgspec.Struct, kw_only=True):
    """What one poll of one target saw.

    ``complete`` is True when the observations cover every job the target watches, so a
    known non-terminal job missing from them has vanished (list sources). A by-id source
    sets it when every active id was asked for; one it did not reach this poll (its time
    budget ran out) keeps its last known state, and a by-id job is never "missing": ``gone``
    lists the by-id jobs the API says do not exist (EVS 400 Common.0011, App job 404).
    A list answer that contradicts its own total never gets here: it is MalformedResponse,
    the poll fails and every job keeps its last known state. ``requests`` counts HTTP calls.
    """

    observations: list[Observation]
    complete: bool = True
    gone: list[str] = msgspec.field(default_factory=list)
    requests: int = 0


class Source(Protocol):
    name: str  # "workspace", "workspaceapp", "appjob", "script", "evs"
    service: str  # endpoint service: "workspace", "workspaceapp", "evs"
    by_id: bool

    async def fetch(self, client: object, target: Target, active: Collection[str]) -> FetchResult:
        """Poll ``target``; ``active`` holds the ids of jobs last seen non-terminal."""
        ...
