"""Finality: every source says which status words its API documents as final, and only those
end polling. Exact tables per source and word, the by-id parent rule (final only with every
sub-job final), and the narrow strategy re-reading a Workspace App sub-job that sits in
ABNORMAL / ROLLBACK / ABORTING (or an unknown word) on every poll through its parent.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.test_sources import (
    FakeClient,
    ScriptListing,
    _single,
    app_listing,
    app_rows,
    shape,
    target,
    task_rows,
    ws_listing,
    ws_rows,
)
from watcher.sources.appjob import AppJobSource
from watcher.sources.evs import EvsSource
from watcher.sources.script import ScriptSource
from watcher.sources.workspace import WorkspaceSource
from watcher.sources.workspaceapp import WorkspaceAppSource

# (source, status word, phase, final): every documented word of every API, plus unknown words.
FINAL_TABLE = [
    ("workspace", "WAITING", "pending", False), ("workspace", "RUNNING", "running", False),
    ("workspace", "SUCCESS", "succeeded", True), ("workspace", "FAILED", "failed", True),
    ("workspace", "CANCELLED", "other", False),
    ("workspaceapp", "WAITING", "pending", False), ("workspaceapp", "RUNNING", "running", False),
    ("workspaceapp", "SUCCESS", "succeeded", True), ("workspaceapp", "FAILED", "failed", True),
    ("workspaceapp", "ABNORMAL", "failed", False), ("workspaceapp", "ROLLBACK", "running", False),
    ("workspaceapp", "ABORTING", "running", False), ("workspaceapp", "failed", "failed", True),
    ("workspaceapp", "PAUSED", "other", False),
    ("appjob-v1", 0, "failed", True), ("appjob-v1", 1, "succeeded", True), ("appjob-v1", 2, "running", False),
    ("appjob-v1", 3, "pending", False), ("appjob-v1", 9, "other", False),
    ("appjob-v2", "WAITING", "pending", False), ("appjob-v2", "RUNNING", "running", False),
    ("appjob-v2", "SUCCESS", "succeeded", True), ("appjob-v2", "FAILED", "failed", True),
    ("appjob-v2", "ABNORMAL", "other", False), ("appjob-v2", "ROLLBACK", "other", False),
    ("script", "INIT", "pending", False), ("script", "WAITING", "pending", False), ("script", "RUNNING", "running", False),
    ("script", "FINISH", "succeeded", True), ("script", "SUCCESS", "succeeded", True), ("script", "FAILED", "failed", True),
    ("script", "DONE", "other", False),
    ("evs", "INIT", "pending", False), ("evs", "RUNNING", "running", False), ("evs", "SUCCESS", "succeeded", True),
    ("evs", "FAIL", "failed", True), ("evs", "FAILED", "other", False),
]  # fmt: skip


@pytest.mark.parametrize(("source", "status", "phase", "final"), FINAL_TABLE)
async def test_final_per_source_and_word(source: str, status: Any, phase: str, final: bool) -> None:
    src, t, active, handler = _single(source, status)
    [obs] = (await src.fetch(FakeClient(handler=handler), t, active)).observations
    assert (obs.status, obs.phase, obs.final) == (str(status), phase, final)


# Sub-jobs: the v2 App job's sub_jobs speak the workspaceapp words; v1 and EVS their own API's.
SUB_TABLE = [
    ("appjob-v2", "WAITING", False), ("appjob-v2", "RUNNING", False), ("appjob-v2", "SUCCESS", True),
    ("appjob-v2", "FAILED", True), ("appjob-v2", "ABNORMAL", False), ("appjob-v2", "ROLLBACK", False),
    ("appjob-v2", "ABORTING", False), ("appjob-v2", "PAUSED", False),
    ("appjob-v1", 0, True), ("appjob-v1", 1, True), ("appjob-v1", 2, False), ("appjob-v1", 3, False), ("appjob-v1", 7, False),
    ("evs", "INIT", False), ("evs", "RUNNING", False), ("evs", "SUCCESS", True), ("evs", "FAIL", True), ("evs", "FAILED", False),
]  # fmt: skip


def _parent_with_sub(source: str, parent_status: Any, sub_status: Any) -> tuple[Any, Any, bytes]:
    if source == "appjob-v2":
        body = {"id": "J", "status": parent_status, "sub_jobs": [{"id": "S", "job_id": "J", "status": sub_status}]}
        return AppJobSource(), target("appjob"), json.dumps(body).encode()
    if source == "appjob-v1":
        body = {
            "job": {"job_id": "J", "job_status": parent_status, "sub_jobs": [{"job_id": "S", "job_status": sub_status}]}
        }
        return AppJobSource(), target("appjob", api_version="v1"), json.dumps(body).encode()
    body = {"status": parent_status, "job_type": "batchCreateVolume",
            "entities": {"sub_jobs": [{"job_id": "S", "status": sub_status}]}}  # fmt: skip
    return EvsSource(), target("evs"), json.dumps(body).encode()


PARENT_DONE = {"appjob-v2": "FAILED", "appjob-v1": 0, "evs": "FAIL"}


@pytest.mark.parametrize(("source", "sub_status", "sub_final"), SUB_TABLE)
async def test_by_id_sub_job_final_and_parent_final_only_with_every_sub_job_final(
    source: str, sub_status: Any, sub_final: bool
) -> None:
    src, t, body = _parent_with_sub(source, PARENT_DONE[source], sub_status)
    top, sub = (await src.fetch(FakeClient(handler=lambda p, q: body), t, ["J"])).observations
    assert (sub.job_id, sub.parent_job_id, sub.status, sub.final) == ("S", "J", str(sub_status), sub_final)
    # The parent's own word is final; it is final as a job only when nothing under it can move.
    assert (top.job_id, top.status, top.final) == ("J", str(PARENT_DONE[source]), sub_final)


async def test_a_failed_app_job_with_a_sub_job_rolling_back_is_polled_until_the_rollback_ends() -> None:
    body = {"id": "J", "status": "FAILED", "sub_jobs": [
        {"id": "S1", "job_id": "J", "status": "FAILED"}, {"id": "S2", "job_id": "J", "status": "ROLLBACK"}]}  # fmt: skip
    client = FakeClient(handler=lambda p, q: json.dumps(body).encode())
    got = (await AppJobSource().fetch(client, target("appjob"), ["J"])).observations
    assert [(o.job_id, o.phase, o.final) for o in got] == [("J", "failed", False), ("S1", "failed", True),
                                                            ("S2", "running", False)]  # fmt: skip
    body["sub_jobs"][1]["status"] = "FAILED"
    got = (await AppJobSource().fetch(client, target("appjob"), ["J"])).observations
    assert [(o.job_id, o.final) for o in got] == [("J", True), ("S1", True), ("S2", True)]


# --------------------------------------------------------------------------------------------
# The narrow strategy keeps non-final rows open, whatever their phase


def _active(observations: Any, before: list[str]) -> list[str]:
    """What a poller that ends polling on ``final`` keeps: every id seen not final."""
    seen = {o.job_id: o.final for o in observations}
    return sorted({*(j for j in before if not seen.get(j, False)), *(j for j, f in seen.items() if not f)})


async def test_workspaceapp_sub_job_running_abnormal_rollback_failed_is_re_read_every_poll() -> None:
    history = app_rows(250)  # 3 pages of history: narrow polls are cheaper than a full listing
    sub = {"id": "s", "job_id": "P", "status": "RUNNING", "job_type": "CREATE_SERVER"}
    src, t = WorkspaceAppSource(sweep_every=100), target("workspaceapp", job_types=("CREATE_SERVER",))
    client = FakeClient(handler=app_listing([*history, sub]))
    first = await src.fetch(client, t, [])
    assert (first.requests, first.complete) == (3, True)
    active = _active(first.observations, [])
    assert active == ["s"]

    polls = []
    for status in ("RUNNING", "ABNORMAL", "ABNORMAL", "ROLLBACK", "ABORTING", "SOME_FUTURE_STATUS", "FAILED"):
        sub["status"] = status
        client.calls.clear()
        result = await src.fetch(client, t, active)
        [obs] = [o for o in result.observations if o.job_id == "s"]
        polls.append((obs.status, obs.phase, obs.final, shape(client), result.complete, result.gone))
        active = _active(result.observations, active)
    listed = [("status=WAITING",), ("status=RUNNING",)]
    reread = [*listed, ("job_id=P",)]
    assert polls == [
        ("RUNNING", "running", False, listed, False, []),
        # ABNORMAL alerts like a failure but is not final: re-read through the parent every poll,
        # never a full listing (the memo keeps the row open, so its handle is known).
        ("ABNORMAL", "failed", False, reread, False, []),
        ("ABNORMAL", "failed", False, reread, False, []),
        ("ROLLBACK", "running", False, reread, False, []),
        ("ABORTING", "running", False, reread, False, []),
        ("SOME_FUTURE_STATUS", "other", False, reread, False, []),
        ("FAILED", "failed", True, reread, False, []),
    ]
    assert active == []
    client.calls.clear()
    assert (await src.fetch(client, t, active)).requests == 2  # final: no longer re-read
    assert shape(client) == listed


async def test_workspace_unknown_word_stays_open_and_is_re_read() -> None:
    rows = ws_rows(1500, status="SUCCESS", parent="old") + ws_rows(1, status="RUNNING", parent="P", prefix="r")
    src, t = WorkspaceSource(sweep_every=100), target("workspace")
    client = FakeClient(handler=ws_listing(rows))
    await src.fetch(client, t, [])
    rows[-1]["status"] = "CANCELLED"  # no document names it: not final
    for _ in range(2):
        client.calls.clear()
        result = await src.fetch(client, t, ["r0"])
        assert [(o.job_id, o.status, o.final) for o in result.observations] == [("r0", "CANCELLED", False)]
        assert (result.requests, result.complete) == (2, False)  # open listing + job_id=P, not a full listing
        assert [tuple(v for k, v in p if k == "job_id") for _, p in client.keys] == [(), ("P",)]


async def test_script_unknown_word_stays_open_and_finish_with_failures_is_final() -> None:
    rows = task_rows(250) + task_rows(2, "RUNNING", prefix="r")
    src, t = ScriptSource(sweep_every=100), target("script")
    client = FakeClient(handler=ScriptListing(rows))
    await src.fetch(client, t, [])
    rows[250]["status"] = "PAUSED"
    rows[251].update(status="FINISH", failed_num=2)
    client.calls.clear()
    result = await src.fetch(client, t, ["r0", "r1"])
    assert {o.job_id: (o.status, o.phase, o.final) for o in result.observations} == {
        "r0": ("PAUSED", "other", False), "r1": ("FINISH", "failed", True)}  # fmt: skip
    assert shape(client) == [("status=WAITING",), ("status=RUNNING",), ("task_id=r0", "task_id=r1")]
    client.calls.clear()
    again = await src.fetch(client, t, ["r0"])  # r0 still open: re-read by id, without a full listing
    assert shape(client) == [("status=WAITING",), ("status=RUNNING",), ("task_id=r0",)]
    assert [(o.job_id, o.final) for o in again.observations] == [("r0", False)]


def test_final_tables_are_the_documented_words() -> None:
    from watcher.sources import appjob, evs, script, workspace, workspaceapp

    assert workspace.FINAL == {"SUCCESS", "FAILED"}
    assert workspaceapp.FINAL == appjob.SUB_JOB_FINAL == {"SUCCESS", "FAILED"}
    assert appjob.V1_FINAL == {"0", "1"} and appjob.V2_FINAL == {"SUCCESS", "FAILED"}
    assert script.FINAL == {"FINISH", "FAILED", "SUCCESS"}
    assert evs.FINAL == {"SUCCESS", "FAIL"}
