"""The simulator: deterministic lifecycles, paging, filters, auth, faults, scenario errors.

Lifecycle tests query :class:`Simulator` directly with a frozen clock; contract tests go
over HTTP (signed with our own signer) to a simulator on 127.0.0.1.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import msgspec
import pytest
from yarl import URL

from watcher.cloud.signer import sign_headers
from watcher.errors import ConfigError
from watcher.simulator import DEFAULT_AK, DEFAULT_PROJECTS, DEFAULT_SK, DEFAULT_TOKEN
from watcher.simulator.clock import SimClock
from watcher.simulator.lifecycle import Transition, scenario_transitions
from watcher.simulator.scenario import Fault, Scenario, load_scenario, parse_scenario
from watcher.simulator.server import RunningSimulator, demo_scenario_path, small_scenario_path, start_simulator
from watcher.simulator.settings import Settings
from watcher.simulator.state import Simulator

P, Q = DEFAULT_PROJECTS
EPOCH = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)
FROZEN = Settings(speed=0, epoch=EPOCH)
SMALL = load_scenario(small_scenario_path())
WS = f"/v2/{P}/workspace-sub-jobs"
APP = f"/v1/{P}/app-server-sub-jobs"
SCRIPT = f"/v2/{P}/desktop-pools/script-execution-tasks/detail"


def with_faults(*faults: Fault, scenario: Scenario = SMALL) -> Scenario:
    return msgspec.structs.replace(scenario, faults=faults)


# --- lifecycles (no HTTP) --------------------------------------------------------------------


def snapshot(sim: Simulator, appjob_api: str = "v2") -> dict[tuple[str, str, str], str]:
    """Every job's status as the APIs answer right now, keyed like a Transition."""
    out: dict[tuple[str, str, str], str] = {}
    for p in sim.projects:
        for row in sim.workspace_sub_jobs(p):
            out["workspace", p, row["id"]] = row["status"]
        for row in sim.app_sub_jobs(p, job_type="CREATE_SERVER"):
            out["workspaceapp", p, row["id"]] = row["status"]
        for row in sim.script_tasks(p):
            out["script", p, row["id"]] = row["status"]
        for jid in sim.job_ids("appjob", p):
            if (body := sim.app_job(p, jid, appjob_api)) is None:
                continue
            if appjob_api == "v1":
                out["appjob", p, jid] = str(body["job"]["job_status"])
                out.update((("appjob", p, s["job_id"]), str(s["job_status"])) for s in body["job"]["sub_jobs"])
            else:
                out["appjob", p, jid] = body["status"]
                out.update((("appjob", p, s["id"]), s["status"]) for s in body["sub_jobs"])
        for jid in sim.job_ids("evs", p):
            if (body := sim.evs_job(p, jid)) is None:
                continue
            out["evs", p, jid] = body["status"]
            out.update((("evs", p, s["job_id"]), s["status"]) for s in body["entities"].get("sub_jobs", ()))
    return out


@pytest.mark.parametrize("api", ["v2", "v1"])
def test_answers_change_exactly_as_scenario_transitions_say(api: str) -> None:
    sim = Simulator(SMALL, FROZEN)
    expected = scenario_transitions(SMALL, appjob_api=api)
    seen: list[Transition] = []
    before: dict[tuple[str, str, str], str] = {}
    for t in sorted({0.0, *(tr.at_seconds for tr in expected)}):
        sim.set_time(t)
        now = snapshot(sim, api)
        for key, status in now.items():
            if before.get(key) != status:
                seen.append(Transition(*key, before.get(key), status, t))
        before = now
    order = lambda tr: (tr.at_seconds, tr.source, tr.project, tr.job_id)  # noqa: E731
    assert sorted(seen, key=order) == expected
    assert max(tr.at_seconds for tr in expected) <= 10.0


def test_same_seed_same_answers_other_seed_other_ids() -> None:
    a, b = Simulator(SMALL, FROZEN), Simulator(SMALL, FROZEN)
    for t in (0.0, 1.7, 3.3, 50.0):
        a.set_time(t), b.set_time(t)
        assert snapshot(a) == snapshot(b)
        assert a.workspace_sub_jobs(P) == b.workspace_sub_jobs(P)
        assert [a.evs_job(P, j) for j in a.job_ids("evs", P)] == [b.evs_job(P, j) for j in b.job_ids("evs", P)]
    other = Simulator(msgspec.structs.replace(SMALL, seed=SMALL.seed + 1), FROZEN)
    assert set(other.job_ids("evs", P)).isdisjoint(a.job_ids("evs", P))


