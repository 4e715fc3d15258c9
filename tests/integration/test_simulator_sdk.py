"""The official Huawei Cloud SDKs against the simulator: every endpoint, every answer parsed.

The SDK clients are blocking, so the simulator runs on its own thread and event loop
(:class:`~watcher.simulator.server.SimulatorThread`) with a frozen clock that the tests
step. HOME points at a scratch directory before the SDK is imported: importing it writes
``~/.huaweicloud/application_id``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from watcher.simulator import DEFAULT_AK, DEFAULT_PROJECTS, DEFAULT_SK, DEFAULT_TOKEN
from watcher.simulator.scenario import Fault, load_scenario
from watcher.simulator.server import SimulatorThread, small_scenario_path
from watcher.simulator.settings import Settings

PID = DEFAULT_PROJECTS[0]
EPOCH = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)
END = 30.0  # every job of small.yaml has ended by then


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        core = importlib.import_module("huaweicloudsdkcore.exceptions.exceptions")
        evs = importlib.import_module("huaweicloudsdkevs.v2")
        ws = importlib.import_module("huaweicloudsdkworkspace.v2")
        app = importlib.import_module("huaweicloudsdkworkspaceapp.v1")
        yield SimpleNamespace(
            BasicCredentials=importlib.import_module("huaweicloudsdkcore.auth.credentials").BasicCredentials,
            HttpConfig=importlib.import_module("huaweicloudsdkcore.http.http_config").HttpConfig,
            ClientRequestException=core.ClientRequestException,
            ServerResponseException=core.ServerResponseException,
            EvsClient=evs.EvsClient,
            EvsShowJobRequest=evs.ShowJobRequest,
            WorkspaceClient=ws.WorkspaceClient,
            ListItaSubJobsRequest=ws.ListItaSubJobsRequest,
            ShowDesktopPoolsScriptExecTasksRequest=ws.ShowDesktopPoolsScriptExecTasksRequest,
            WorkspaceAppClient=app.WorkspaceAppClient,
            ListSubJobsRequest=app.ListSubJobsRequest,
            ShowJobRequest=app.ShowJobRequest,
            ShowJobDetailRequest=app.ShowJobDetailRequest,
        )


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorThread]:
    with SimulatorThread(small_scenario_path(), Settings(speed=0, epoch=EPOCH)) as st:
        yield st


def client(sdk: SimpleNamespace, cls: Any, url: str, *, sk: str = DEFAULT_SK, project: str = PID) -> Any:
    cfg = sdk.HttpConfig.get_default_config()
    cfg.ignore_ssl_verification = True
    creds = sdk.BasicCredentials(DEFAULT_AK, sk, project)
    return cls.new_builder().with_http_config(cfg).with_credentials(creds).with_endpoint(url).build()


WS_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
ZULU = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
MILLIS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def test_list_ita_sub_jobs_with_repeated_status(sdk: SimpleNamespace, simulator: SimulatorThread) -> None:
    ws = client(sdk, sdk.WorkspaceClient, simulator.url)
    simulator.sim.set_time(3.0)
    expected = simulator.sim.workspace_sub_jobs(PID, statuses=("RUNNING", "WAITING"))
    resp = ws.list_ita_sub_jobs(sdk.ListItaSubJobsRequest(status=["RUNNING", "WAITING"], job_type="createDesktops"))
    assert resp.total_count == len(expected) > 0
    assert {j.id for j in resp.jobs} == {r["id"] for r in expected}
    for job in resp.jobs:
        assert job.status in ("RUNNING", "WAITING")
        assert job.job_type == "createDesktops"
        assert WS_TIME.match(job.begin_time) and job.end_time is None
        assert job.entities.desktop_id and job.entities.desktop_name and job.entities.ip_address
        assert job.project_id == PID and isinstance(job.process, int)

    simulator.sim.set_time(END)
    done = ws.list_ita_sub_jobs(sdk.ListItaSubJobsRequest(limit=2, offset=0))
    assert done.total_count == 4 and len(done.jobs) == 2
    rest = ws.list_ita_sub_jobs(sdk.ListItaSubJobsRequest(limit=2, offset=2))
    rows = done.jobs + rest.jobs
    assert len({j.id for j in rows}) == 4
    assert sorted(j.status for j in rows) == ["FAILED", "SUCCESS", "SUCCESS", "SUCCESS"]
    failed = next(j for j in rows if j.status == "FAILED")
    assert failed.error_code == "WKS.00129901" and failed.fail_reason
    assert all(WS_TIME.match(j.end_time) for j in rows)


def test_list_sub_jobs(sdk: SimpleNamespace, simulator: SimulatorThread) -> None:
    app = client(sdk, sdk.WorkspaceAppClient, simulator.url)
    simulator.sim.set_time(END)
    first = app.list_sub_jobs(sdk.ListSubJobsRequest(job_type="CREATE_SERVER", limit=1))
    assert first.count == 4 and len(first.items) == 1
    everything = app.list_sub_jobs(sdk.ListSubJobsRequest(job_type="CREATE_SERVER", limit=100, offset=0))
    assert len(everything.items) == 4
    for item in everything.items:
        assert str(item.status) in ("SUCCESS", "FAILED")
        assert isinstance(item.begin_time, datetime) and isinstance(item.end_time, datetime)
        assert item.begin_time.tzinfo is not None and item.end_time >= item.begin_time
        assert item.job_resource_info.resource_id and item.job_resource_info.resource_name.startswith("APS-")
        assert item.project_id == PID and item.job_id
    failed = [i for i in everything.items if str(i.status) == "FAILED"]
    assert failed and all(i.error_code == "WKS.00129901" and i.error_message for i in failed)
    only = app.list_sub_jobs(sdk.ListSubJobsRequest(job_type="CREATE_SERVER", status="FAILED", limit=100))
    assert only.count == len(failed)


def test_show_job_v1_and_v2(sdk: SimpleNamespace, simulator: SimulatorThread) -> None:
    app = client(sdk, sdk.WorkspaceAppClient, simulator.url)
    (job_id,) = simulator.sim.job_ids("appjob", PID)
    simulator.sim.set_time(0.1)
    v1 = app.show_job(sdk.ShowJobRequest(job_id=job_id)).job
    assert v1.job_id == job_id and v1.job_type == 1 and v1.job_status == 3
    assert v1.end_time is None and isinstance(v1.expected_end_time, datetime)
    simulator.sim.set_time(END)
    v1 = app.show_job(sdk.ShowJobRequest(job_id=job_id)).job
    assert v1.job_status == 0  # one of two sub-jobs failed
    assert sorted(s.job_status for s in v1.sub_jobs) == [0, 1]
    assert all(s.job_type == 2 and isinstance(s.end_time, datetime) for s in v1.sub_jobs)
    assert all(s.entities[0].resource_type == "hws.resource.type.workspace.appstream" for s in v1.sub_jobs)
    assert v1.execute_code == "WKS.00129901"

    v2 = app.show_job_detail(sdk.ShowJobDetailRequest(job_id=job_id))
    assert v2.id == job_id and str(v2.status) == "FAILED" and str(v2.job_type) == "CREATE_SERVER"
    assert v2.sub_jobs_total == 2 and sorted(str(s.status) for s in v2.sub_jobs) == ["FAILED", "SUCCESS"]
    assert isinstance(v2.begin_time, datetime) and isinstance(v2.end_time, datetime)


def test_show_job_unknown_is_404(sdk: SimpleNamespace, simulator: SimulatorThread) -> None:
    app = client(sdk, sdk.WorkspaceAppClient, simulator.url)
    with pytest.raises(sdk.ClientRequestException) as e:
        app.show_job_detail(sdk.ShowJobDetailRequest(job_id="no/such job"))
    assert e.value.status_code == 404 and e.value.error_code and e.value.request_id


def test_script_tasks_with_task_ids_and_status_filter(sdk: SimpleNamespace, simulator: SimulatorThread) -> None:
    ws = client(sdk, sdk.WorkspaceClient, simulator.url)
    ids = simulator.sim.job_ids("script", PID)
    simulator.sim.set_time(END)
    req = sdk.ShowDesktopPoolsScriptExecTasksRequest
    resp = ws.show_desktop_pools_script_exec_tasks(req(task_id=ids, limit=100))
    assert resp.total_count == 2 and {t.id for t in resp.script_execution_tasks} == set(ids)
    by_status = {t.status: t for t in resp.script_execution_tasks}
    assert set(by_status) == {"FINISH", "FAILED"}
    finish = by_status["FINISH"]
    assert (finish.success_num, finish.failed_num, finish.skip_num) == (3, 1, 1)
    assert finish.scripts[0].name == "install-agent.ps1"
    assert ZULU.match(finish.start_time) and ZULU.match(finish.end_time)
    assert by_status["FAILED"].failed_num == 3
    success = ws.show_desktop_pools_script_exec_tasks(req(status="SUCCESS", task_id=ids))
    assert [t.status for t in success.script_execution_tasks] == ["FINISH"]
    one = ws.show_desktop_pools_script_exec_tasks(req(task_id=[finish.id]))
    assert one.total_count == 1


def test_evs_show_job(sdk: SimpleNamespace, simulator: SimulatorThread) -> None:
    evs = client(sdk, sdk.EvsClient, simulator.url)
    simulator.sim.set_time(2.0)
    running = [evs.show_job(sdk.EvsShowJobRequest(job_id=j)) for j in simulator.sim.job_ids("evs", PID)]
    assert {r.status for r in running} == {"RUNNING"}
    assert all(r.end_time == "" and MILLIS.match(r.begin_time) for r in running)
    simulator.sim.set_time(END)
    done = {
        r.job_type: r
        for r in (evs.show_job(sdk.EvsShowJobRequest(job_id=j)) for j in simulator.sim.job_ids("evs", PID))
    }
    assert done["extendVolume"].status == "SUCCESS" and done["extendVolume"].entities.size == 100
    assert done["createVolume"].status == "FAIL" and done["createVolume"].error_code == "EVS.1010"
    assert done["createVolume"].fail_reason == "invalid volume size!"
    batch = done["batchCreateVolume"]
    assert batch.status == "SUCCESS" and len(batch.entities.sub_jobs) == 2
    assert all(
        s.status == "SUCCESS" and s.entities.volume_id and MILLIS.match(s.end_time) for s in batch.entities.sub_jobs
    )


def test_evs_unknown_job_is_400_common_0011(sdk: SimpleNamespace, simulator: SimulatorThread) -> None:
    evs = client(sdk, sdk.EvsClient, simulator.url)
    with pytest.raises(sdk.ClientRequestException) as e:
        evs.show_job(sdk.EvsShowJobRequest(job_id="ff808081692a62c70169b4dcf9514264"))
    assert e.value.status_code == 400 and e.value.error_code == "Common.0011"
    assert e.value.error_msg == "query job fail." and e.value.request_id


def test_bad_sk_is_401_apig_0301(sdk: SimpleNamespace, simulator: SimulatorThread) -> None:
    ws = client(sdk, sdk.WorkspaceClient, simulator.url, sk="not-the-secret")
    with pytest.raises(sdk.ClientRequestException) as e:
        ws.list_ita_sub_jobs(sdk.ListItaSubJobsRequest())
    assert e.value.status_code == 401 and e.value.error_code == "APIG.0301"
    assert "verify aksk signature fail" in e.value.error_msg and e.value.request_id


def test_x_auth_token_via_invoker(sdk: SimpleNamespace, simulator: SimulatorThread) -> None:
    ws = client(sdk, sdk.WorkspaceClient, simulator.url, sk="not-the-secret")  # the signature is wrong
    simulator.sim.set_time(END)
    resp = ws.list_ita_sub_jobs_invoker(sdk.ListItaSubJobsRequest()).add_header("X-Auth-Token", DEFAULT_TOKEN).invoke()
    assert resp.total_count == 4
    with pytest.raises(sdk.ClientRequestException) as e:
        ws.list_ita_sub_jobs_invoker(sdk.ListItaSubJobsRequest()).add_header("X-Auth-Token", "stale").invoke()
    assert e.value.status_code == 401 and e.value.error_code == "APIG.0301"


def test_unserved_project(sdk: SimpleNamespace, simulator: SimulatorThread) -> None:
    ws = client(sdk, sdk.WorkspaceClient, simulator.url, project="ffffffffffffffffffffffffffffffff")
    with pytest.raises(sdk.ClientRequestException) as e:
        ws.list_ita_sub_jobs(sdk.ListItaSubJobsRequest())
    assert e.value.status_code == 403


def test_throttled_is_429(sdk: SimpleNamespace) -> None:
    scenario = msgspec.structs.replace(
        load_scenario(small_scenario_path()),
        faults=(Fault(kind="throttle", sources=("workspace",), limit=1), Fault(kind="server_error", sources=("evs",))),
    )
    with SimulatorThread(scenario, Settings(speed=0, epoch=EPOCH)) as st:
        ws = client(sdk, sdk.WorkspaceClient, st.url)
        with pytest.raises(sdk.ClientRequestException) as e:
            ws.list_ita_sub_jobs(sdk.ListItaSubJobsRequest())
        assert e.value.status_code == 429
        assert ws.list_ita_sub_jobs(sdk.ListItaSubJobsRequest()).total_count >= 0  # limit: 1
        evs = client(sdk, sdk.EvsClient, st.url)
        with pytest.raises(sdk.ServerResponseException) as s:
            evs.show_job(sdk.EvsShowJobRequest(job_id=st.sim.job_ids("evs", PID)[0]))
        assert s.value.status_code == 500


# --- the fidelity cases (issue 10): every new answer shape parses in the official SDK -----------

PATH_BOTH = f"""seed: 9
projects:
  {PID}:
    appjob:
      - {{servers: 2, fail: 0.5, start: 0, wait: 1, duration: 2,
         path: [{{status: ABNORMAL, for: 10}}, {{status: ROLLBACK, for: 10}}]}}
