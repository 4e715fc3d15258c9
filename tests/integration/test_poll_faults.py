"""Pollers against a misbehaving cloud, over real HTTP to the simulator.

The store is in memory here: what is under test is the client, the sources and the poll
step facing 429 storms, malformed pages and bad credentials (the Kafka-backed store is
proven by test_pipeline). Every transition the scenario makes must still be published
exactly once, and no secret may show up anywhere.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from pathlib import Path

import msgspec
import pytest

from watcher.cloud.client import CloudClient, RetryPolicy
from watcher.cloud.credentials import Credentials
from watcher.poller.loop import Intervals, MemoryStore, PollOutcome, poll_target
from watcher.poller.schedule import TargetState
from watcher.simulator import DEFAULT_AK, DEFAULT_SK
from watcher.simulator.scenario import Fault, parse_scenario
from watcher.simulator.server import small_scenario_path, start_simulator
from watcher.simulator.settings import Settings
from watcher.sources import get_source
from watcher.sources.base import Target

INTERVALS = Intervals(fast=0.0, idle=0.0)


def small_with(*faults: Fault):
    base = parse_scenario(Path(small_scenario_path()).read_text())
    return msgspec.structs.replace(base, faults=tuple(faults))


def client_for(url: str, ak: str = DEFAULT_AK, sk: str = DEFAULT_SK, read_timeout: float = 30.0, **retry) -> CloudClient:
    policy = RetryPolicy(**{"max_attempts": 6, "base_delay": 0.05, "max_delay": 0.2, "budget_seconds": 10.0, **retry})
    endpoints = {"workspace": url, "workspaceapp": url, "evs": url}
    return CloudClient(credentials=Credentials(ak=ak, sk=sk), endpoints=endpoints, retry=policy,
                       read_timeout=read_timeout)


def targets_for(running) -> list[Target]:
    sim, out = running.sim, []
    for p in running.projects:
        out += [
            Target(source="workspace", region="cn-north-4", project_id=p),
            Target(source="workspaceapp", region="cn-north-4", project_id=p, job_types=("CREATE_SERVER",)),
            Target(source="script", region="cn-north-4", project_id=p),
            Target(source="evs", region="cn-north-4", project_id=p, job_ids=tuple(sim.job_ids("evs", p))),
            Target(source="appjob", region="cn-north-4", project_id=p, job_ids=tuple(sim.job_ids("appjob", p))),
        ]
    return out


async def step_through(running, client, *, cycles_per_instant: int = 1, events: list | None = None):
    """Poll every target at every transition instant; return published rows and outcomes."""
    sim, store, published, outcomes = running.sim, MemoryStore(), Counter(), []

    async def publish(batch):
        published.update((e.source, e.project_id, e.job_id, e.prev_status, e.status) for e in batch)
        if events is not None:
            events.extend(batch)

    instants = sorted({0.0, *(t.at_seconds for t in sim.transitions())})
    for at in instants:
        sim.set_time(at)
        for _ in range(cycles_per_instant):
            for t in targets_for(running):
                outcomes.append(
                    await poll_target(t, get_source(t.source), client, store, publish, intervals=INTERVALS,
                                      force=True, now=datetime.now(sim.epoch.tzinfo))
                )
    expected = Counter((t.source, t.project, t.job_id, t.from_status, t.to_status) for t in sim.transitions())
    return published, expected, outcomes


async def test_429_storm_with_retry_after_loses_nothing_and_does_not_storm():
    # Retry-After is whole seconds on the wire: 1 s per throttled request, so keep the storm short.
    throttle = Fault(kind="throttle", probability=0.3, retry_after=1, limit=12)
    running = await start_simulator(scenario=small_with(throttle), settings=Settings(speed=0))
    try:
        async with client_for(running.url) as client:
            published, expected, outcomes = await step_through(running, client)
        fired = running.sim.faults.fired[0]
        assert fired == 12, "the storm did not happen"
        assert published == expected
        # bounded: every 429 costs one retry, never a burst; failed polls back off
        assert client.requests <= sum(o.requests for o in outcomes if o.polled) + fired + 5 * len(outcomes)
    finally:
        await running.stop()


async def test_malformed_page_is_one_clear_log_line_and_the_next_cycle_recovers(caplog):
    broken = Fault(kind="malformed_json", sources=("workspace",), limit=1)
    running = await start_simulator(scenario=small_with(broken), settings=Settings(speed=0))
    caplog.set_level(logging.WARNING, logger="watcher.poller")
    try:
        async with client_for(running.url) as client:
            published, expected, outcomes = await step_through(running, client, cycles_per_instant=2)
        assert running.sim.faults.fired[0] == 1
        errors = [o.error for o in outcomes if o.error]
        assert len(errors) == 1 and "malformed" in errors[0] and "workspace" in errors[0]
        lines = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
        assert len(lines) == 1 and "poll of workspace/" in lines[0]
        assert published == expected  # the next cycle saw everything
    finally:
        await running.stop()


@pytest.mark.parametrize("bad", ["sk", "ak"])
async def test_bad_credentials_give_one_clear_error_without_secrets(bad, caplog):
    ak = "AKRECOGNISABLE0000000001" if bad == "ak" else DEFAULT_AK
    sk = "SKRECOGNISABLE-secret-value-000000000001"
    running = await start_simulator(scenario=small_scenario_path(), settings=Settings(speed=0))
    caplog.set_level(logging.DEBUG)
    try:
        async with client_for(running.url, ak=ak, sk=sk) as client:
            store, state = MemoryStore(), TargetState()
            target = Target(source="workspace", region="cn-north-4", project_id=running.projects[0])

            async def publish(batch):
                raise AssertionError("nothing may be published")

            out: PollOutcome = await poll_target(
                target, get_source("workspace"), client, store, publish, intervals=INTERVALS, force=True, state=state
            )
        assert out.error and "authentication failed" in out.error
        assert "workspace.list_sub_jobs" in out.error and running.projects[0] in out.error
        everything = out.error + "\n".join(r.getMessage() for r in caplog.records) + repr(client) + repr(state) + repr(store.jobs)
        assert sk not in everything
        if bad == "ak":
            assert ak not in everything
        assert client.requests == 1  # 401 is not retried
    finally:
        await running.stop()


WS_ONLY = ("workspace",)


@pytest.mark.parametrize(
    "fault",
    [
        Fault(kind="throttle", sources=WS_ONLY, probability=0.3, limit=8),  # no Retry-After: our own backoff
        Fault(kind="server_error", sources=WS_ONLY, status=500, limit=4),
        Fault(kind="server_error", sources=WS_ONLY, status=503, retry_after=0.2, limit=4),
        Fault(kind="delay", sources=WS_ONLY, seconds=0.6, limit=2),  # past the 0.3 s read timeout
        Fault(kind="token_expiry", sources=WS_ONLY, limit=2),  # 401 "token expires": not retried
        # A page without its rows while jobs are open: malformed, not "every job vanished".
        Fault(kind="missing_fields", sources=WS_ONLY, fields=("jobs",), limit=2, at=1.0),
        Fault(kind="missing_fields", sources=("workspaceapp",), fields=("items",), limit=2, at=1.0),
        Fault(kind="missing_fields", sources=("script",), fields=("script_execution_tasks",), limit=2, at=1.0),
        Fault(kind="missing_fields", sources=WS_ONLY, row_fields=("status",), limit=2),  # rows without a status
    ],
    ids=lambda f: f"{f.kind}-{f.status if f.kind == 'server_error' else ''}{','.join(f.fields or f.row_fields)}",
)
async def test_each_cloud_fault_loses_nothing_and_leaves_the_other_targets_alone(fault: Fault, caplog) -> None:
    """Every transition of the scenario is published exactly once; only the faulty source's targets
    see errors, each error kind is one warning line per target, and nothing crashes."""
    running = await start_simulator(scenario=small_with(fault), settings=Settings(speed=0))
    caplog.set_level(logging.WARNING, logger="watcher")
    try:
        async with client_for(running.url, read_timeout=0.3) as client:
            published, expected, outcomes = await step_through(running, client, cycles_per_instant=2)
        assert running.sim.faults.fired[0] > 0, "the fault did not happen"
        assert published == expected
        failing = [o.error for o in outcomes if o.error]
        source = fault.sources[0]
        assert all(f"api={source}." in e for e in failing), failing
        lines = [r.getMessage() for r in caplog.records if r.name == "watcher.poller"]
        assert all(line.startswith(f"poll of {source}/") for line in lines), lines
        if fault.fields:
            assert failing and all(f"no `{fault.fields[0]}` list" in e for e in failing), failing
        per_target = Counter(line.split()[2] for line in lines)
        assert all(n == 1 for n in per_target.values()), lines  # rate-limited: one line per target and kind
    finally:
        await running.stop()


@pytest.mark.parametrize("kind", ["unknown_status", "unknown_job_type"])
async def test_undocumented_words_pass_through_as_other_and_the_jobs_end_as_planned(kind: str) -> None:
    """For a while the API answers words it never documented: they are published as they are
    (an unknown status in phase "other"), nothing crashes, and every job ends as the plan says."""
    fault = Fault(kind=kind, sources=WS_ONLY, limit=4, at=1.0, value="SOMETHING_NEW")
    running = await start_simulator(scenario=small_with(fault), settings=Settings(speed=0))
    events: list = []
    try:
        async with client_for(running.url) as client:
            _, _, outcomes = await step_through(running, client, cycles_per_instant=2, events=events)
        assert running.sim.faults.fired[0] > 0 and not [o.error for o in outcomes if o.error]
        odd = [e for e in events if "SOMETHING_NEW" in (e.status, e.job_type)]
        assert odd and all(e.source == "workspace" for e in odd)
        if kind == "unknown_status":
            assert all(e.phase == "other" for e in odd if e.status == "SOMETHING_NEW")
        final = {(e.source, e.job_id): e.status for e in events}
        planned = {(t.source, t.job_id): t.to_status for t in running.sim.transitions()}
        assert final == planned
    finally:
        await running.stop()
