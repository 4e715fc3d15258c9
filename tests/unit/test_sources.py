"""Sources: every documented example body -> exact Observations; vocabularies; errors; paging; cost.

The client here is a small fake serving canned bodies keyed by (path, sorted params), or a
tiny in-memory listing server: what is under test is each source's request shape, parsing
and paging, not HTTP (the HTTP path is tested against the simulator elsewhere).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from watcher import events
from watcher.errors import CloudError, ConfigError, JobNotFound, MalformedResponse, ThrottledError
from watcher.events import Entities, TaskCounts
from watcher.poller.loop import Intervals, MemoryStore, poll_target
from watcher.sources import SOURCES, get_source
from watcher.sources.appjob import AppJobSource
from watcher.sources.base import Observation, Target
from watcher.sources.evs import EvsSource
from watcher.sources.paging import offset_pages
from watcher.sources.script import ScriptSource
from watcher.sources.workspace import WorkspaceSource
from watcher.sources.workspaceapp import WorkspaceAppSource

FIXTURES = Path(__file__).parent / "fixtures"
PID = "ac234de25c6741d2b1273da49eea1b9e"

Params = tuple[tuple[str, str], ...]
Handler = Callable[[str, Params], bytes]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def target(source: str, **kw: Any) -> Target:
    return Target(source=source, region="cn-north-4", project_id=PID, **kw)


class FakeClient:
    """Serves canned bodies keyed by (path, sorted params), or asks a handler; records every call."""

    def __init__(
        self, routes: dict[tuple[str, Params], bytes | Exception] | None = None, handler: Handler | None = None
    ):
        self.routes, self.handler = routes or {}, handler
        self.calls: list[dict[str, Any]] = []

    async def get(
        self, *, api: str, service: str, region: str, project_id: str, path: str, params: Sequence[tuple[str, str]] = ()
    ) -> bytes:
        key = (path, tuple(sorted(params)))
        self.calls.append({"api": api, "service": service, "region": region, "project_id": project_id, "key": key})
        if key in self.routes:
            answer = self.routes[key]
            if isinstance(answer, Exception):
                raise answer
            return answer
        if self.handler is not None:
            return self.handler(path, key[1])
        raise AssertionError(f"unexpected request {key}")

    @property
    def keys(self) -> list[tuple[str, Params]]:
        return [c["key"] for c in self.calls]


def q(*pairs: tuple[str, str]) -> Params:
    return tuple(sorted(pairs))


# --------------------------------------------------------------------------------------------
# Registry


def test_registry_names_match_the_event_contract():
    assert tuple(SOURCES) == events.SOURCES
    for name, source in SOURCES.items():
        assert source.name == name and get_source(name) is source
    assert {n: (s.service, s.by_id) for n, s in SOURCES.items()} == {
        "workspace": ("workspace", False),
        "workspaceapp": ("workspaceapp", False),
        "appjob": ("workspaceapp", True),
        "script": ("workspace", False),
        "evs": ("evs", True),
    }


def test_unknown_source_name_lists_the_valid_ones():
    with pytest.raises(
        ConfigError, match=r"unknown source 'ecs'; valid sources: workspace, workspaceapp, appjob, script, evs"
    ):
        get_source("ecs")


# --------------------------------------------------------------------------------------------
# Example bodies from the seeds / the API doc, verbatim -> exact Observations

WS_PATH = f"/v2/{PID}/workspace-sub-jobs"


async def test_workspace_s0_example_request_and_body():
    # S0's own example request: status twice, job_type createDesktops.
    key = (
        WS_PATH,
        q(
            ("job_type", "createDesktops"),
            ("status", "FAILED"),
            ("status", "RUNNING"),
            ("limit", "1000"),
            ("offset", "0"),
        ),
    )
    client = FakeClient({key: fixture("workspace_sub_jobs.json")})
    t = target("workspace", job_types=("createDesktops",), statuses=("FAILED", "RUNNING"))
    result = await WorkspaceSource().fetch(client, t, [])
    assert client.calls == [
        {
            "api": "workspace.list_sub_jobs",
            "service": "workspace",
            "region": "cn-north-4",
            "project_id": PID,
            "key": key,
        }
    ]
    assert result.requests == 1 and result.complete and result.gone == []
    parent = "0e2dae94-23ff-449a-bb9c-1b808cf2106d"
    common = dict(
        parent_job_id=parent,
        job_type="createDesktops",
        status="RUNNING",
        phase="running",
        begin_time=utc(2020, 4, 10, 6, 45, 14),
    )
    assert result.observations == [
        Observation(
            job_id="e43caef5-e478-4624-9e8c-b0b636331cbc",
            end_time=utc(2020, 4, 10, 7, 6, 10),
            entities=Entities(
                desktop_id="9d30c8ac-77b5-4453-80da-8f027223ee99",
                user_name="user-test-01",
                product_id="workspace.c2.large.windows",
            ),
            **common,
        ),
        Observation(
            job_id="cf5043e9-dd94-43be-9c07-6dba5d43c4d2",
            end_time=utc(2020, 4, 10, 7, 5, 49),
            entities=Entities(
                desktop_id="14cccba0-12a6-4b66-9fd9-57290328f8da",
                user_name="user-test-01",
                product_id="workspace.c2.large.windows",
            ),
            **common,
        ),
    ]


async def test_workspaceapp_s1_example_count_zero_with_one_item():
    path = f"/v1/{PID}/app-server-sub-jobs"
    key = (path, q(("job_type", "CREATE_SERVER"), ("limit", "100"), ("offset", "0")))
    client = FakeClient({key: fixture("workspaceapp_sub_jobs.json")})
    result = await WorkspaceAppSource().fetch(client, target("workspaceapp", job_types=("CREATE_SERVER",)), [])
    assert client.keys == [key] and client.calls[0]["service"] == "workspaceapp"
    assert result.requests == 1 and result.complete
    assert result.observations == [
        Observation(
            job_id="1",
            parent_job_id="1",
            job_type="CREATE_SERVER",
            status="WAITING",
            phase="pending",
            begin_time=utc(2022, 3, 7, 10, 40, 43, 858000),
            end_time=utc(2022, 3, 7, 10, 40, 43, 858000),
            error_code="WKS.00129901",
            message="The service is now unavailable to process the request.",
            entities=Entities(resource_id="a1a1245-xxxx123d-1425af14", resource_name="APS-20220902093902-AYOASWQDEJ"),
        )
    ]


async def test_appjob_v1_s2_example_integer_statuses():
    job = "575768277444198400"
    key = (f"/v1/{PID}/job/{job}", ())
    client = FakeClient({key: fixture("appjob_v1_job.json")})
    result = await AppJobSource().fetch(client, target("appjob", api_version="v1"), [job])
    assert (
        client.keys == [key]
        and client.calls[0]["api"] == "appjob.show_job"
        and client.calls[0]["service"] == "workspaceapp"
    )
    assert result.requests == 1 and result.gone == []
    assert result.observations == [
        Observation(
            job_id=job,
            job_type="1",
            status="0",
            phase="failed",
            final=True,
            begin_time=utc(2023, 6, 6, 2, 30, 6),
            end_time=utc(2023, 6, 6, 2, 45, 49),
        ),
        Observation(
            job_id="575768277481947136",
            parent_job_id=job,
            job_type="2",
            status="0",
            phase="failed",
            final=True,
            begin_time=utc(2023, 6, 6, 2, 30, 6),
            end_time=utc(2023, 6, 6, 2, 45, 49),
        ),
    ]


# No source has a v2 example: this body is shaped after the SDK model (ShowJobDetailResponse).
APPJOB_V2 = {
    "id": "job-1",
    "job_type": "CREATE_SERVER",
    "begin_time": "2024-05-01T08:00:00.000Z",
    "end_time": "",
    "status": "RUNNING",
    "sub_jobs_total": 2,
    "sub_jobs": [
        {"id": "sub-1", "job_type": "CREATE_SERVER", "status": "SUCCESS", "job_id": "job-1", "project_id": PID,
         "job_resource_info": {"resource_id": "srv-1", "resource_name": "APS-1"},
         "begin_time": "2024-05-01T08:00:00.000Z", "end_time": "2024-05-01T08:05:00.000Z"},
        {"id": "sub-2", "job_type": "CREATE_SERVER", "status": "ABNORMAL", "job_id": "job-1",
         "error_code": "WKS.001", "error_message": "boom", "begin_time": "2024-05-01T08:00:00.000Z"},
    ],
}  # fmt: skip


async def test_appjob_v2_is_the_default_and_yields_job_and_sub_jobs():
    client = FakeClient({(f"/v2/{PID}/job/job-1", ()): json.dumps(APPJOB_V2).encode()})
    result = await AppJobSource().fetch(client, target("appjob"), ["job-1"])
    assert client.calls[0]["api"] == "appjob.show_job_detail"
    assert result.observations == [
        Observation(
            job_id="job-1", job_type="CREATE_SERVER", status="RUNNING", phase="running", begin_time=utc(2024, 5, 1, 8)
        ),
        Observation(
            job_id="sub-1",
            parent_job_id="job-1",
            job_type="CREATE_SERVER",
            status="SUCCESS",
            phase="succeeded",
            final=True,
            begin_time=utc(2024, 5, 1, 8),
            end_time=utc(2024, 5, 1, 8, 5),
            entities=Entities(resource_id="srv-1", resource_name="APS-1"),
        ),
        Observation(
            job_id="sub-2",
            parent_job_id="job-1",
            job_type="CREATE_SERVER",
            status="ABNORMAL",
            phase="failed",
            begin_time=utc(2024, 5, 1, 8),
            error_code="WKS.001",
            message="boom",
        ),
    ]


async def test_script_s3_example_placeholder_strings():
    path = f"/v2/{PID}/desktop-pools/script-execution-tasks/detail"  # not S3's "desktops-pools" typo
    key = (path, q(("limit", "100"), ("offset", "0")))
    client = FakeClient({key: fixture("script_tasks.json")})
    result = await ScriptSource().fetch(client, target("script"), [])
    assert (
        client.keys == [key]
        and client.calls[0]["service"] == "workspace"
        and client.calls[0]["api"] == "script.list_tasks"
    )
    assert result.requests == 1 and result.complete
    assert result.observations == [
        Observation(
            job_id="string",
            job_type="SCRIPT",
            status="string",  # S3's placeholder: an unknown word passes through as "other"
            phase="other",
            begin_time=None,  # "string" is no time
            end_time=None,
            entities=Entities(desktop_pool_id="string", desktop_pool_name="string", scripts=("string",)),
            counts=TaskCounts(success=0, failed=0, skipped=0),
        )
    ]


EVS_JOB = "ff808081692a62c70169b4dcf9514264"  # S4's example request id


async def test_evs_s4_running_example():
    client = FakeClient({(f"/v1/{PID}/jobs/{EVS_JOB}", ()): fixture("evs_running.json")})
    result = await EvsSource().fetch(client, target("evs"), [EVS_JOB])
    assert client.calls[0]["api"] == "evs.show_job" and client.calls[0]["service"] == "evs"
    assert result.requests == 1 and result.gone == []
    # The observation carries the id asked for (the example body names another one).
    assert result.observations == [
        Observation(
            job_id=EVS_JOB,
            job_type="createVolume",
            status="RUNNING",
            phase="running",
            begin_time=utc(2016, 3, 8, 7, 40, 13, 219000),
            end_time=None,  # "" while running
            entities=Entities(volume_id="bdf1bb37-f20f-4266-9a04-f43e0a127376"),
        )
    ]


async def test_evs_s4_batch_example_sub_jobs_have_the_batch_as_parent():
    batch = "21917a8d52a19b040152a9f2f1eb003e"
    client = FakeClient({(f"/v1/{PID}/jobs/{batch}", ()): fixture("evs_batch.json")})
    result = await EvsSource().fetch(client, target("evs"), [batch])
    assert result.observations == [
        Observation(job_id=batch, job_type="batchCreateVolume", status="SUCCESS", phase="succeeded", final=True,
                    begin_time=utc(2016, 2, 4, 1, 43, 37, 193000), end_time=utc(2016, 2, 4, 1, 44, 8, 283000)),
        Observation(job_id="21917a8d52a19b040152a9f2f2e50041", parent_job_id=batch, job_type="createVolume", status="SUCCESS",
                    phase="succeeded", final=True, begin_time=utc(2016, 2, 4, 1, 43, 37, 445000), end_time=utc(2016, 2, 4, 1, 44, 2, 239000),
                    entities=Entities(volume_id="0b549095-4937-4849-8e4c-52aa027d64f7")),
        Observation(job_id="21917a8d52a19b040152a9f2f2f60042", parent_job_id=batch, job_type="createVolume", status="SUCCESS",
                    phase="succeeded", final=True, begin_time=utc(2016, 2, 4, 1, 43, 37, 462000), end_time=utc(2016, 2, 4, 1, 44, 2, 245000),
                    entities=Entities(volume_id="e7bca1a2-d3ed-434f-86f4-a1f11aa80072")),
    ]  # fmt: skip


async def test_evs_s4_error_body_on_200_is_a_cloud_error_naming_the_code():
    client = FakeClient({(f"/v1/{PID}/jobs/{EVS_JOB}", ()): fixture("evs_error.json")})
    with pytest.raises(CloudError, match=r"evs.show_job answered 200 with an error for job .*: XXXX") as info:
        await EvsSource().fetch(client, target("evs"), [EVS_JOB])
    assert info.value.error_code == "XXX" and info.value.api == "evs.show_job" and info.value.project_id == PID
    assert not isinstance(info.value, JobNotFound)


# --------------------------------------------------------------------------------------------
# EVS / appjob: by-id details


async def test_evs_volume_fields_failure_and_error_fallback():
    body = {"status": "FAIL", "job_id": "j", "job_type": "extendVolume", "begin_time": "2016-03-08T07:40:13.219Z",
            "end_time": "2016-03-08T07:41:00.000Z", "error_code": "EVS.2024", "fail_reason": "quota",
            "entities": {"volume_id": "v", "name": "data-1", "size": 40, "volume_type": "SSD"}}  # fmt: skip
    client = FakeClient({(f"/v1/{PID}/jobs/j", ()): json.dumps(body).encode()})
    [obs] = (await EvsSource().fetch(client, target("evs"), ["j"])).observations
    assert (obs.status, obs.phase, obs.error_code, obs.message) == ("FAIL", "failed", "EVS.2024", "quota")
    assert obs.entities == Entities(volume_id="v", volume_name="data-1", size_gb=40, volume_type="SSD")

    body = {
        "status": "FAIL",
        "error_code": None,
        "fail_reason": None,
        "error": {"code": "EVS.5400", "message": "no capacity"},
    }
    client = FakeClient({(f"/v1/{PID}/jobs/j", ()): json.dumps(body).encode()})
    [obs] = (await EvsSource().fetch(client, target("evs"), ["j"])).observations
    assert (obs.job_id, obs.phase, obs.error_code, obs.message) == ("j", "failed", "EVS.5400", "no capacity")


async def test_evs_init_is_pending():
    client = FakeClient({(f"/v1/{PID}/jobs/j", ()): b'{"status": "INIT", "job_type": "createVolume"}'})
    [obs] = (await EvsSource().fetch(client, target("evs"), ["j"])).observations
    assert (obs.status, obs.phase) == ("INIT", "pending")


async def test_by_id_not_found_goes_to_gone_and_others_still_report():
    client = FakeClient({
        (f"/v1/{PID}/jobs/missing", ()): JobNotFound("query job fail.", api="evs.show_job", status=400, error_code="Common.0011"),
        (f"/v1/{PID}/jobs/error-body", ()): b'{"error": {"code": "Common.0011", "message": "No jobs found."}}',
        (f"/v1/{PID}/jobs/ok", ()): b'{"status": "SUCCESS", "job_type": "deleteVolume"}',
    })  # fmt: skip
    result = await EvsSource().fetch(client, target("evs"), ["missing", "ok", "error-body", "ok"])
    assert result.gone == ["missing", "error-body"]
    assert [(o.job_id, o.phase) for o in result.observations] == [("ok", "succeeded")]
    assert result.requests == 3  # duplicates in active are asked once


async def test_appjob_not_found_goes_to_gone():
    client = FakeClient({(f"/v2/{PID}/job/nope", ()): JobNotFound("404", api="appjob.show_job_detail", status=404)})
    result = await AppJobSource().fetch(client, target("appjob"), ["nope"])
    assert (result.observations, result.gone, result.requests) == ([], ["nope"], 1)


async def test_by_id_other_failures_fail_the_poll():
    client = FakeClient({
        (f"/v1/{PID}/jobs/a", ()): b'{"status": "RUNNING"}',
        (f"/v1/{PID}/jobs/b", ()): ThrottledError("slow down", api="evs.show_job", status=429),
    })  # fmt: skip
    with pytest.raises(ThrottledError):
        await EvsSource().fetch(client, target("evs"), ["a", "b"])
    assert len(client.calls) == 2  # every call finished; none left running


async def test_by_id_fetches_exactly_active_and_encodes_path_segments():
    client = FakeClient(handler=lambda path, params: b'{"status": "RUNNING"}')
    result = await EvsSource().fetch(client, target("evs", job_ids=("configured",)), ["a/b c", "ns:x", "x"])
    # An id that is not one ("a/b c") gets no request: no URL is built from it, it is dropped as gone.
    assert client.keys == [(f"/v1/{PID}/jobs/ns%3Ax", ()), (f"/v1/{PID}/jobs/x", ())]
    assert [o.job_id for o in result.observations] == ["ns:x", "x"]
    assert result.gone == ["a/b c"]
    assert (await EvsSource().fetch(client, target("evs"), [])).requests == 0


async def test_appjob_v1_main_resource_and_execute_fields():
    body = {"job": {"job_id": "J", "job_type": 1, "job_status": 2, "execute_code": "", "execute_message": "",
                    "sub_jobs": [{"job_id": "S", "job_type": 2, "job_status": 0, "execute_code": "WKS.1", "execute_message": "no quota",
                                  "entities": [{"resource_id": "vol", "resource_name": "disk", "is_main_resource": 0},
                                               {"resource_id": "srv", "resource_name": "APS-1", "is_main_resource": 1}]},
                                 {"job_id": "T", "job_type": 2, "job_status": 3, "entities": [{"resource_id": "only"}]}]}}  # fmt: skip
    client = FakeClient({(f"/v1/{PID}/job/J", ()): json.dumps(body).encode()})
    result = await AppJobSource().fetch(client, target("appjob", api_version="v1"), ["J"])
    got = [
        (o.job_id, o.parent_job_id, o.status, o.phase, o.error_code, o.message, o.entities.resource_id)
        for o in result.observations
    ]
    assert got == [
        ("J", None, "2", "running", None, None, None),
        ("S", "J", "0", "failed", "WKS.1", "no quota", "srv"),
        ("T", "J", "3", "pending", None, None, "only"),
    ]


async def test_appjob_rejects_unknown_api_version_without_requests():
    client = FakeClient()
    with pytest.raises(ConfigError, match="api_version must be 'v1' or 'v2', got 'v3'"):
        await AppJobSource().fetch(client, target("appjob", api_version="v3"), ["J"])
    assert client.calls == []


# --------------------------------------------------------------------------------------------
# Vocabularies: every documented word, and unknown words pass through as "other"

PHASE_TABLE = [
    ("workspace", "WAITING", "pending"), ("workspace", "RUNNING", "running"), ("workspace", "SUCCESS", "succeeded"),
    ("workspace", "FAILED", "failed"), ("workspace", "CANCELLED", "other"),
    ("workspaceapp", "WAITING", "pending"), ("workspaceapp", "RUNNING", "running"), ("workspaceapp", "SUCCESS", "succeeded"),
    ("workspaceapp", "FAILED", "failed"), ("workspaceapp", "ABNORMAL", "failed"), ("workspaceapp", "ROLLBACK", "running"),
    ("workspaceapp", "ABORTING", "running"), ("workspaceapp", "running", "running"), ("workspaceapp", "PAUSED", "other"),
    ("appjob-v1", 0, "failed"), ("appjob-v1", 1, "succeeded"), ("appjob-v1", 2, "running"), ("appjob-v1", 3, "pending"),
    ("appjob-v1", 9, "other"), ("appjob-v2", "WAITING", "pending"), ("appjob-v2", "SUCCESS", "succeeded"),
    ("appjob-v2", "FAILED", "failed"), ("appjob-v2", "ROLLBACK", "other"),
    ("script", "INIT", "pending"), ("script", "RUNNING", "running"), ("script", "FINISH", "succeeded"),
    ("script", "FAILED", "failed"), ("script", "SUCCESS", "succeeded"), ("script", "WAITING", "pending"), ("script", "DONE", "other"),
    ("evs", "INIT", "pending"), ("evs", "RUNNING", "running"), ("evs", "SUCCESS", "succeeded"), ("evs", "FAIL", "failed"),
    ("evs", "FAILED", "other"),
]  # fmt: skip


def _single(source: str, status: Any, job_type: str = "SOME_FUTURE_TYPE") -> tuple[Any, Target, list[str], Handler]:
    """A source, target, active list and handler answering one job with ``status`` and ``job_type``."""
    if source == "workspace":
        row = {"id": "x", "job_id": "p", "status": status, "job_type": job_type}
        return (
            WorkspaceSource(),
            target("workspace", statuses=("RUNNING",)),
            [],
            lambda p, q: json.dumps({"total_count": 1, "jobs": [row]}).encode(),
        )
    if source == "workspaceapp":
        row = {"id": "x", "job_id": "p", "status": status, "job_type": job_type}
        return (
            WorkspaceAppSource(),
            target("workspaceapp", job_types=("CREATE_SERVER",)),
            [],
            lambda p, q: json.dumps({"count": 1, "items": [row]}).encode(),
        )
    if source == "appjob-v1":
        body = {"job": {"job_id": "x", "job_type": 1, "job_status": status}}
        return AppJobSource(), target("appjob", api_version="v1"), ["x"], lambda p, q: json.dumps(body).encode()
    if source == "appjob-v2":
        return (
            AppJobSource(),
            target("appjob"),
            ["x"],
            lambda p, q: json.dumps({"id": "x", "status": status, "job_type": job_type}).encode(),
        )
    if source == "script":
        row = {"id": "x", "status": status}
        return (
            ScriptSource(),
            target("script", job_types=(job_type,)),
            [],
            lambda p, q: json.dumps({"total_count": 1, "script_execution_tasks": [row]}).encode(),
        )
    return EvsSource(), target("evs"), ["x"], lambda p, q: json.dumps({"status": status, "job_type": job_type}).encode()


@pytest.mark.parametrize(("source", "status", "phase"), PHASE_TABLE)
async def test_status_vocabulary(source: str, status: Any, phase: str):
    src, t, active, handler = _single(source, status)
    [obs] = (await src.fetch(FakeClient(handler=handler), t, active)).observations
    assert (obs.status, obs.phase) == (str(status), phase)
    if source != "appjob-v1":
        assert obs.job_type == "SOME_FUTURE_TYPE"  # unknown job types pass through untouched


@pytest.mark.parametrize(("failed", "phase"), [(0, "succeeded"), (2, "failed")])
async def test_script_finish_with_failed_desktops_is_failed(failed: int, phase: str):
    row = {"id": "t", "status": "FINISH", "success_num": 8, "failed_num": failed, "skip_num": 1, "command_content": "dir",
           "command_type": "BAT", "start_time": "2024-01-02T03:04:05Z", "end_time": "2024-01-02T03:05:05Z"}  # fmt: skip
    client = FakeClient(handler=lambda p, q: json.dumps({"total_count": 1, "script_execution_tasks": [row]}).encode())
    [obs] = (await ScriptSource().fetch(client, target("script"), [])).observations
    assert (obs.status, obs.phase, obs.job_type) == ("FINISH", phase, "COMMAND")
    assert obs.counts == TaskCounts(success=8, failed=failed, skipped=1)
    assert (obs.begin_time, obs.end_time) == (utc(2024, 1, 2, 3, 4, 5), utc(2024, 1, 2, 3, 5, 5))


# --------------------------------------------------------------------------------------------
# Malformed bodies -> MalformedResponse naming api, project and the msgspec path

GOOD_ROW = {"id": "a", "job_id": "p", "status": "RUNNING", "job_type": "createDesktops"}

MALFORMED = [
    ("workspace", {"total_count": 4, "jobs": [GOOD_ROW, GOOD_ROW, GOOD_ROW, {"id": "d", "status": 7}]}, r"\$\.jobs\[3\]\.status"),
    ("workspace", {"total_count": 1, "jobs": [{"id": "d"}]}, r"missing required field `status` - at `\$\.jobs\[0\]`"),
    ("workspace", {"total_count": "many", "jobs": []}, r"\$\.total_count"),
    ("workspaceapp", {"count": 1, "items": [{"id": "x", "status": "RUNNING", "job_resource_info": "srv"}]}, r"\$\.items\[0\]\.job_resource_info"),
    ("appjob-v1", {"job": {"job_id": "x", "job_status": None}}, r"\$\.job\.job_status"),
    ("appjob-v2", {"id": "x", "status": "RUNNING", "sub_jobs": [{"id": "s"}]}, r"\$\.sub_jobs\[0\]"),
    ("script", {"total_count": 1, "script_execution_tasks": [{"id": "t", "status": "INIT", "failed_num": "two"}]}, r"\$\.script_execution_tasks\[0\]\.failed_num"),
    ("evs", {"status": "RUNNING", "entities": {"sub_jobs": [{"job_id": "s", "status": ["FAIL"]}]}}, r"\$\.entities\.sub_jobs\[0\]\.status"),
    ("evs", {"job_id": "x"}, r"no `status` and no `error`"),
    ("evs", [1, 2], r"Expected `object`, got `array`"),
]  # fmt: skip


@pytest.mark.parametrize(("source", "body", "path"), MALFORMED)
async def test_malformed_body_names_api_project_and_path(source: str, body: Any, path: str):
    src, t, active, _ = _single(source, "RUNNING")
    client = FakeClient(handler=lambda p, q: json.dumps(body).encode())
    with pytest.raises(MalformedResponse, match=path) as info:
        await src.fetch(client, t, active)
    err = info.value
    assert err.api == client.calls[-1]["api"] and f"api={err.api}" in str(err)
    assert err.project_id == PID and f"project={PID}" in str(err)


@pytest.mark.parametrize("source", ["workspace", "workspaceapp", "appjob-v1", "appjob-v2", "script", "evs"])
async def test_non_json_body_is_malformed(source: str):
    src, t, active, _ = _single(source, "RUNNING")
    with pytest.raises(MalformedResponse, match="malformed .* response, not JSON"):
        await src.fetch(FakeClient(handler=lambda p, q: b"<html>502 Bad Gateway</html>"), t, active)


async def test_unknown_fields_and_nulls_are_tolerated():
    row = {**GOOD_ROW, "process": 40, "host": "10.0.0.1", "entities": None, "begin_time": None, "end_time": "",
           "error_code": "", "fail_reason": None, "message": "S0-style reason", "ip_address": "10.1.1.1", "brand_new": {"x": [1]}}  # fmt: skip
    client = FakeClient(handler=lambda p, q: json.dumps({"total_count": 1, "jobs": [row], "extra": True}).encode())
    [obs] = (await WorkspaceSource().fetch(client, target("workspace", statuses=("RUNNING",)), [])).observations
    assert obs == Observation(job_id="a", parent_job_id="p", job_type="createDesktops", status="RUNNING", phase="running",
                              message="S0-style reason", entities=Entities(ip_address="10.1.1.1"))  # fmt: skip
    client = FakeClient(handler=lambda p, q: b'{"total_count": 0, "jobs": null}')
    assert (await WorkspaceSource().fetch(client, target("workspace", statuses=("RUNNING",)), [])).observations == []


# --------------------------------------------------------------------------------------------
# Paging


class Listing:
    """A list API over ``rows``: filters by the params it knows, pages by offset/limit."""

    def __init__(self, rows: list[dict[str, Any]], *, items: str, total: str, max_limit: int, filters: dict[str, str]):
        self.rows, self.items, self.total, self.max_limit, self.filters = rows, items, total, max_limit, filters

    def __call__(self, path: str, params: Params) -> bytes:
        multi: dict[str, list[str]] = {}
        for k, v in params:
            multi.setdefault(k, []).append(v)
        limit = int(multi.get("limit", ["10"])[0])
        assert 1 <= limit <= self.max_limit, f"limit {limit} out of range"
        offset = int(multi.get("offset", ["0"])[0])
        match = [
            r for r in self.rows if all(r.get(field) in multi[p] for p, field in self.filters.items() if p in multi)
        ]
        return json.dumps({self.total: len(match), self.items: match[offset : offset + limit]}).encode()


def ws_rows(
    n: int, status: str = "SUCCESS", parent: str = "p", prefix: str = "s", job_type: str = "createDesktops"
) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}{i}", "job_id": parent, "status": status, "job_type": job_type} for i in range(n)]


def ws_listing(rows: list[dict[str, Any]]) -> Listing:
    return Listing(rows, items="jobs", total="total_count", max_limit=1000,
                   filters={"status": "status", "job_type": "job_type", "job_id": "job_id", "desktop_pool_id": "desktop_pool_id"})  # fmt: skip


def offsets(client: FakeClient) -> list[tuple[str, ...]]:
    return [tuple(v for k, v in params if k in ("offset", "limit")) for _, params in client.keys]


@pytest.mark.parametrize(("rows", "expected"), [(0, 1), (1, 1), (1000, 1), (1001, 2), (2500, 3)])
async def test_workspace_pages_to_the_end(rows: int, expected: int):
    client = FakeClient(handler=ws_listing(ws_rows(rows)))
    result = await WorkspaceSource().fetch(client, target("workspace", statuses=("SUCCESS",)), [])
    assert result.requests == len(client.calls) == expected
    assert len(result.observations) == rows
    assert offsets(client) == [("1000", str(i * 1000)) for i in range(expected)]


@pytest.mark.parametrize(("rows", "expected"), [(0, 1), (100, 1), (200, 2), (250, 3)])
async def test_workspaceapp_pages_by_100(rows: int, expected: int):
    data = [{"id": f"x{i}", "job_id": "j", "status": "RUNNING", "job_type": "CREATE_SERVER"} for i in range(rows)]
    client = FakeClient(
        handler=Listing(data, items="items", total="count", max_limit=100, filters={"job_type": "job_type"})
    )
    result = await WorkspaceAppSource().fetch(client, target("workspaceapp", job_types=("CREATE_SERVER",)), [])
    assert (result.requests, len(result.observations)) == (expected, rows)
    assert offsets(client) == [("100", str(i * 100)) for i in range(expected)]


async def test_script_pages_by_100_and_sends_filters():
    data = [{"id": f"t{i}", "status": "RUNNING", "desktop_pool_id": "pool-1"} for i in range(150)]
    client = FakeClient(
        handler=Listing(data, items="script_execution_tasks", total="total_count", max_limit=100, filters={})
    )
    t = target("script", job_types=("SCRIPT",), statuses=("FINISH",), desktop_pool_id="pool-1", job_ids=("t-2", "t-1"))
    result = await ScriptSource().fetch(client, t, [])
    assert result.requests == 2 and len(result.observations) == 150
    assert client.keys[0][1] == q(("desktop_pool_id", "pool-1"), ("limit", "100"), ("offset", "0"), ("status", "SUCCESS"),
                                  ("task_id", "t-1"), ("task_id", "t-2"), ("task_type", "SCRIPT"))  # fmt: skip
    assert {o.job_type for o in result.observations} == {"SCRIPT"}


async def test_missing_total_stops_on_a_short_page():
    served = list(range(25))

    async def no_total(offset: int, limit: int) -> tuple[list[int], int | None]:
        return served[offset : offset + limit], None

    pages = [list(p) async for p in offset_pages(no_total, limit=10)]
    assert pages == [served[0:10], served[10:20], served[20:25]]


async def test_workspaceapp_requires_job_type():
    client = FakeClient()
    with pytest.raises(ConfigError, match="requires a job_type; set job_types to one or more of CREATE_SERVER"):
        await WorkspaceAppSource().fetch(client, target("workspaceapp"), [])
    assert client.calls == []


async def test_workspaceapp_one_stream_per_job_type_and_status():
    client = FakeClient(handler=lambda p, q: b'{"count": 0, "items": []}')
    t = target("workspaceapp", job_types=("CREATE_SERVER", "DELETE_SERVER"), statuses=("FAILED", "ABNORMAL"))
    result = await WorkspaceAppSource().fetch(client, t, [])
    assert result.requests == 4
    assert [dict(p)["job_type"] + "/" + dict(p)["status"] for _, p in client.keys] == [
        "CREATE_SERVER/FAILED", "CREATE_SERVER/ABNORMAL", "DELETE_SERVER/FAILED", "DELETE_SERVER/ABNORMAL"
    ]  # fmt: skip


async def test_workspace_one_stream_per_job_type_with_pool_filter():
    rows = ws_rows(3, status="RUNNING", job_type="createDesktops") + ws_rows(
        2, status="FAILED", prefix="v", job_type="addVolumes"
    )
    for r in rows:
        r["desktop_pool_id"] = "pool-1"
    client = FakeClient(handler=ws_listing(rows))
    t = target(
        "workspace",
        job_types=("createDesktops", "addVolumes"),
        statuses=("RUNNING", "FAILED"),
        desktop_pool_id="pool-1",
    )
    result = await WorkspaceSource().fetch(client, t, [])
    assert result.requests == 2 and len(result.observations) == 5
    assert client.keys[1][1] == q(("desktop_pool_id", "pool-1"), ("job_type", "addVolumes"), ("limit", "1000"), ("offset", "0"),
                                  ("status", "FAILED"), ("status", "RUNNING"))  # fmt: skip


# --------------------------------------------------------------------------------------------
# Workspace cost strategy: full listing when it is as cheap, narrow listing + parent re-reads otherwise


def statuses_of(client: FakeClient, i: int) -> tuple[str, ...]:
    return tuple(v for k, v in client.keys[i][1] if k == "status")


def job_ids_of(client: FakeClient, i: int) -> tuple[str, ...]:
    return tuple(v for k, v in client.keys[i][1] if k == "job_id")


async def test_small_history_is_listed_in_full_every_poll():
    rows = ws_rows(5, status="SUCCESS") + ws_rows(2, status="RUNNING", prefix="r")
    src, t = WorkspaceSource(), target("workspace", job_types=("createDesktops",))
    client = FakeClient(handler=ws_listing(rows))
    for _ in range(3):
        result = await src.fetch(client, t, ["r0", "r1"])
        assert (result.requests, result.complete, result.gone, len(result.observations)) == (1, True, [], 7)
    assert all(statuses_of(client, i) == () for i in range(3))


async def test_large_history_polls_only_open_rows_and_re_reads_parents_of_departed_jobs():
    history = ws_rows(2500, status="SUCCESS", parent="old")
    open_rows = ws_rows(3, status="RUNNING", parent="P", prefix="r") + ws_rows(
        1, status="WAITING", parent="Q", prefix="w"
    )
    rows = history + open_rows
    src, t = WorkspaceSource(sweep_every=100), target("workspace", job_types=("createDesktops",))
    client = FakeClient(handler=ws_listing(rows))

    first = await src.fetch(client, t, [])  # nothing known yet: full listing
    assert (first.requests, first.complete, len(first.observations)) == (3, True, 2504)
    active = ["r0", "r1", "r2", "w0"]

    client.calls.clear()
    second = await src.fetch(client, t, active)  # nothing moved: the floor, one page of open rows
    assert (second.requests, second.complete, second.gone) == (1, False, [])
    assert statuses_of(client, 0) == ("RUNNING", "WAITING")
    assert sorted(o.job_id for o in second.observations) == active

    # r0 fails, w0 succeeds and a sibling under P fails fast without ever being seen open;
    # r2 is deleted upstream.
    open_rows[0]["status"], open_rows[3]["status"] = "FAILED", "SUCCESS"
    rows.append({"id": "fast", "job_id": "P", "status": "FAILED", "job_type": "createDesktops"})
    rows.remove(open_rows[2])
    client.calls.clear()
    third = await src.fetch(client, t, active)
    assert third.requests == 3  # open listing + one re-read per parent (P, Q)
    assert sorted(job_ids_of(client, i) for i in (1, 2)) == [("P",), ("Q",)]
    assert statuses_of(client, 1) == ()  # any status: the terminal row and fast siblings
    got = {o.job_id: o.status for o in third.observations}
    assert got == {"r0": "FAILED", "r1": "RUNNING", "w0": "SUCCESS", "fast": "FAILED"}
    assert (third.complete, third.gone) == (False, ["r2"])

    client.calls.clear()
    fourth = await src.fetch(client, t, ["r1"])
    assert (fourth.requests, fourth.gone, [o.job_id for o in fourth.observations]) == (1, [], ["r1"])


async def test_many_departed_parents_switch_to_one_full_listing():
    history = ws_rows(1500, status="SUCCESS", parent="old")
    open_rows = [
        {"id": f"r{i}", "job_id": f"P{i}", "status": "RUNNING", "job_type": "createDesktops"} for i in range(3)
    ]
    src, t = WorkspaceSource(sweep_every=100), target("workspace")
    client = FakeClient(handler=ws_listing(history + open_rows))
    await src.fetch(client, t, [])
    for r in open_rows:
        r["status"] = "SUCCESS"
    client.calls.clear()
    result = await src.fetch(client, t, ["r0", "r1", "r2"])
    # 3 parents to re-read > 2 pages of the full listing: open listing + full listing.
    assert result.requests == 3 and result.complete and result.gone == []
    assert {o.job_id: o.status for o in result.observations if o.job_id.startswith("r")} == dict.fromkeys(
        ("r0", "r1", "r2"), "SUCCESS"
    )


async def test_full_sweep_every_n_polls_finds_jobs_that_started_and_ended_unseen():
    rows = ws_rows(1200, status="SUCCESS", parent="old")
    src, t = WorkspaceSource(sweep_every=3), target("workspace")
    client = FakeClient(handler=ws_listing(rows))
    kinds = []
    for i in range(7):
        if i == 2:
            rows.append({"id": "unseen", "job_id": "X", "status": "FAILED", "job_type": "createDesktops"})
        client.calls.clear()
        result = await src.fetch(client, t, [])
        kinds.append(
            (
                "full" if result.complete else "narrow",
                result.requests,
                "unseen" in {o.job_id for o in result.observations},
            )
        )
    assert kinds == [
        ("full", 2, False), ("narrow", 1, False), ("narrow", 1, False), ("full", 2, True),
        ("narrow", 1, False), ("narrow", 1, False), ("full", 2, True),
    ]  # fmt: skip


async def test_a_full_sweep_at_least_every_sweep_seconds_bounds_how_late_a_quick_failure_is_seen():
    """A job refused at once starts and fails between two polls: the open listing never shows
    it; the timed sweep does, within ``sweep_seconds`` however rarely the count sweep comes."""
    rows = ws_rows(1200, status="SUCCESS", parent="old")
    now = [0.0]
    src, t = WorkspaceSource(sweep_every=1000, sweep_seconds=60, clock=lambda: now[0]), target("workspace")
    client = FakeClient(handler=ws_listing(rows))
    seen_at = []
    for i in range(8):  # a poll every 20 s
        now[0] = i * 20.0
        if i == 1:
            rows.append({"id": "refused", "job_id": "X", "status": "FAILED", "job_type": "createDesktops"})
        result = await src.fetch(client, t, [])
        seen_at += [(now[0], result.complete) for o in result.observations if o.job_id == "refused"]
    assert seen_at == [(60.0, True), (120.0, True)]


async def test_active_ids_with_unknown_parents_force_a_full_listing():
    rows = ws_rows(1500, status="SUCCESS", parent="old") + ws_rows(1, status="RUNNING", parent="P", prefix="r")
    client = FakeClient(handler=ws_listing(rows))
    src, t = WorkspaceSource(), target("workspace")
    await src.fetch(client, t, [])
    client.calls.clear()
    # A fresh process (restart) inherits the poller's active set but not the source's memo.
    result = await WorkspaceSource().fetch(client, t, ["r0", "ghost"])
    assert (result.requests, result.complete, result.gone) == (2, True, ["ghost"])


async def test_workspace_strategy_through_the_poller_publishes_each_transition_once():
    history = ws_rows(1500, status="SUCCESS", parent="old")
    live = ws_rows(2, status="RUNNING", parent="P", prefix="r")
    rows = history + live
    client = FakeClient(handler=ws_listing(rows))
    src, t, store = WorkspaceSource(sweep_every=50), target("workspace", job_types=("createDesktops",)), MemoryStore()
    published: list[events.JobEvent] = []

    async def publish(evs: Sequence[events.JobEvent]) -> None:
        published.extend(evs)

    async def poll() -> list[tuple[str, str | None, str, str]]:
        published.clear()
        await poll_target(t, src, client, store, publish, intervals=Intervals(), force=True)
        return sorted((e.job_id, e.prev_status, e.status, e.change) for e in published)

    assert len(await poll()) == 1502  # first sighting of everything
    assert await poll() == []
    live[0]["status"] = "FAILED"
    assert await poll() == [("r0", "RUNNING", "FAILED", "changed")]
    rows.remove(live[1])
    assert await poll() == []  # missing from one answer: not yet gone (a short answer proves little)
    assert await poll() == [("r1", "RUNNING", "VANISHED", "vanished")]
    assert await poll() == []
    assert "r1" not in store.open_jobs(t.id)


# --------------------------------------------------------------------------------------------
# Narrow polling for workspaceapp and script: open statuses one listing each (the filter is
# single-valued), re-reads by parent (workspaceapp) or by task_id (script), periodic sweep


class ScriptListing(Listing):
    """The script-task API: the status filter speaks SUCCESS/WAITING, rows say FINISH/INIT."""

    WORDS = {"SUCCESS": "FINISH", "WAITING": "INIT", "RUNNING": "RUNNING", "FAILED": "FAILED"}

    def __init__(self, rows: list[dict[str, Any]]):
        super().__init__(rows, items="script_execution_tasks", total="total_count", max_limit=100,
                         filters={"status": "status", "task_id": "id"})  # fmt: skip

    def __call__(self, path: str, params: Params) -> bytes:
        statuses = [v for k, v in params if k == "status"]
        assert len(statuses) <= 1, "the script status filter is single-valued"
        return super().__call__(path, tuple((k, self.WORDS[v] if k == "status" else v) for k, v in params))


def app_listing(rows: list[dict[str, Any]]) -> Listing:
    return Listing(rows, items="items", total="count", max_limit=100,
                   filters={"status": "status", "job_type": "job_type", "job_id": "job_id"})  # fmt: skip


def app_rows(n: int, status: str = "SUCCESS", parent: str = "old", prefix: str = "h") -> list[dict[str, Any]]:
    return [{"id": f"{prefix}{i}", "job_id": parent, "status": status, "job_type": "CREATE_SERVER"} for i in range(n)]


def task_rows(n: int, status: str = "FINISH", prefix: str = "h") -> list[dict[str, Any]]:
    return [{"id": f"{prefix}{i}", "status": status, "scripts": [{"id": "s", "name": "a.ps1"}]} for i in range(n)]


def shape(client: FakeClient) -> list[tuple[str, ...]]:
    """Each request's filters (status, job_id, task_id), paging left out."""
    return [tuple(f"{k}={v}" for k, v in p if k in ("status", "job_id", "task_id")) for _, p in client.keys]


