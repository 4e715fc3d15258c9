"""The simulator's fidelity cases (issue 10): a Workspace App sub-job path through ABNORMAL and
ROLLBACK, truncated pages, the same App job through both Workspace App APIs, an EVS batch
whose sub-jobs are stuck, an App job whose sub-job fails; and the shipped scenario files that
play each, checked against the exact sequences their headers promise.

Lifecycle checks query :class:`Simulator` directly with a frozen clock; contract checks go over
HTTP to a simulator on 127.0.0.1, through the real sources and cloud client where it matters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.unit.test_simulator_scenario import APP, FROZEN, SCRIPT, WS, P, serve  # noqa: F401 - serve is a fixture
from watcher.cloud.client import CloudClient
from watcher.cloud.credentials import Credentials
from watcher.errors import ConfigError, MalformedResponse
from watcher.simulator import DEFAULT_AK, DEFAULT_SK
from watcher.simulator.lifecycle import scenario_transitions
from watcher.simulator.scenario import Fault, Scenario, load_scenario, parse_scenario
from watcher.simulator.server import SCENARIOS, scenario_path, start_simulator
from watcher.simulator.state import Simulator
from watcher.sources.appjob import AppJobSource
from watcher.sources.base import Observation, Target
from watcher.sources.evs import EvsSource
from watcher.sources.workspace import WorkspaceSource
from watcher.sources.workspaceapp import WorkspaceAppSource

REGION = "cn-north-4"


def scenario(name: str) -> Scenario:
    return load_scenario(scenario_path(name))


def changes(sc: Scenario, api: str = "v2") -> list[tuple[str, str, str | None, str, float]]:
    return [
        (t.source, t.job_id, t.from_status, t.to_status, t.at_seconds) for t in scenario_transitions(sc, appjob_api=api)
    ]


@pytest.fixture
async def cloud() -> AsyncIterator[Any]:
    """A real CloudClient against a simulator: ``await cloud(scenario)`` -> (simulator state, client)."""
    started: list[Any] = []

    async def start(sc: Scenario) -> tuple[Simulator, CloudClient]:
        running = await start_simulator(scenario=sc, settings=FROZEN)
        client = CloudClient(credentials=Credentials(ak=DEFAULT_AK, sk=DEFAULT_SK),
                             endpoints=dict.fromkeys(("workspace", "workspaceapp", "evs"), running.url))  # fmt: skip
        started.append((running, client))
        return running.sim, client

    yield start
    for running, client in started:
        await client.aclose()
        await running.stop()


def tgt(source: str, **kw: Any) -> Target:
    return Target(source=source, region=REGION, project_id=P, **kw)


def by_id(observations: list[Observation]) -> dict[str, tuple[str | None, str, str, bool]]:
    return {o.job_id: (o.parent_job_id, o.status, o.phase, o.final) for o in observations}


# --- a Workspace App sub-job path -------------------------------------------------------------

J_PATH, S1_PATH, S2_PATH = "551836851539401946", "163501064784393049", "151411036199739234"


def test_abnormal_rollback_failed_scenario_plays_exactly_its_header() -> None:
    sc = scenario("abnormal-rollback-failed")
    assert changes(sc) == [
        ("workspaceapp", S2_PATH, None, "WAITING", 0.0), ("workspaceapp", S1_PATH, None, "WAITING", 0.0),
        ("workspaceapp", S2_PATH, "WAITING", "RUNNING", 1.0), ("workspaceapp", S1_PATH, "WAITING", "RUNNING", 1.0),
        ("workspaceapp", S2_PATH, "RUNNING", "ABNORMAL", 5.0), ("workspaceapp", S1_PATH, "RUNNING", "SUCCESS", 5.0),
        ("workspaceapp", S2_PATH, "ABNORMAL", "ROLLBACK", 15.0), ("workspaceapp", S2_PATH, "ROLLBACK", "FAILED", 25.0),
    ]  # fmt: skip
    sim = Simulator(sc, FROZEN)
    assert sim.job_ids("workspaceapp", P) == [J_PATH] and sim.job_ids("appjob", P) == []
    seen = {}
    for t in (0.5, 3, 5, 14.9, 15, 24.9, 25, 1e6):
        sim.set_time(t)
        rows = {r["id"]: r for r in sim.app_sub_jobs(P, job_type="CREATE_SERVER")}
        row = rows[S2_PATH]
        seen[t] = (row["status"], row["error_code"], row["end_time"] is not None, row["job_id"])
    err = "WKS.00129901"
    assert seen == {
        0.5: ("WAITING", None, False, J_PATH), 3: ("RUNNING", None, False, J_PATH),
        5: ("ABNORMAL", err, False, J_PATH), 14.9: ("ABNORMAL", err, False, J_PATH),
        15: ("ROLLBACK", err, False, J_PATH), 24.9: ("ROLLBACK", err, False, J_PATH),
        25: ("FAILED", err, True, J_PATH), 1e6: ("FAILED", err, True, J_PATH),
    }  # fmt: skip
    sim.set_time(20)
    assert [r["id"] for r in sim.app_sub_jobs(P, job_type="CREATE_SERVER", status="ROLLBACK")] == [S2_PATH]
    assert sim.app_sub_jobs(P, job_type="CREATE_SERVER", status="ABNORMAL") == []
    assert [r["id"] for r in sim.app_sub_jobs(P, job_type="CREATE_SERVER", status="SUCCESS")] == [S1_PATH]


PATH_APPJOB = f"""seed: 9
projects:
  {P}:
    appjob:
      - {{servers: 1, fail: 1.0, start: 0, wait: 1, duration: 2,
         path: [{{status: ABORTING, for: 3}}, {{status: ABNORMAL}}]}}
