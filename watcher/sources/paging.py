"""Offset/limit paging shared by the list APIs (workspace, workspaceapp, script).

All three answer ``{total, items}`` where total is the number of matching records, not the
page size (huawei-job-apis.md §8). Pages are requested until ``offset >= total``. An empty
page also stops the walk: a server whose total over-counts must not loop us forever. A
missing total falls back to "a short page is the last one".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

#: Fetches one page: (offset, limit) -> (items, total or None when the body has none).
FetchPage = Callable[[int, int], Awaitable[tuple[Sequence[T], int | None]]]


async def offset_pages(fetch_page: FetchPage[T], *, limit: int) -> AsyncIterator[Sequence[T]]:
    """Yield each page's items, from offset 0 to the end of the listing."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    offset = 0
    while True:
        items, total = await fetch_page(offset, limit)
        if items:
            yield items
        # Advance by what came back, not by ``limit``: a server that caps the page size
        # lower than asked must not make us skip records.
        offset += len(items)
        if not items or (total is not None and offset >= total) or (total is None and len(items) < limit):
            return


async def collect(fetch_page: FetchPage[T], *, limit: int) -> tuple[list[T], int | None]:
    """Every item of the listing, and the last total the server reported."""
    out: list[T] = []
    last_total: list[int | None] = [None]

    async def tracking(offset: int, size: int) -> tuple[Sequence[T], int | None]:
        items, total = await fetch_page(offset, size)
        last_total[0] = total
        return items, total

    async for page in offset_pages(tracking, limit=limit):
        out.extend(page)
    return out, last_total[0]