async def test_workspaceapp_narrow_lists_open_statuses_and_re_reads_parents():
    rows = app_rows(250) + [
        {"id": "r0", "job_id": "P", "status": "RUNNING", "job_type": "CREATE_SERVER"},
        {"id": "r1", "job_id": "P", "status": "RUNNING", "job_type": "CREATE_SERVER"},
        {"id": "w0", "job_id": "Q", "status": "WAITING", "job_type": "CREATE_SERVER"},
        {"id": "b0", "job_id": "RB", "status": "ROLLBACK", "job_type": "CREATE_SERVER"},
    ]
    src, t = WorkspaceAppSource(sweep_every=100), target("workspaceapp", job_types=("CREATE_SERVER",))
    client = FakeClient(handler=app_listing(rows))
    first = await src.fetch(client, t, [])
    assert (first.requests, first.complete, len(first.observations)) == (3, True, 254)
    active = ["b0", "r0", "r1", "w0"]

    client.calls.clear()
    second = await src.fetch(client, t, active)  # ROLLBACK is open but not listed: re-read via its parent
    assert shape(client) == [("status=WAITING",), ("status=RUNNING",), ("job_id=RB",)]
    assert {o.job_id: o.status for o in second.observations} == {
        "w0": "WAITING", "r0": "RUNNING", "r1": "RUNNING", "b0": "ROLLBACK"}  # fmt: skip
    assert (second.requests, second.complete, second.gone) == (3, False, [])

    # Between two narrow polls: r0 goes RUNNING -> FAILED, b0 ends, w0 starts running, r1 is deleted.
    rows[250]["status"], rows[253]["status"], rows[252]["status"] = "FAILED", "SUCCESS", "RUNNING"
    del rows[251]
    client.calls.clear()
    third = await src.fetch(client, t, active)
    assert shape(client) == [("status=WAITING",), ("status=RUNNING",), ("job_id=RB",), ("job_id=P",)]
    assert {o.job_id: o.status for o in third.observations} == {"w0": "RUNNING", "r0": "FAILED", "b0": "SUCCESS"}
    assert (third.requests, third.complete, third.gone) == (4, False, ["r1"])


