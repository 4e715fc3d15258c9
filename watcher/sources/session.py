"""One fetch's view of the cloud client: counts requests and decodes bodies into Structs.

Every source talks to ``cloud/`` through this, so request counting (the cost of a poll,
``FetchResult.requests``) and the "body is not what the API documents" error are the
same everywhere. The client's own errors (auth, throttling, not found…) pass through.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import msgspec

from watcher.errors import InvalidId, MalformedResponse
from watcher.events import id_problem
from watcher.sources.base import Target

T = TypeVar("T")


def segment(value: str, what: str = "job id") -> str:
    """An id as a path segment, percent-encoded the way the SDK does it.

    Ids are validated where they enter (config, CLI, the track topic); this is the last line:
    a URL is never built from something that is not an id (a 100,000-character "job id"
    would make httpx refuse the URL and fail the whole poll). Raises :class:`InvalidId`.
    """
    if (problem := id_problem(value, what)) is not None:
        raise InvalidId(problem)
    return quote(value, safe="")


def decode(body: bytes, type: type[T], *, api: str, project_id: str) -> T:
    """``body`` as ``type``; unknown fields are ignored, anything else wrong is MalformedResponse.

    The message carries msgspec's path (``$.jobs[3].status``) so a broken field can be found
    in the raw answer.
    """
    try:
        return msgspec.json.decode(body, type=type)
    except msgspec.ValidationError as e:
        raise MalformedResponse(f"malformed {api} response: {e}", api=api, project_id=project_id) from e
    except msgspec.DecodeError as e:
        raise MalformedResponse(f"malformed {api} response, not JSON: {e}", api=api, project_id=project_id) from e


class Session:
    """Binds a client to one target and one service for the duration of one fetch."""

    def __init__(self, client: Any, *, service: str, target: Target) -> None:
        self.client, self.service, self.target = client, service, target
        self.requests = 0

    @property
    def project_path(self) -> str:
        return segment(self.target.project_id, "project id")

    async def get(self, api: str, path: str, params: Sequence[tuple[str, str]], type: type[T]) -> T:
        """GET ``path`` with ``params`` and decode the 2xx body as ``type``."""
        self.requests += 1  # counted before the await: a failed call still cost a request
        body = await self.client.get(
            api=api,
            service=self.service,
            region=self.target.region,
            project_id=self.target.project_id,
            path=path,
            params=tuple(params),
        )
        return decode(body, type, api=api, project_id=self.target.project_id)

    def rows(self, api: str, field: str, rows: list[T] | None, total: int | None) -> list[T]:
        """A list page's rows. A page without its ``field`` list is malformed unless its total
        says it matches nothing: read as empty, it would report every open job as vanished.
        (Rows that contradict the total are caught by :func:`watcher.sources.paging.check_page`.)"""
        if rows is None and total != 0:
            raise MalformedResponse(
                f"malformed {api} response: no `{field}` list (total {total})", api=api,
                project_id=self.target.project_id,
            )  # fmt: skip
        return rows or []

