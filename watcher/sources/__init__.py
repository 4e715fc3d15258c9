"""Sources: one module per Huawei job API, each turning that API's answers into Observations.

Sits between ``cloud/`` (signed HTTP; sources call ``client.get``) and ``poller/`` (diffing,
publishing). Imports msgspec, the standard library, ``watcher.events``, ``watcher.errors``
and nothing else. To add a sixth API: a new module declaring path, paging, status → phase
table, the statuses its API documents as final, and field mapping, plus one entry in
:data:`SOURCES`.
"""

from __future__ import annotations

from watcher.errors import ConfigError
from watcher.sources.appjob import AppJobSource
from watcher.sources.base import FetchResult, Observation, Source, Target
from watcher.sources.evs import EvsSource
from watcher.sources.script import ScriptSource
from watcher.sources.workspace import WorkspaceSource
from watcher.sources.workspaceapp import WorkspaceAppSource

#: Every source by name (the names of ``watcher.events.SOURCES``).
SOURCES: dict[str, Source] = {
    s.name: s for s in (WorkspaceSource(), WorkspaceAppSource(), AppJobSource(), ScriptSource(), EvsSource())
}


def get_source(name: str) -> Source:
    """The source called ``name``; an unknown name is a ConfigError listing the valid ones."""
    try:
        return SOURCES[name]
    except KeyError:
        raise ConfigError(f"unknown source {name!r}; valid sources: {', '.join(SOURCES)}", key="source") from None


def new_source(name: str, *, sweep_seconds: float | None = None) -> Source:
    """A fresh ``name`` source with a memo of its own; a list source fully re-lists each
    stream at least every ``sweep_seconds`` (``[poll] sweep``)."""
    cls: type = type(get_source(name))
    if sweep_seconds is not None and not cls.by_id:
        return cls(sweep_seconds=sweep_seconds)  # type: ignore[no-any-return]
    return cls()  # type: ignore[no-any-return]


__all__ = ["SOURCES", "FetchResult", "Observation", "Source", "Target", "get_source", "new_source"]