"""


def test_a_path_held_for_good_never_ends_and_its_app_job_stays_running() -> None:
    sim = Simulator(parse_scenario(PATH_APPJOB), FROZEN)
    (job,) = sim.job_ids("appjob", P)
    states = {}
    for t in (2, 3, 5.9, 6, 1e6):
        sim.set_time(t)
        v2, v1 = sim.app_job(P, job, "v2"), sim.app_job(P, job, "v1")
        states[t] = (
            v2["status"],
            v2["sub_jobs"][0]["status"],
            v1["job"]["job_status"],
            v1["job"]["sub_jobs"][0]["job_status"],
        )
    # v1 has no integer for ABORTING/ABNORMAL: a sub-job that has not ended is "2" (processing)
    assert states == {2: ("RUNNING", "RUNNING", 2, 2), 3: ("RUNNING", "ABORTING", 2, 2), 5.9: ("RUNNING", "ABORTING", 2, 2),
                      6: ("RUNNING", "ABNORMAL", 2, 2), 1e6: ("RUNNING", "ABNORMAL", 2, 2)}  # fmt: skip
    (sub,) = (s["id"] for s in sim.app_job(P, job, "v2")["sub_jobs"])
    assert [(t.source, t.job_id, t.from_status, t.to_status, t.at_seconds) for t in sim.transitions() if t.job_id == sub
            and t.source == "appjob"] == [("appjob", sub, None, "WAITING", 0.0), ("appjob", sub, "WAITING", "RUNNING", 1.0),
                                          ("appjob", sub, "RUNNING", "ABORTING", 3.0),
                                          ("appjob", sub, "ABORTING", "ABNORMAL", 6.0)]  # fmt: skip
    v1 = [t for t in sim.transitions(appjob_api="v1", sources=["appjob"]) if t.job_id == sub]  # 2 -> 2: no change
    assert [(t.from_status, t.to_status) for t in v1] == [(None, "3"), ("3", "2")]


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        (
            "fail: 1.0, path: [{status: FAILED, for: 1}]",
            ".path[0].status",
            "expected one of RUNNING, ABNORMAL, ROLLBACK, ABORTING",
        ),
        (
            "fail: 1.0, path: [{status: ABNORMAL}, {status: ROLLBACK, for: 1}]",
            ".path[0].for",
            "only the last step may be held",
        ),
        ("fail: 1.0, path: [{status: ROLLBACK, for: -1}]", ".path[0].for", "expected a number >= 0"),
        ("fail: 1.0, path: [{status: ROLLBACK, seconds: 3}]", ".path[0].seconds", "Object contains unknown field"),
        ("fail: 0, path: [{status: ROLLBACK, for: 3}]", ".path", "a path is what failing sub-jobs go through"),
    ],
)
def test_bad_path_names_the_key(text: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_scenario(f"projects: {{{P}: {{workspaceapp: [{{servers: 1, {text}}}]}}}}")
    assert info.value.key == f"projects.{P}.workspaceapp[0]{key}"


async def test_path_over_http_through_the_sources_is_seen_at_every_step(cloud: Any) -> None:
    """Each state of the path is what the real sources read over HTTP: status, phase, final."""
    sim, client = await cloud(scenario("abnormal-rollback-failed"))
    src = WorkspaceAppSource(sweep_every=1000)
    t = tgt("workspaceapp", job_types=("CREATE_SERVER",))
    active: list[str] = []
    seen = []
    for at in (0, 1, 5, 15, 25, 30):
        sim.set_time(at)
        result = await src.fetch(client, t, active)
        obs = by_id(result.observations)
        seen.append(obs.get(S2_PATH))
        active = sorted(j for j, (_, _, _, final) in obs.items() if not final)  # what a finality-keeping poller tracks
    assert seen == [
        (J_PATH, "WAITING", "pending", False), (J_PATH, "RUNNING", "running", False),
        (J_PATH, "ABNORMAL", "failed", False), (J_PATH, "ROLLBACK", "running", False),
        (J_PATH, "FAILED", "failed", True), (J_PATH, "FAILED", "failed", True),
    ]  # fmt: skip


NARROW_PATH = f"""seed: 21
projects:
  {P}:
    workspaceapp:
      - {{count: 250, servers: 1, start: 0, wait: 0, duration: 0.5}}   # history: listing it all takes 3 pages
      - {{servers: 1, fail: 1.0, start: 1, wait: 1, duration: 3,
         path: [{{status: ABNORMAL, for: 10}}, {{status: ROLLBACK, for: 10}}]}}