def test_fail_and_stuck_shares_are_exact() -> None:
    scenario = parse_scenario(
        f"projects: {{{P}: {{workspace: [{{desktops: 100, fail: 0.07, stuck: 0.05, duration: [1, 5]}}]}}}}"
    )
    sim = Simulator(scenario, FROZEN)
    sim.set_time(1e6)
    statuses = [r["status"] for r in sim.workspace_sub_jobs(P)]
    assert (statuses.count("FAILED"), statuses.count("RUNNING"), statuses.count("SUCCESS")) == (7, 5, 88)
    ends = [t for t in scenario_transitions(scenario) if t.from_status == "RUNNING"]
    assert len(ends) == 95  # stuck jobs never end
    assert len({r["job_id"] for r in sim.workspace_sub_jobs(P)}) == 1  # one parent job, 100 sub-jobs


def test_clock_speed_and_test_hooks() -> None:
    now = [100.0]
    clock = SimClock(2.0, monotonic=lambda: now[0])
    assert clock.now() == 0.0
    now[0] = 103.0
    assert clock.now() == 6.0
    assert clock.advance(4) == 10.0
    assert clock.set(1.5) == 1.5
    now[0] = 104.0
    assert clock.now() == 3.5
    frozen = SimClock(0)
    frozen.advance(7)
    assert frozen.now() == 7.0


def test_shipped_scenarios() -> None:
    demo = Simulator(load_scenario(demo_scenario_path()), FROZEN)
    assert len(demo.projects) == 2
    demo.set_time(1e6)
    rows = [r for p in demo.projects for r in demo.workspace_sub_jobs(p)]
    failed = sum(r["status"] == "FAILED" for r in rows)
    assert 200 <= len(rows) <= 400 and 0.05 <= failed / len(rows) <= 0.10
    assert 30 <= demo.horizon() <= 60
    evs = {demo.evs_job(P, j)["job_type"]: demo.evs_job(P, j) for j in demo.job_ids("evs", P)}
    assert evs["extendVolume"]["status"] == "FAIL"
    assert any(t["failed_num"] > 0 for p in demo.projects for t in demo.script_tasks(p))
    (app,) = demo.job_ids("appjob", P)
    assert "FAILED" in [s["status"] for s in demo.app_job(P, app, "v2")["sub_jobs"]]
    assert demo.app_sub_jobs(P, job_type="CREATE_SERVER")
    small = Simulator(SMALL, FROZEN)
    for sim in (demo, small):  # by-id ids handed out up front exist from the first second
        sim.set_time(0)
        for p in sim.projects:
            assert all(sim.evs_job(p, j) for j in sim.job_ids("evs", p))
            assert all(sim.app_job(p, j, "v1") for j in sim.job_ids("appjob", p))
    small.set_time(10.0)
    for key, status in snapshot(small).items():
        assert status in ("SUCCESS", "FAILED", "FINISH", "FAIL"), key


# --- HTTP ------------------------------------------------------------------------------------

Get = Callable[..., Awaitable[tuple[int, dict[str, str], Any]]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[tuple[RunningSimulator, Get]]]]:
    started: list[RunningSimulator] = []
    session = aiohttp.ClientSession()

    async def start(scenario: Scenario | None = SMALL, settings: Settings = FROZEN) -> tuple[RunningSimulator, Get]:
        running = await start_simulator(scenario=scenario, settings=settings)
        started.append(running)

        async def get(
            path: str,
            params: list[tuple[str, str]] = (),  # type: ignore[assignment]
            *,
            token: str | None = None,
            sk: str = DEFAULT_SK,
            sign: bool = True,
            method: str = "GET",
        ) -> tuple[int, dict[str, str], Any]:
            query = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in params)
            headers = {"Host": f"127.0.0.1:{running.port}", "Content-Type": "application/json"}
            if token:
                headers["X-Auth-Token"] = token
            if sign:
                headers = sign_headers(DEFAULT_AK, sk, method, path, list(params), headers)
            url = URL(f"{running.url}{path}" + (f"?{query}" if query else ""), encoded=True)
            async with session.request(method, url, headers=headers) as resp:
                raw = await resp.read()
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw
                return resp.status, resp.headers, body  # case-insensitive

        return running, get

    yield start
    await session.close()
    for running in started:
        await running.stop()


