"""Fetching by job id (``appjob``, ``evs``): one GET per tracked id, concurrently.

The poller passes ``active``: the top-level ids it still tracks, already including the
configured ``Target.job_ids`` not yet known terminal. Exactly those are asked for, each
once. An id the API says does not exist lands in ``gone`` instead of failing the poll; any
other failure fails the poll (after every call has finished, so none is left running),
because auth, throttling and transport problems hit every id alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection

from watcher.errors import JobNotFound
from watcher.sources.base import Observation


async def fetch_each(
    ids: Collection[str], one: Callable[[str], Awaitable[list[Observation]]]
) -> tuple[list[Observation], list[str]]:
    """Observations of every id in ``ids`` (in order) and the ids found not to exist."""
    unique = list(dict.fromkeys(ids))
    results = await asyncio.gather(*(one(job_id) for job_id in unique), return_exceptions=True)
    observations: list[Observation] = []
    gone: list[str] = []
    for job_id, result in zip(unique, results, strict=True):
        if isinstance(result, JobNotFound):
            gone.append(job_id)
        elif isinstance(result, BaseException):
            raise result
        else:
            observations.extend(result)
    return observations, gone
