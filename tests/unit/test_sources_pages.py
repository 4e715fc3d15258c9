"""Malformed pages: a list answer whose rows contradict its own total fails the poll.

Exact bodies per list API (the shapes an outside fake cloud sends when it truncates a page):
``total_count: 1`` with no rows, an empty page while ``offset < total``, a page shorter than
the limit while the total says more follow. Each raises MalformedResponse naming the API and
project; through the poller, the poll fails and every job keeps its last known state (no
"vanished", no event), and the next good answer publishes nothing new.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from tests.unit.test_sources import PID, FakeClient, Params, app_rows, target, task_rows, ws_rows
from watcher import events
from watcher.errors import MalformedResponse
from watcher.poller.loop import Intervals, MemoryStore, poll_target
from watcher.poller.schedule import TargetState
from watcher.sources.base import Target
from watcher.sources.paging import check_page, collect
from watcher.sources.script import ScriptSource
from watcher.sources.workspace import WorkspaceSource
from watcher.sources.workspaceapp import WorkspaceAppSource

WS = ("workspace", "total_count", "jobs", 1000, "workspace.list_sub_jobs")
APP = ("workspaceapp", "count", "items", 100, "workspaceapp.list_sub_jobs")
SCRIPT = ("script", "total_count", "script_execution_tasks", 100, "script.list_tasks")


def _source_and_target(source: str) -> tuple[Any, Target]:
    if source == "workspace":
        return WorkspaceSource(), target("workspace", statuses=("RUNNING",))
    if source == "workspaceapp":
        return WorkspaceAppSource(), target("workspaceapp", job_types=("CREATE_SERVER",), statuses=("RUNNING",))
    return ScriptSource(), target("script", statuses=("RUNNING",))


def _rows(source: str, n: int) -> list[dict[str, Any]]:
    if source == "workspace":
        return ws_rows(n, status="RUNNING")
    if source == "workspaceapp":
        return app_rows(n, status="RUNNING")
    return task_rows(n, status="RUNNING")


# (api, pages by offset -> (total, row count), the message's reason)
CASES = [
    (WS, {0: (1, 0)}, "no rows at offset 0 but a total of 1"),
    (APP, {0: (1, 0)}, "no rows at offset 0 but a total of 1"),
    (SCRIPT, {0: (1, 0)}, "no rows at offset 0 but a total of 1"),
    (WS, {0: (1500, 10)}, "10 rows at offset 0 \\(limit 1000\\) but a total of 1500: the page is cut short"),
    (APP, {0: (150, 40)}, "40 rows at offset 0 \\(limit 100\\) but a total of 150: the page is cut short"),
    (SCRIPT, {0: (3, 2)}, "2 rows at offset 0 \\(limit 100\\) but a total of 3: the page is cut short"),
    (APP, {0: (150, 100), 100: (150, 0)}, "no rows at offset 100 but a total of 150"),
    (
        SCRIPT,
        {0: (250, 100), 100: (250, 99)},
        "99 rows at offset 100 \\(limit 100\\) but a total of 250: the page is cut short",
    ),
    (WS, {0: (2500, 1000), 1000: (2500, 1000), 2000: (2500, 0)}, "no rows at offset 2000 but a total of 2500"),
]


@pytest.mark.parametrize(("api", "pages", "why"), CASES)
async def test_a_page_that_contradicts_its_total_is_malformed(api: Any, pages: dict[int, Any], why: str) -> None:
    source, total_key, rows_key, limit, api_name = api
    rows = _rows(source, max(o + n for o, (_, n) in pages.items()))

    def answer(path: str, params: Params) -> bytes:
        offset = int(dict(params)["offset"])
        assert int(dict(params)["limit"]) == limit
        total, n = pages[offset]
        return json.dumps({total_key: total, rows_key: rows[offset : offset + n]}).encode()

    src, t = _source_and_target(source)
    client = FakeClient(handler=answer)
    with pytest.raises(MalformedResponse, match=f"^malformed {api_name} response: {why} api={api_name} project={PID}$"):
        await src.fetch(client, t, [])
    assert [int(dict(p)["offset"]) for _, p in client.keys] == sorted(pages)  # no page past the broken one


# (pages by offset -> (total, row count), rows collected): consistent answers, including the
# tolerated over-count of S1's example (count 0 next to one item) and a total that changed.
CONSISTENT = [
    ({0: (0, 0)}, 0),
    ({0: (3, 3)}, 3),
    ({0: (0, 1)}, 1),  # S1: count 0 with one item; never drop rows received
    ({0: (100, 100)}, 100),
    ({0: (150, 100), 100: (150, 50)}, 150),
    ({0: (150, 100), 100: (151, 51)}, 151),  # a job arrived between the two pages
    ({0: (150, 100), 100: (90, 0)}, 100),  # rows removed between pages: the total dropped under the offset
    ({0: (None, 100), 100: (None, 7)}, 107),  # no total: a short page is the last
]


@pytest.mark.parametrize(("pages", "collected"), CONSISTENT)
async def test_consistent_pages_are_collected(pages: dict[int, Any], collected: int) -> None:
    async def page(offset: int, limit: int) -> tuple[list[int], int | None]:
        total, n = pages[offset]
        return list(range(offset, offset + n)), total

    got, _ = await collect(page, limit=100)
    assert got == list(range(collected))


def test_check_page_table() -> None:
    ok = [(0, 0, 0), (5, 5, 0), (5, None, 0), (0, None, 0), (100, 250, 0), (50, 150, 100), (0, 90, 100), (1, 0, 0)]
    for rows, total, offset in ok:
        check_page(rows, total, offset=offset, limit=100)
    bad = [(0, 1, 0), (0, 150, 100), (99, 250, 100), (1, 3, 0)]
    for rows, total, offset in bad:
        with pytest.raises(MalformedResponse):
            check_page(rows, total, offset=offset, limit=100)


# --------------------------------------------------------------------------------------------
# Through the poller: a malformed page keeps the last known state


@pytest.mark.parametrize("api", [WS, APP, SCRIPT], ids=lambda a: a[0])
async def test_truncated_page_keeps_every_job_and_publishes_nothing(api: Any) -> None:
    source, total_key, rows_key, _, api_name = api
    rows = _rows(source, 2)
    truncate = [False]

    def answer(path: str, params: Params) -> bytes:
        if truncate[0]:  # what the outside suite sent: the count of a stuck job, and no rows
            return json.dumps({total_key: len(rows), rows_key: []}).encode()
        return json.dumps({total_key: len(rows), rows_key: rows}).encode()

    src, t = _source_and_target(source)
    t = Target(source=t.source, region=t.region, project_id=t.project_id, job_types=t.job_types)  # narrow/full strategy
    client, store, state = FakeClient(handler=answer), MemoryStore(), TargetState()
    published: list[events.JobEvent] = []

    async def publish(batch: Sequence[events.JobEvent]) -> None:
        published.extend(batch)

    async def poll() -> tuple[list[tuple[str, str | None, str]], str | None]:
        published.clear()
        out = await poll_target(t, src, client, store, publish, intervals=Intervals(), force=True, state=state)
        return sorted((e.job_id, e.prev_status, e.status) for e in published), out.error

    first = rows[0]["id"], rows[1]["id"]
    assert await poll() == ([(first[0], None, "RUNNING"), (first[1], None, "RUNNING")], None)
    truncate[0] = True
    for _ in range(3):
        events_, error = await poll()
        assert events_ == []
        assert (
            error == f"malformed {api_name} response: no rows at offset 0 but a total of 2 api={api_name} project={PID}"
        )
    assert (store.open_jobs(t.id), state.failures) == (sorted(first), 3)
    assert [store.job_state(t.id, j).status for j in first] == ["RUNNING", "RUNNING"]
    truncate[0] = False
    assert await poll() == ([], None)  # nothing vanished, so nothing came back
    rows[0]["status"] = "FAILED"
    assert await poll() == ([(first[0], "RUNNING", "FAILED")], None)
