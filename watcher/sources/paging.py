"""Offset/limit paging shared by the list APIs (workspace, workspaceapp, script).

All three answer ``{total, items}`` where total is the number of matching records, not the
page size (huawei-job-apis.md §8). Pages are requested until ``offset >= total``.

**A page that contradicts its own total is malformed** and raises
:class:`~watcher.errors.MalformedResponse`, so the poll fails and the poller keeps the last
known state of every job (read as a short listing instead, the missing rows would be
reported gone and their jobs "resolved", then seen again on the next poll). Malformed:

* an empty page while ``offset < total`` (``total_count: 1`` with no rows is the first case);
* a page shorter than the limit asked for while the total says more rows follow. Every
  source asks for at most its API's documented maximum, so a server that keeps to its
  contract never answers that way.

More rows than the total is tolerated: S1's own example says ``count: 0`` next to one item,
and rows already received are never dropped. A missing total falls back to "a short page
is the last one". Home-made because it is ten lines over each source's page fetcher.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

from watcher.errors import MalformedResponse

T = TypeVar("T")

#: Fetches one page: (offset, limit) -> (items, total or None when the body has none).
FetchPage = Callable[[int, int], Awaitable[tuple[Sequence[T], int | None]]]


def check_page(rows: int, total: int | None, *, offset: int, limit: int, api: str = "", project_id: str = "") -> None:
    """Raise MalformedResponse if a page of ``rows`` rows at ``offset`` contradicts ``total``."""
    if total is None or offset + rows >= total:
        return
    if rows == 0:
        why = f"no rows at offset {offset} but a total of {total}"
    elif rows < limit:
        why = f"{rows} rows at offset {offset} (limit {limit}) but a total of {total}: the page is cut short"
    else:
        return
    what = f"malformed {api} response" if api else "malformed response"
    raise MalformedResponse(f"{what}: {why}", api=api, project_id=project_id)


async def offset_pages(
    fetch_page: FetchPage[T], *, limit: int, api: str = "", project_id: str = ""
) -> AsyncIterator[Sequence[T]]:
    """Yield each page's items, from offset 0 to the end of the listing; a page that
    contradicts its total raises MalformedResponse (``api``/``project_id`` name it)."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    offset = 0
    while True:
        items, total = await fetch_page(offset, limit)
        check_page(len(items), total, offset=offset, limit=limit, api=api, project_id=project_id)
        if items:
            yield items
        offset += len(items)
        if not items or (total is not None and offset >= total) or (total is None and len(items) < limit):
            return


async def collect(
    fetch_page: FetchPage[T], *, limit: int, api: str = "", project_id: str = ""
) -> tuple[list[T], int | None]:
    """Every item of the listing, and the last total the server reported."""
    out: list[T] = []
    last_total: list[int | None] = [None]

    async def tracking(offset: int, size: int) -> tuple[Sequence[T], int | None]:
        items, total = await fetch_page(offset, size)
        last_total[0] = total
        return items, total

    async for page in offset_pages(tracking, limit=limit, api=api, project_id=project_id):
        out.extend(page)
    return out, last_total[0]