async def test_script_narrow_lists_waiting_and_running_and_re_reads_by_task_id_in_one_request():
    rows = task_rows(250) + task_rows(2, "RUNNING", prefix="r") + task_rows(1, "INIT", prefix="i")
    src, t = ScriptSource(sweep_every=100), target("script")
    client = FakeClient(handler=ScriptListing(rows))
    first = await src.fetch(client, t, [])
    assert (first.requests, first.complete, len(first.observations)) == (3, True, 253)
    active = ["i0", "r0", "r1"]

    client.calls.clear()
    second = await src.fetch(client, t, active)
    assert shape(client) == [("status=WAITING",), ("status=RUNNING",)]
    assert {o.job_id: (o.status, o.phase) for o in second.observations} == {
        "i0": ("INIT", "pending"), "r0": ("RUNNING", "running"), "r1": ("RUNNING", "running")}  # fmt: skip
    assert (second.requests, second.complete, second.gone) == (2, False, [])

    # Between two narrow polls: r0 RUNNING -> FAILED, r1 finishes with failed desktops, i0 starts,
    # and a new task n0 appears waiting.
    rows[250].update(status="FAILED", failed_num=5)
    rows[251].update(status="FINISH", success_num=3, failed_num=1)
    rows[252]["status"] = "RUNNING"
    rows.append({"id": "n0", "status": "INIT"})
    client.calls.clear()
    third = await src.fetch(client, t, active)
    assert shape(client) == [("status=WAITING",), ("status=RUNNING",), ("task_id=r0", "task_id=r1")]
    assert {o.job_id: (o.status, o.phase) for o in third.observations} == {
        "n0": ("INIT", "pending"), "i0": ("RUNNING", "running"),
        "r0": ("FAILED", "failed"), "r1": ("FINISH", "failed")}  # fmt: skip
    assert (third.requests, third.complete, third.gone) == (3, False, [])

    # An active id the memo does not know (a restart, or deleted upstream) forces a full listing.
    client.calls.clear()
    fourth = await ScriptSource(sweep_every=100).fetch(client, t, ["i0", "ghost"])
    assert (fourth.requests, fourth.complete, fourth.gone) == (3, True, ["ghost"])