async def test_workspace_paging(serve: Any) -> None:
    running, get = await serve()
    running.sim.set_time(30)
    status, headers, body = await get(WS)
    assert status == 200 and body["total_count"] == 4 and len(body["jobs"]) == 4
    assert len(headers["X-Request-Id"]) == 32
    pages = [(await get(WS, [("limit", "3"), ("offset", str(o))]))[2] for o in (0, 3, 6)]
    assert [len(p["jobs"]) for p in pages] == [3, 1, 0] and {p["total_count"] for p in pages} == {4}
    assert {j["id"] for p in pages for j in p["jobs"]} == {j["id"] for j in body["jobs"]}
    for bad in (("limit", "1001"), ("limit", "x"), ("offset", "-1"), ("status", "FINISH")):
        status, _, err = await get(WS, [bad])
        assert status == 400 and set(err) == {"error_code", "error_msg"} and bad[0] in err["error_msg"]
    _, _, one = await get(WS, [("status", "FAILED"), ("status", "SUCCESS"), ("job_type", "createDesktops")])
    assert one["total_count"] == 4
    _, _, failed = await get(WS, [("status", "FAILED")])
    assert failed["total_count"] == 1 and failed["jobs"][0]["error_code"]


async def test_app_sub_jobs_contract(serve: Any) -> None:
    scenario = parse_scenario(f"projects: {{{P}: {{workspaceapp: [{{servers: 12, duration: 1, wait: 0}}]}}}}")
    running, get = await serve(scenario)
    running.sim.set_time(5)
    status, _, err = await get(APP)
    assert status == 400 and err["error_code"] and "job_type" in err["error_msg"]
    _, _, body = await get(APP, [("job_type", "CREATE_SERVER")])
    assert body["count"] == 12 and len(body["items"]) == 10  # default limit 10
    _, _, tail = await get(APP, [("job_type", "CREATE_SERVER"), ("offset", "10"), ("limit", "100")])
    assert len(tail["items"]) == 2
    for bad in (("limit", "0"), ("limit", "101"), ("status", "DONE")):
        assert (await get(APP, [("job_type", "CREATE_SERVER"), bad]))[0] == 400
    _, _, other = await get(APP, [("job_type", "DELETE_SERVER")])
    assert other == {"count": 0, "items": []}
    item = body["items"][0]
    assert item["begin_time"].endswith("Z") and len(item["begin_time"]) == len("2022-03-07T10:40:43.858Z")


async def test_script_filter_vocabulary_and_paging(serve: Any) -> None:
    scenario = parse_scenario(
        f"projects: {{{P}: {{script: [{{count: 12, start: 0, wait: 2, duration: [1, 3], fail: 0.25}}]}}}}"
    )
    running, get = await serve(scenario)
    running.sim.set_time(1)
    _, _, waiting = await get(SCRIPT, [("status", "WAITING")])
    assert waiting["total_count"] == 12 and {t["status"] for t in waiting["script_execution_tasks"]} == {"INIT"}
    assert len(waiting["script_execution_tasks"]) == 10  # default limit 10
    running.sim.set_time(10)
    _, _, ok = await get(SCRIPT, [("status", "SUCCESS"), ("limit", "100")])
    assert ok["total_count"] == 9 and {t["status"] for t in ok["script_execution_tasks"]} == {"FINISH"}
    _, _, failed = await get(SCRIPT, [("status", "FAILED")])
    assert failed["total_count"] == 3
    for bad in (("status", "FINISH"), ("limit", "101"), ("task_type", "PYTHON"), ("execute_time_start", "yesterday")):
        assert (await get(SCRIPT, [bad]))[0] == 400
    ids = running.sim.job_ids("script", P)[:2]
    _, _, picked = await get(SCRIPT, [("task_id", ids[1]), ("task_id", ids[0])])
    assert {t["id"] for t in picked["script_execution_tasks"]} == set(ids)
    _, _, later = await get(SCRIPT, [("execute_time_start", "2024-05-01T08:00:00Z")])
    assert later["total_count"] == 0  # all started at 08:00:00, not after it