"""


def test_sub_job_path_abnormal_rollback_in_both_app_apis(sdk: SimpleNamespace) -> None:
    from watcher.simulator.scenario import parse_scenario

    with SimulatorThread(parse_scenario(PATH_BOTH), Settings(speed=0, epoch=EPOCH)) as st:
        app = client(sdk, sdk.WorkspaceAppClient, st.url)
        (job_id,) = st.sim.job_ids("appjob", PID)
        seen = []
        for at in (2.0, 3.0, 13.0, 23.0):
            st.sim.set_time(at)
            listed = app.list_sub_jobs(sdk.ListSubJobsRequest(job_type="CREATE_SERVER", job_id=job_id, limit=100))
            v2 = app.show_job_detail(sdk.ShowJobDetailRequest(job_id=job_id))
            v1 = app.show_job(sdk.ShowJobRequest(job_id=job_id)).job
            assert {i.id for i in listed.items} == {s.id for s in v2.sub_jobs} == {s.job_id for s in v1.sub_jobs}
            words = sorted(str(i.status) for i in listed.items)
            assert words == sorted(str(s.status) for s in v2.sub_jobs)  # one job, two APIs, the same words
            seen.append((words, str(v2.status), sorted(s.job_status for s in v1.sub_jobs), v1.job_status))
        assert seen == [
            (["RUNNING", "RUNNING"], "RUNNING", [2, 2], 2),
            (["ABNORMAL", "SUCCESS"], "RUNNING", [1, 2], 2),
            (["ROLLBACK", "SUCCESS"], "RUNNING", [1, 2], 2),
            (["FAILED", "SUCCESS"], "FAILED", [0, 1], 0),
        ]
        st.sim.set_time(13.0)
        rolling = app.list_sub_jobs(sdk.ListSubJobsRequest(job_type="CREATE_SERVER", status="ROLLBACK"))
        assert rolling.count == 1 and str(rolling.items[0].status) == "ROLLBACK"
        assert rolling.items[0].error_code == "WKS.00129901" and rolling.items[0].end_time is None


def test_truncated_pages_parse(sdk: SimpleNamespace) -> None:
    scenario = msgspec.structs.replace(
        load_scenario(small_scenario_path()),
        faults=(
            Fault(kind="truncated_page", sources=("workspace", "script"), window=(20.0, 21.0)),
            Fault(kind="truncated_page", sources=("workspaceapp",), window=(20.0, 21.0), keep=1),
        ),
    )
    with SimulatorThread(scenario, Settings(speed=0, epoch=EPOCH)) as st:
        st.sim.set_time(20.0)
        ws = client(sdk, sdk.WorkspaceClient, st.url)
        jobs = ws.list_ita_sub_jobs(sdk.ListItaSubJobsRequest())
        assert (jobs.total_count, jobs.jobs) == (4, [])
        tasks = ws.show_desktop_pools_script_exec_tasks(sdk.ShowDesktopPoolsScriptExecTasksRequest(limit=100))
        assert (tasks.total_count, tasks.script_execution_tasks) == (2, [])
        app = client(sdk, sdk.WorkspaceAppClient, st.url)
        items = app.list_sub_jobs(sdk.ListSubJobsRequest(job_type="CREATE_SERVER", limit=100))
        assert items.count == 4 and len(items.items) == 1
        st.sim.set_time(21.0)
        assert len(ws.list_ita_sub_jobs(sdk.ListItaSubJobsRequest()).jobs) == 4


def test_evs_batch_with_stuck_sub_jobs(sdk: SimpleNamespace) -> None:
    from watcher.simulator.server import scenario_path

    with SimulatorThread(scenario_path("evs-batch-stuck"), Settings(speed=0, epoch=EPOCH)) as st:
        st.sim.set_time(3600.0)
        evs = client(sdk, sdk.EvsClient, st.url)
        (job_id,) = st.sim.job_ids("evs", PID)
        batch = evs.show_job(sdk.EvsShowJobRequest(job_id=job_id))
        assert (batch.status, batch.end_time, batch.job_type) == ("RUNNING", "", "batchCreateVolume")
        assert [(s.status, s.end_time, s.entities.size) for s in batch.entities.sub_jobs] == [("RUNNING", "", 100)] * 2


def test_app_job_with_failing_sub_job_and_both_apis(sdk: SimpleNamespace) -> None:
    from watcher.simulator.server import scenario_path

    with SimulatorThread(scenario_path("app-job-failing-sub-job"), Settings(speed=0, epoch=EPOCH)) as st:
        st.sim.set_time(7.0)
        app = client(sdk, sdk.WorkspaceAppClient, st.url)
        (job_id,) = st.sim.job_ids("appjob", PID)
        v2 = app.show_job_detail(sdk.ShowJobDetailRequest(job_id=job_id))
        assert str(v2.status) == "FAILED" and v2.sub_jobs_total == 3
        assert sorted(str(s.status) for s in v2.sub_jobs) == ["FAILED", "SUCCESS", "SUCCESS"]
        v1 = app.show_job(sdk.ShowJobRequest(job_id=job_id)).job
        assert v1.job_status == 0 and sorted(s.job_status for s in v1.sub_jobs) == [0, 1, 1]
        assert v1.execute_code == "WKS.00129901"
        listed = app.list_sub_jobs(sdk.ListSubJobsRequest(job_type="CREATE_SERVER", job_id=job_id, limit=100))
        assert {(i.id, str(i.status), i.job_id) for i in listed.items} == {
            (s.id, str(s.status), job_id) for s in v2.sub_jobs
        }