@pytest.mark.parametrize(
    ("history", "ended", "requests", "complete"),
    [
        (250, 1, 3, False),  # 2 open listings + task_id=t0
        (250, 50, 3, False),  # 50 ids still fit one re-read request
        (250, 51, 4, False),  # 51 ids: two re-read requests, still cheaper than 4 pages of everything
        (100, 51, 2, True),  # 2 pages of everything cost no more than the open listings: full
    ],
)
async def test_script_re_reads_batch_task_ids(history: int, ended: int, requests: int, complete: bool):
    rows = task_rows(history) + task_rows(60, "RUNNING", prefix="t")
    src, t = ScriptSource(sweep_every=100), target("script")
    client = FakeClient(handler=ScriptListing(rows))
    await src.fetch(client, t, [])
    active = [f"t{i}" for i in range(60)]
    for r in rows[history : history + ended]:
        r["status"] = "FINISH"
    client.calls.clear()
    result = await src.fetch(client, t, active)
    got = {o.job_id: o.status for o in result.observations if o.job_id.startswith("t")}
    assert got == {j: "FINISH" if int(j[1:]) < ended else "RUNNING" for j in active}
    assert (result.requests, result.complete, result.gone) == (requests, complete, [])
    reread = [ids for ids in shape(client) if ids and ids[0].startswith("task_id=")]
    assert [len(ids) for ids in reread] == ([] if complete else [min(ended, 50)] + ([ended - 50] if ended > 50 else []))