async def test_auth_and_gateway_errors(serve: Any) -> None:
    running, get = await serve()
    status, headers, body = await get(WS, sign=False)
    assert status == 401 and body["error_code"] == "APIG.0301" and body["request_id"] == headers["X-Request-Id"]
    status, _, body = await get(WS, sk="wrong")
    assert status == 401 and body["error_msg"] == "Incorrect IAM authentication information: verify aksk signature fail"
    assert (await get(WS, token=DEFAULT_TOKEN, sign=False))[0] == 200
    assert (await get(WS, token="nope", sign=False))[0] == 401
    assert (await get(WS, [("job_id", "a b/c")]))[0] == 200  # percent-encoded query still verifies
    status, _, body = await get("/v3/nothing/here")
    assert status == 404 and body["error_code"] == "APIG.0101"
    assert (await get(WS, method="POST"))[0] == 404
    status, _, body = await get("/v2/ffffffffffffffffffffffffffffffff/workspace-sub-jobs")
    assert status == 403 and body["error_code"] == "APIG.0302"
    status, _, body = await get("/v1/ffffffffffffffffffffffffffffffff/jobs/x")
    assert status == 400 and body == {"error": {"message": "query job fail.", "code": "Common.0011"}}
    status, _, body = await get(f"/v1/{P}/jobs/{quote('no/such', safe='')}")
    assert status == 400 and body["error"]["code"] == "Common.0011"
    status, _, body = await get(f"/v2/{P}/job/123")
    assert status == 404 and set(body) == {"error_code", "error_msg"}
    assert running.sim.requests["evs.show_job"] == 2


FAULT_CASES = [
    pytest.param(
        Fault(kind="throttle", retry_after=2), 429, {"Retry-After": "2"}, "APIG.0308", id="throttle+retry-after"
    ),
    pytest.param(Fault(kind="throttle"), 429, {}, "APIG.0308", id="throttle"),
    pytest.param(Fault(kind="server_error", status=503), 503, {}, "WKS.00129901", id="503"),
    pytest.param(Fault(kind="server_error"), 500, {}, "WKS.00129901", id="500"),
    pytest.param(Fault(kind="token_expiry"), 401, {}, "APIG.0301", id="token-expiry"),
]


@pytest.mark.parametrize(("fault", "status", "headers", "code"), FAULT_CASES)
async def test_refusing_faults_fire_in_their_window_only(
    serve: Any, fault: Fault, status: int, headers: dict[str, str], code: str
) -> None:
    fault = msgspec.structs.replace(fault, sources=("workspace",), window=(5.0, 10.0))
    running, get = await serve(with_faults(fault))
    running.sim.set_time(4.9)
    assert (await get(WS))[0] == 200
    running.sim.set_time(5.0)
    got, got_headers, body = await get(WS)
    assert got == status and body["error_code"] == code
    assert ("Retry-After" in got_headers) == ("Retry-After" in headers)
    assert all(got_headers[k] == v for k, v in headers.items())
    assert (await get(f"/v1/{P}/jobs/{running.sim.job_ids('evs', P)[0]}"))[0] == 200  # other sources spared
    running.sim.set_time(10.0)
    assert (await get(WS))[0] == 200


async def test_body_faults(serve: Any) -> None:
    faults = (
        Fault(kind="malformed_json", sources=("workspace",), limit=1),
        Fault(kind="missing_fields", sources=("workspace",), window=(1, 2)),
        Fault(kind="missing_fields", sources=("script",), row_fields=("status",)),
        Fault(kind="unknown_status", sources=("appjob",)),
        Fault(kind="unknown_job_type", sources=("workspaceapp",), value="INSTALL_CES_AGENT"),
        Fault(kind="server_error", sources=("evs",), status=503, retry_after=1),
    )
    running, get = await serve(with_faults(*faults))
    running.sim.set_time(3)
    status, _, raw = await get(WS)
    assert status == 200 and isinstance(raw, bytes)  # not JSON
    assert "total_count" in (await get(WS))[2]  # limit 1: once only
    running.sim.set_time(1.5)
    assert "total_count" not in (await get(WS))[2] and "jobs" in (await get(WS))[2]
    running.sim.set_time(3)
    _, _, tasks = await get(SCRIPT)
    assert tasks["total_count"] == 2 and all("status" not in t for t in tasks["script_execution_tasks"])
    (jid,) = running.sim.job_ids("appjob", P)
    _, _, v2 = await get(f"/v2/{P}/job/{jid}")
    assert v2["status"] == "SOME_FUTURE_STATUS" and {s["status"] for s in v2["sub_jobs"]} == {"SOME_FUTURE_STATUS"}
    _, _, v1 = await get(f"/v1/{P}/job/{jid}")
    assert v1["job"]["job_status"] == 7
    _, _, items = await get(APP, [("job_type", "CREATE_SERVER")])
    assert {i["job_type"] for i in items["items"]} == {"INSTALL_CES_AGENT"}
    status, headers, body = await get(f"/v1/{P}/jobs/{running.sim.job_ids('evs', P)[0]}")
    assert status == 503 and headers["Retry-After"] == "1" and body["error"]["code"]