"""


async def test_narrow_polls_over_http_re_read_a_sub_job_in_abnormal_and_rollback_every_poll(cloud: Any) -> None:
    sim, client = await cloud(parse_scenario(NARROW_PATH))
    (job,) = [j for j in sim.plan.projects[P].app_jobs if j.subs[0].timeline.path]
    sub = job.subs[0].id
    src = WorkspaceAppSource(sweep_every=1000)
    t = tgt("workspaceapp", job_types=("CREATE_SERVER",))
    active: list[str] = []
    seen = []
    for at in (2.5, 3, 5, 10, 15, 20, 24.9, 25, 30):
        sim.set_time(at)
        before = sim.requests["workspaceapp.list_sub_jobs"]
        result = await src.fetch(client, t, active)
        got = by_id(result.observations).get(sub)
        seen.append((at, got[1] if got else None, result.complete, sim.requests["workspaceapp.list_sub_jobs"] - before))
        active = sorted(j for j, (_, _, _, final) in by_id(result.observations).items() if not final)
    # first poll: full listing (3 pages); then WAITING + RUNNING listings, plus job_id=<parent> while
    # the sub-job is not final (ABNORMAL, ROLLBACK), and nothing more once it is FAILED.
    assert seen == [
        (2.5, "RUNNING", True, 3), (3, "RUNNING", False, 2), (5, "ABNORMAL", False, 3), (10, "ABNORMAL", False, 3),
        (15, "ROLLBACK", False, 3), (20, "ROLLBACK", False, 3), (24.9, "ROLLBACK", False, 3),
        (25, "FAILED", False, 3), (30, None, False, 2),
    ]  # fmt: skip
    assert active == []


# --- truncated pages --------------------------------------------------------------------------

TRUNCATED = [
    pytest.param("workspace", WS, [], "total_count", "jobs", id="workspace"),
    pytest.param("workspaceapp", APP, [("job_type", "CREATE_SERVER")], "count", "items", id="workspaceapp"),
    pytest.param("script", SCRIPT, [], "total_count", "script_execution_tasks", id="script"),
]


@pytest.mark.parametrize(("source", "path", "params", "total", "rows"), TRUNCATED)
async def test_truncated_page_keeps_the_total_and_drops_rows_in_its_window(
    serve: Any,  # noqa: F811 - the fixture imported above
    source: str,
    path: str,
    params: list[tuple[str, str]],
    total: str,
    rows: str,
) -> None:
    sc = parse_scenario(f"""projects: {{{P}: {{workspace: [{{desktops: 3, stuck: 1.0}}],
        workspaceapp: [{{servers: 3, stuck: 1.0}}], script: [{{count: 3, stuck: 1.0}}],
        evs: [{{job_type: batchCreateVolume, volumes: 2}}]}}}}""")
    sc = msgspec.structs.replace(sc, faults=(
        Fault(kind="truncated_page", sources=(source,), window=(10.0, 20.0)),
        Fault(kind="truncated_page", sources=(source,), window=(20.0, 30.0), keep=1),
    ))  # fmt: skip
    running, get = await serve(sc)
    page = [*params, ("limit", "100")]
    running.sim.set_time(9.9)
    _, _, full = await get(path, page)
    assert full[total] == 3 and len(full[rows]) == 3
    running.sim.set_time(10)
    status, _, body = await get(path, page)
    assert status == 200 and body == {total: 3, rows: []}
    running.sim.set_time(25)
    _, _, short = await get(path, page)
    assert short == {total: 3, rows: full[rows][:1]}
    others = [s for s in ("workspace", "workspaceapp", "script") if s != source]
    for other, opath, oparams, ototal, orows in [(p.values[0], *p.values[1:]) for p in TRUNCATED]:
        if other in others:
            _, _, fine = await get(opath, [*oparams, ("limit", "100")])
            assert (fine[ototal], len(fine[orows])) == (3, 3)  # other sources spared
    (evs_job,) = running.sim.job_ids("evs", P)
    assert (await get(f"/v1/{P}/jobs/{evs_job}"))[0] == 200
    running.sim.set_time(30)
    assert len((await get(path, page))[2][rows]) == 3


def test_truncated_page_only_applies_to_list_routes() -> None:
    with pytest.raises(
        ConfigError, match="evs answers no pages; truncated_page applies to workspace, workspaceapp, script"
    ) as info:
        parse_scenario("faults: [{kind: truncated_page, sources: [evs]}]")
    assert info.value.key == "faults[0].sources"
    with pytest.raises(ConfigError, match="expected a row count >= 0") as info:
        parse_scenario("faults: [{kind: truncated_page, keep: -1}]")
    assert info.value.key == "faults[0].keep"


TRUNC_D1, TRUNC_J1, TRUNC_D2 = (
    "c6b7ac57-e7fe-451d-ac16-52c6bc8e523a", "e1a752de-3d15-48f4-a4af-d0cd2293fe3b", "d6a6cf19-b76c-4e92-a478-1650272ec69f"
)  # fmt: skip


def test_truncated_page_stuck_scenario_plays_exactly_its_header() -> None:
    sc = scenario("truncated-page-stuck")
    assert changes(sc) == [
        ("workspace", TRUNC_D1, None, "WAITING", 0.0), ("workspace", TRUNC_D1, "WAITING", "RUNNING", 1.0),
        ("workspace", TRUNC_D2, None, "WAITING", 40.0), ("workspace", TRUNC_D2, "WAITING", "RUNNING", 41.0),
        ("workspace", TRUNC_D2, "RUNNING", "FAILED", 45.0),
    ]  # fmt: skip
    assert [(f.kind, f.sources, f.span(), f.keep) for f in sc.faults] == [
        ("truncated_page", ("workspace",), (20.0, 26.0), 0)
    ]


async def test_truncated_page_stuck_over_http_fails_the_poll_and_nothing_moves(cloud: Any) -> None:
    sim, client = await cloud(scenario("truncated-page-stuck"))
    src, t = WorkspaceSource(), tgt("workspace")
    outcome = []
    for at in (10, 19.9, 20, 25.9, 26, 44.9, 45):
        sim.set_time(at)
        try:
            result = await src.fetch(client, t, [TRUNC_D1])
            outcome.append((at, {o.job_id: o.status for o in result.observations}, result.gone))
        except MalformedResponse as e:
            outcome.append((at, str(e), None))
    broken = ("malformed workspace.list_sub_jobs response: no rows at offset 0 but a total of 1 "
              f"api=workspace.list_sub_jobs project={P}")  # fmt: skip
    assert outcome == [
        (10, {TRUNC_D1: "RUNNING"}, []), (19.9, {TRUNC_D1: "RUNNING"}, []),
        (20, broken, None), (25.9, broken, None),
        (26, {TRUNC_D1: "RUNNING"}, []), (44.9, {TRUNC_D1: "RUNNING", TRUNC_D2: "RUNNING"}, []),
        (45, {TRUNC_D1: "RUNNING", TRUNC_D2: "FAILED"}, []),
    ]  # fmt: skip


# --- the same App job through both APIs; an App job with a failing sub-job --------------------

J_BOTH, S1_BOTH, S2_BOTH = "402049883816690868", "382074929874491280", "125586354637616106"


def test_app_job_both_apis_scenario_plays_exactly_its_header() -> None:
    sc = scenario("app-job-both-apis")
    assert changes(sc) == [
        ("appjob", S2_BOTH, None, "WAITING", 0.0), ("appjob", S1_BOTH, None, "WAITING", 0.0),
        ("appjob", J_BOTH, None, "WAITING", 0.0),
        ("workspaceapp", S2_BOTH, None, "WAITING", 0.0), ("workspaceapp", S1_BOTH, None, "WAITING", 0.0),
        ("appjob", S2_BOTH, "WAITING", "RUNNING", 1.0), ("appjob", S1_BOTH, "WAITING", "RUNNING", 1.0),
        ("appjob", J_BOTH, "WAITING", "RUNNING", 1.0),
        ("workspaceapp", S2_BOTH, "WAITING", "RUNNING", 1.0), ("workspaceapp", S1_BOTH, "WAITING", "RUNNING", 1.0),
        ("appjob", S2_BOTH, "RUNNING", "FAILED", 8.0), ("appjob", S1_BOTH, "RUNNING", "SUCCESS", 8.0),
        ("appjob", J_BOTH, "RUNNING", "FAILED", 8.0),
        ("workspaceapp", S2_BOTH, "RUNNING", "FAILED", 8.0), ("workspaceapp", S1_BOTH, "RUNNING", "SUCCESS", 8.0),
    ]  # fmt: skip
    assert [x[1:] for x in changes(sc, "v1") if x[1] == J_BOTH] == [
        (J_BOTH, None, "3", 0.0), (J_BOTH, "3", "2", 1.0), (J_BOTH, "2", "0", 8.0)]  # fmt: skip


@pytest.mark.parametrize("api", ["v2", "v1"])
async def test_one_app_job_through_both_apis_over_http_is_the_same_job(cloud: Any, api: str) -> None:
    sim, client = await cloud(scenario("app-job-both-apis"))
    assert sim.job_ids("appjob", P) == [J_BOTH] and J_BOTH in sim.job_ids("workspaceapp", P)
    sim.set_time(8)
    byid = (await AppJobSource().fetch(client, tgt("appjob", api_version=api), [J_BOTH])).observations
    listed = (
        await WorkspaceAppSource().fetch(client, tgt("workspaceapp", job_types=("CREATE_SERVER",)), [])
    ).observations
    failed = {"v2": "FAILED", "v1": "0"}[api]
    assert by_id(byid) == {J_BOTH: (None, failed, "failed", True), S1_BOTH: (J_BOTH, {"v2": "SUCCESS", "v1": "1"}[api], "succeeded", True),
                           S2_BOTH: (J_BOTH, failed, "failed", True)}  # fmt: skip
    assert by_id(listed) == {
        S1_BOTH: (J_BOTH, "SUCCESS", "succeeded", True),
        S2_BOTH: (J_BOTH, "FAILED", "failed", True),
    }
    sub = {o.job_id: o for o in byid}[S2_BOTH]
    row = {o.job_id: o for o in listed}[S2_BOTH]
    assert (sub.error_code, sub.message, sub.entities.resource_name) == (
        row.error_code, row.message, row.entities.resource_name) == (
        "WKS.00129901", "The service is now unavailable to process the request.", "APS-BOTH-9461378111")  # fmt: skip
    assert (sub.begin_time, sub.end_time) == (row.begin_time, row.end_time) or api == "v1"  # v1 times have no millis


J_FAIL, S1_FAIL, S2_FAIL, S3_FAIL = (
    "146440084673100299",
    "417569840223892719",
    "952450521548490746",
    "820113558278719206",
)


@pytest.mark.parametrize(
    ("api", "words"), [("v2", ("WAITING", "RUNNING", "SUCCESS", "FAILED")), ("v1", ("3", "2", "1", "0"))]
)
def test_app_job_failing_sub_job_scenario_plays_exactly_its_header(api: str, words: tuple[str, ...]) -> None:
    waiting, running, success, failed = words
    got = [x for x in changes(scenario("app-job-failing-sub-job"), api) if x[0] == "appjob"]
    expected = []
    for at, prev, to in ((0.0, None, waiting), (1.0, waiting, running)):
        expected += [("appjob", j, prev, to, at) for j in sorted((J_FAIL, S1_FAIL, S2_FAIL, S3_FAIL))]
    expected += sorted([("appjob", J_FAIL, running, failed, 7.0), ("appjob", S3_FAIL, running, failed, 7.0),
                        ("appjob", S1_FAIL, running, success, 7.0), ("appjob", S2_FAIL, running, success, 7.0)])  # fmt: skip
    assert got == expected


async def test_app_job_failing_sub_job_over_http(cloud: Any) -> None:
    sim, client = await cloud(scenario("app-job-failing-sub-job"))
    sim.set_time(6.9)
    running = by_id((await AppJobSource().fetch(client, tgt("appjob"), [J_FAIL])).observations)
    assert running == {J_FAIL: (None, "RUNNING", "running", False), **{
        s: (J_FAIL, "RUNNING", "running", False) for s in (S1_FAIL, S2_FAIL, S3_FAIL)}}  # fmt: skip
    sim.set_time(7)
    for api, (ok, bad) in (("v2", ("SUCCESS", "FAILED")), ("v1", ("1", "0"))):
        result = await AppJobSource().fetch(client, tgt("appjob", api_version=api), [J_FAIL])
        assert by_id(result.observations) == {
            J_FAIL: (None, bad, "failed", True), S1_FAIL: (J_FAIL, ok, "succeeded", True),
            S2_FAIL: (J_FAIL, ok, "succeeded", True), S3_FAIL: (J_FAIL, bad, "failed", True)}  # fmt: skip
        failed = {o.job_id: o for o in result.observations}[S3_FAIL]
        assert (failed.error_code, failed.message) == (
            "WKS.00129901",
            "The service is now unavailable to process the request.",
        )


# --- an EVS batch whose sub-jobs are stuck ---------------------------------------------------

B_EVS, V1_EVS, V2_EVS = (
    "c16e6f1c2793f20d7217719758b52424",
    "e0ac39110884715c17bba35aad87efc2",
    "dfc4ab0497a5154761ae4c1ac3b78ccb",
)


def test_evs_batch_stuck_scenario_plays_exactly_its_header() -> None:
    assert changes(scenario("evs-batch-stuck")) == [
        ("evs", B_EVS, None, "INIT", 0.0), ("evs", V2_EVS, None, "INIT", 0.0), ("evs", V1_EVS, None, "INIT", 0.0),
        ("evs", B_EVS, "INIT", "RUNNING", 1.0), ("evs", V2_EVS, "INIT", "RUNNING", 1.0),
        ("evs", V1_EVS, "INIT", "RUNNING", 1.0),
    ]  # fmt: skip


async def test_evs_batch_stuck_over_http_stays_running_and_not_final(cloud: Any) -> None:
    sim, client = await cloud(scenario("evs-batch-stuck"))
    assert sim.job_ids("evs", P) == [B_EVS]
    for at in (1, 600, 1e6):
        sim.set_time(at)
        body = sim.evs_job(P, B_EVS)
        assert (body["status"], body["end_time"], [s["status"] for s in body["entities"]["sub_jobs"]]) == (
            "RUNNING", "", ["RUNNING", "RUNNING"])  # fmt: skip
        result = await EvsSource().fetch(client, tgt("evs"), [B_EVS])
        assert by_id(result.observations) == {B_EVS: (None, "RUNNING", "running", False),
                                              V1_EVS: (B_EVS, "RUNNING", "running", False),
                                              V2_EVS: (B_EVS, "RUNNING", "running", False)}  # fmt: skip
        assert {o.job_id: o.entities.volume_name for o in result.observations} == {
            B_EVS: None, V1_EVS: "volume-9411", V2_EVS: "volume-5985"}  # fmt: skip


# --- every shipped scenario ------------------------------------------------------------------


def test_every_shipped_scenario_loads_and_has_a_header() -> None:
    names = sorted(p.stem for p in SCENARIOS.glob("*.yaml"))
    assert names == ["abnormal-rollback-failed", "app-job-both-apis", "app-job-failing-sub-job", "demo",
                     "evs-batch-stuck", "small", "truncated-page-stuck"]  # fmt: skip
    for name in names:
        path = scenario_path(name)
        head = Path(path).read_text().split("\nname:")[0]
        assert head.startswith("# ") and len(head.splitlines()) >= 3, name
        sim = Simulator(load_scenario(path), FROZEN)
        sim.set_time(0)
        for p in sim.projects:  # by-id ids handed out up front exist from the first second
            assert all(sim.evs_job(p, j) for j in sim.job_ids("evs", p))
            assert all(sim.app_job(p, j, "v2") for j in sim.job_ids("appjob", p))
    assert scenario_path("demo") == SCENARIOS / "demo.yaml"
    assert scenario_path(str(SCENARIOS / "small.yaml")) == SCENARIOS / "small.yaml"
    with pytest.raises(ConfigError, match="no scenario file or shipped scenario called 'nope'"):
        scenario_path("nope")