SWEEP_CASES = {
    "workspaceapp": (lambda: WorkspaceAppSource(sweep_every=3), target("workspaceapp", job_types=("CREATE_SERVER",)),
                     lambda: app_listing(app_rows(250)),
                     {"id": "unseen", "job_id": "X", "status": "FAILED", "job_type": "CREATE_SERVER"}, 3, 2),
    "script": (lambda: ScriptSource(sweep_every=3), target("script"), lambda: ScriptListing(task_rows(250)),
               {"id": "unseen", "status": "FINISH"}, 3, 2),
    "workspace": (lambda: WorkspaceSource(sweep_every=3), target("workspace"),
                  lambda: ws_listing(ws_rows(1200, parent="old")),
                  {"id": "unseen", "job_id": "X", "status": "FAILED", "job_type": "createDesktops"}, 2, 1),
}  # fmt: skip


@pytest.mark.parametrize("source", list(SWEEP_CASES))
async def test_sweep_finds_a_job_that_started_and_ended_between_polls(source: str):
    make, t, listing, unseen, full, narrow = SWEEP_CASES[source]
    src, handler = make(), listing()
    client = FakeClient(handler=handler)
    kinds = []
    for i in range(7):
        if i == 2:  # appears already ended: no open listing shows it, no active id points at it
            handler.rows.append(unseen)
        client.calls.clear()
        result = await src.fetch(client, t, [])
        kinds.append((result.complete, result.requests, "unseen" in {o.job_id for o in result.observations}))
    assert kinds == [
        (True, full, False), (False, narrow, False), (False, narrow, False), (True, full, True),
        (False, narrow, False), (False, narrow, False), (True, full, True),
    ]  # fmt: skip