async def test_delay_fault(serve: Any) -> None:
    running, get = await serve(with_faults(Fault(kind="delay", seconds=0.3, sources=("workspace",))))
    started = time.perf_counter()
    assert (await get(WS))[0] == 200
    assert time.perf_counter() - started >= 0.3


async def test_probability_is_seeded_and_limit_caps(serve: Any) -> None:
    flaky = with_faults(
        Fault(kind="throttle", sources=("workspace",), probability=0.5),
        Fault(kind="server_error", sources=("evs",), limit=2),
    )
    outcomes = []
    for _ in range(2):
        running, get = await serve(flaky)
        outcomes.append([(await get(WS))[0] for _ in range(20)])
    assert outcomes[0] == outcomes[1] and {200, 429} <= set(outcomes[0])
    job = running.sim.job_ids("evs", P)[0]
    assert [(await get(f"/v1/{P}/jobs/{job}"))[0] for _ in range(4)] == [500, 500, 200, 200]


async def test_strongest_refusal_wins_and_only_it_counts(serve: Any) -> None:
    running, get = await serve(
        with_faults(
            Fault(kind="throttle", limit=1),
            Fault(kind="token_expiry", window=(0, 1)),
            Fault(kind="unknown_status", sources=("workspace",), limit=1),
        )
    )
    assert (await get(WS))[2]["error_code"] == "APIG.0301"  # token_expiry beats throttle
    running.sim.set_time(3)
    assert (await get(WS))[0] == 429  # the throttle's one firing was not used up above
    _, _, body = await get(WS)
    assert {j["status"] for j in body["jobs"]} == {"SOME_FUTURE_STATUS"}  # nor the body fault's
    assert running.sim.faults.fired == {0: 1, 1: 1, 2: 1}


async def test_project_scoped_fault_and_token_expiry_at(serve: Any) -> None:
    running, get = await serve(with_faults(Fault(kind="token_expiry", at=5, projects=(P,))))
    assert (await get(WS, token=DEFAULT_TOKEN, sign=False))[0] == 200
    running.sim.advance(5)
    status, _, body = await get(WS, token=DEFAULT_TOKEN, sign=False)
    assert status == 401 and "token expires, expires_at: 2024-05-01T08:00:05" in body["error_msg"]
    assert (await get(f"/v2/{Q}/workspace-sub-jobs"))[0] == 200


# --- scenario errors -------------------------------------------------------------------------

BAD = [
    pytest.param(
        f"projects: {{{P}: {{workspace: [{{desktopz: 3}}]}}}}", f"projects.{P}.workspace[0].desktopz", id="unknown-key"
    ),
    pytest.param(f"projects: {{{P}: {{workspace: [{{fail: 1.5}}]}}}}", f"projects.{P}.workspace[0].fail", id="share"),
    pytest.param(f"projects: {{{P}: {{evs: [{{count: many}}]}}}}", f"projects.{P}.evs[0].count", id="type"),
    pytest.param(
        f"projects: {{{P}: {{script: [{{duration: [5, 1]}}]}}}}", f"projects.{P}.script[0].duration", id="range"
    ),
    pytest.param(f"projects: {{{P}: {{workspace: [{{fail: 0.6, stuck: 0.6}}]}}}}", "stuck", id="fail+stuck"),
    pytest.param(f"projects: {{{P}: {{evz: []}}}}", f"projects.{P}.evz", id="unknown-source"),
    pytest.param("faults: [{kind: explode}]", "faults[0].kind", id="fault-kind"),
    pytest.param("faults: [{kind: throttle, sources: [nope]}]", "faults[0].sources", id="fault-source"),
    pytest.param("faults: [{kind: delay, window: [5, 1]}]", "faults[0].window", id="fault-window"),
    pytest.param("projetcs: {}", "projetcs", id="top-level"),
    pytest.param("projects: [unclosed", "not valid YAML", id="yaml"),
]


@pytest.mark.parametrize(("text", "key"), BAD)
def test_bad_scenario_names_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_scenario(text, "bad.yaml")
    assert str(e.value).startswith("bad.yaml") and key in str(e.value)


def test_bad_scenario_file_names_file_and_line(tmp_path: Any) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(f"seed: 1\nprojects:\n  {P}:\n    workspace:\n      - count: 2\n        fail: 2\n")
    with pytest.raises(ConfigError) as e:
        load_scenario(path)
    assert e.value.file == str(path) and e.value.line == 6 and e.value.key == f"projects.{P}.workspace[0].fail"
