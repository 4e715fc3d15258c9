"""The scale scenario (issue 11): exact counts per API, the failure window, ids up front, YAML."""

from __future__ import annotations

from collections import Counter

import pytest

from watcher.simulator.scale import project_id, scale_scenario, to_yaml
from watcher.simulator.scenario import parse_scenario
from watcher.simulator.server import named_scenario
from watcher.simulator.settings import Settings
from watcher.simulator.state import Simulator

FROZEN = Settings(speed=0)
FAILED = {"FAILED", "FAIL"}


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return Simulator(scale_scenario(), FROZEN)


def test_ten_thousand_jobs_over_fifty_projects_all_five_apis(sim: Simulator) -> None:
    projects = list(sim.plan.projects)
    assert len(projects) == 50 and projects[0] == project_id(0) == "scaleproject0000" + "0" * 16
    per_api: Counter[str] = Counter()
    for plan in sim.plan.projects.values():
        per_api["workspace"] += len(plan.desktops)
        per_api["workspaceapp"] += sum(1 for j in plan.app_jobs if not j.tracked)
        per_api["appjob"] += sum(1 for j in plan.app_jobs if j.tracked)
        per_api["script"] += len(plan.tasks)
        per_api["evs"] += len(plan.evs_jobs)
    assert per_api == dict.fromkeys(("workspace", "workspaceapp", "appjob", "script", "evs"), 2000)
    assert {len(sim.job_ids("appjob", p)) for p in projects} == {len(sim.job_ids("evs", p)) for p in projects} == {40}


def test_four_thousand_failures_within_twenty_seconds_and_nothing_else_ends_then(sim: Simulator) -> None:
    ends = [t for t in sim.transitions() if t.from_status == "RUNNING"]
    failed = [t for t in ends if t.to_status in FAILED]
    # appjob: the job and its sub-job; workspaceapp: the sub-jobs of both App batches (list-only and tracked)
    assert Counter(t.source for t in failed) == {"workspace": 800, "workspaceapp": 1600, "appjob": 1600, "script": 800,
                                                 "evs": 800}  # fmt: skip
    failed_app_jobs = [j for plan in sim.plan.projects.values() for j in plan.app_jobs if j.timeline.failed]
    assert len(failed_app_jobs) == 1600  # so 800 + 1,600 + 800 + 800 = 4,000 failed jobs, one page each
    assert 60.0 <= min(t.at_seconds for t in failed) and max(t.at_seconds for t in failed) <= 80.0
    succeeded = [t for t in ends if t.to_status not in FAILED]
    assert len(succeeded) == 6000 + 1200 + 1200  # + the tracked App jobs' sub-jobs, by id and as list rows
    assert max(t.at_seconds for t in succeeded) < 60.0


def test_by_id_jobs_exist_from_the_first_second(sim: Simulator) -> None:
    sim.set_time(0)
    for p in list(sim.plan.projects)[:5]:
        assert all(sim.app_job(p, j, "v2") for j in sim.job_ids("appjob", p))
        assert all(sim.evs_job(p, j) for j in sim.job_ids("evs", p))


def test_yaml_round_trip_and_by_name() -> None:
    small = scale_scenario(projects=2, per_source=16, failing=8)
    assert parse_scenario(to_yaml(small)) == small
    assert named_scenario("scale") == scale_scenario()
    with pytest.raises(ValueError, match="failing must be between 0 and per_source"):
        scale_scenario(per_source=4, failing=5)