NARROW_SOURCES = {
    "workspaceapp": (lambda: WorkspaceAppSource(sweep_every=50), target("workspaceapp", job_types=("CREATE_SERVER",)),
                     lambda live: app_listing(app_rows(250) + live),
                     lambda: app_rows(2, "RUNNING", parent="P", prefix="r")),
    "script": (lambda: ScriptSource(sweep_every=50), target("script"), lambda live: ScriptListing(task_rows(250) + live),
               lambda: task_rows(2, "RUNNING", prefix="r")),
}  # fmt: skip


@pytest.mark.parametrize("source", list(NARROW_SOURCES))
async def test_narrow_sources_through_the_poller_publish_each_transition_once(source: str):
    make, t, listing, live_rows = NARROW_SOURCES[source]
    live = live_rows()
    handler = listing(live)
    client, src, store = FakeClient(handler=handler), make(), MemoryStore()
    published: list[events.JobEvent] = []

    async def publish(evs: Sequence[events.JobEvent]) -> None:
        published.extend(evs)

    async def poll() -> list[tuple[str, str | None, str, str]]:
        published.clear()
        await poll_target(t, src, client, store, publish, intervals=Intervals(), force=True)
        return sorted((e.job_id, e.prev_status, e.status, e.change) for e in published)

    assert len(await poll()) == 252  # first sighting of everything
    assert await poll() == []
    live[0]["status"] = "FAILED"  # RUNNING -> FAILED between two narrow polls
    assert await poll() == [("r0", "RUNNING", "FAILED", "changed")]
    assert await poll() == []
    handler.rows.remove(live[1])
    assert await poll() == []  # missing from one answer: not gone yet
    assert await poll() == [("r1", "RUNNING", "VANISHED", "vanished")]
    assert await poll() == []
    assert store.open_jobs(t.id) == []


# --------------------------------------------------------------------------------------------
# Over real HTTP against the simulator: narrow polls lose no transition the scenario makes

HTTP_PID = "narrowhttp" + "0" * 22
HTTP_SCENARIO = f"""seed: 5
projects:
  {HTTP_PID}:
    workspaceapp:
      - {{job_type: CREATE_SERVER, count: 25, servers: 10, start: 0, wait: [0, 5], duration: [10, 50]}}
      - {{job_type: CREATE_SERVER, count: 3, servers: 4, start: 60, wait: [0, 10], duration: [5, 40], fail: 0.3}}
    script:
      - {{count: 250, desktops: 5, start: 0, wait: [0, 5], duration: [10, 50]}}
      - {{count: 12, desktops: 5, start: 60, wait: [0, 10], duration: [1, 40], fail: 0.3}}
"""


@pytest.mark.parametrize("source", ["workspaceapp", "script"])
async def test_narrow_polls_over_http_publish_every_scenario_transition_exactly_once(source: str):
    from collections import Counter

    from watcher.cloud.client import CloudClient
    from watcher.cloud.credentials import Credentials
    from watcher.simulator import DEFAULT_AK, DEFAULT_SK
    from watcher.simulator.scenario import parse_scenario
    from watcher.simulator.server import start_simulator
    from watcher.simulator.settings import Settings

    running = await start_simulator(scenario=parse_scenario(HTTP_SCENARIO), settings=Settings(speed=0))
    sim = running.sim
    client = CloudClient(credentials=Credentials(ak=DEFAULT_AK, sk=DEFAULT_SK),
                         endpoints=dict.fromkeys(("workspace", "workspaceapp", "evs"), running.url))  # fmt: skip
    t = target(source, job_types=("CREATE_SERVER",) if source == "workspaceapp" else ())
    t = Target(source=t.source, region=t.region, project_id=HTTP_PID, job_types=t.job_types)
    inner = type(get_source(source))(sweep_every=1000)  # no sweep: narrow polls alone must keep up
    store, published, complete = MemoryStore(), Counter(), []

    class Recording:
        name, service, by_id = inner.name, inner.service, inner.by_id

        async def fetch(self, client: Any, target: Target, active: Any) -> Any:
            result = await inner.fetch(client, target, active)
            complete.append(result.complete)
            return result

    src = Recording()

    async def publish(batch: Sequence[events.JobEvent]) -> None:
        published.update((e.job_id, e.prev_status, e.status) for e in batch)

    try:
        # every instant something changes (and the start): no job starts and ends unseen
        for at in sorted({0.0, *(x.at_seconds for x in sim.transitions(sources=[source]))}):
            sim.set_time(at)
            out = await poll_target(t, src, client, store, publish, intervals=Intervals(), force=True)
            assert out.error is None
    finally:
        await client.aclose()
        await running.stop()
    expected = Counter((x.job_id, x.from_status, x.to_status) for x in sim.transitions(sources=[source]))
    assert published == expected
    assert store.open_jobs(t.id) == []
    assert complete.count(False) > 100  # once the history outgrew the open listings, polls went narrow
