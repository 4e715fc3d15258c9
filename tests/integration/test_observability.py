"""Observability and self-health of a real worker: /metrics, /healthz, /readyz, the
watcher-blind alert and its recovered notice, and no secret in any output.

The simulator's clock is frozen (speed 0) and set by the test: every job has ended at
``END``, and a server_error fault makes one workspace target fail inside ``FAULT``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import msgspec
import pytest

from tests.integration.harness import ROOT, WatchSpec, Worker, unique_prefix, wait_for, write_config
from watcher.simulator.scenario import Fault, parse_scenario
from watcher.simulator.server import small_scenario_path, start_simulator
from watcher.simulator.settings import Settings
from watcher.sinks import WebhookSink, free_port

pytestmark = pytest.mark.timeout(300)

END = 100.0  # the small scenario ends within ~10 virtual seconds
FAULT = (200.0, 300.0)

RULES = """\
rules:
  - name: evs-failed
    when: "evs: FAIL *"
    notify: [jobs]
  - name: script-failed
    when: "script: failed"
    notify: [dead]
"""

HEALTH = """\
[health]
blind_after_failures = 3
blind_after = "1m"
check_interval = "300ms"
tags = ["blind"]
"""


def scenario(*faults: Fault):
    base = parse_scenario(Path(small_scenario_path()).read_text())
    return msgspec.structs.replace(base, faults=tuple(faults))


def workspace_fault(project: str) -> Fault:
    return Fault(kind="server_error", sources=("workspace",), projects=(project,), window=FAULT)


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


async def get(port: int, path: str) -> tuple[int, str]:
    return await asyncio.to_thread(http_get, port, path)


def samples(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of one metric in Prometheus text format."""
    out = {}
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", line)
        if m:
            out[m.group(1) or ""] = float(m.group(2))
    return out


def total(text: str, name: str) -> float:
    return sum(samples(text, name).values())


async def test_metrics_health_and_one_blind_alert_then_recovered(tansu_broker, tmp_path: Path):
    leg = tansu_broker
    running = await start_simulator(
        scenario=scenario(workspace_fault("0bec5db98280d2d02fd6c00c2de791ce")), settings=Settings(speed=0)
    )
    sim, prefix = running.sim, unique_prefix("obs")
    p0, p1 = running.projects[0], running.projects[1]
    assert p0 == "0bec5db98280d2d02fd6c00c2de791ce" and sim.horizon() < END
    jobs, blind = await WebhookSink().start(), await WebhookSink().start()
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    port = free_port()
    cfg = write_config(
        tmp_path / "w.toml",
        leg=leg,
        prefix=prefix,
        sim_url=running.url,
        watches=[WatchSpec("workspace", [p0, p1]), WatchSpec("evs", [p0], job_ids=sim.job_ids("evs", p0))],
        rules=[str(rules)],
        targets=[(jobs.url("jobs"), ["jobs", "dead"]), (blind.url("blind"), ["blind"])],
        app=f"web_port = {port}",
        cloud="retry_attempts = 1",
        extra=HEALTH,
    )
    sim.set_time(END)
    worker = Worker(cfg, tmp_path / "worker.log").start()
    try:
        await wait_for(lambda: http_get(port, "/healthz")[0] == 200, 60, "/healthz 200", worker)
        await wait_for(lambda: http_get(port, "/readyz")[0] == 200, 90, "/readyz 200", worker)
        await wait_for(lambda: len(jobs.received) >= 1, 60, "a rule's alert at the sink", worker)
        status, text = await get(port, "/metrics")
        assert status == 200
        requests = samples(text, "watcher_cloud_requests_total")
        assert any(k.startswith('{api="workspace.') and 'code="200"' in k and v > 0 for k, v in requests.items()), text
        assert samples(text, "watcher_polls_total")['{result="ok",source="workspace"}'] > 0
        assert total(text, "watcher_poll_duration_seconds_count") > 0
        ws0 = f"workspace/cn-north-4/{p0}"
        assert samples(text, "watcher_last_successful_poll_timestamp_seconds")[f'{{target="{ws0}"}}'] > 0
        assert samples(text, "watcher_seconds_since_last_successful_poll")[f'{{target="{ws0}"}}'] < 30
        assert total(text, "watcher_events_published_total") > 0
        assert samples(text, "watcher_rules_fired_total")['{rule="evs-failed",severity="error"}'] > 0
        await wait_for(lambda: total(http_get(port, "/metrics")[1], "watcher_alerts_total") > 0, 30, "alerts", worker)
        text = (await get(port, "/metrics"))[1]
        assert samples(text, "watcher_alerts_total")['{outcome="sent"}'] > 0
        assert total(text, "watcher_delivery_duration_seconds_count") > 0
        assert any(v > 0 and 'result="ok"' in k for k, v in samples(text, "watcher_notifications_total").items())
        assert samples(text, "watcher_ready")[""] == 1
        assert "# TYPE watcher_consumer_lag gauge" in text
        assert blind.received == []

        sim.set_time(FAULT[0])  # workspace in p0 answers 500 from now on
        await wait_for(lambda: len(blind.received) >= 1, 60, "the watcher-blind alert", worker)
        await asyncio.sleep(3)  # more failing polls and checks: still one alert
        assert len(blind.received) == 1, [r.body for r in blind.received]
        firing = blind.received[0].body
        assert firing["title"] == f"[BLIND] watcher cannot poll {ws0}"
        assert firing["type"] == "failure" and "http=500" in firing["message"]
        text = (await get(port, "/metrics"))[1]
        assert samples(text, "watcher_target_blind")[f'{{target="{ws0}"}}'] == 1
        assert samples(text, "watcher_target_consecutive_failures")[f'{{target="{ws0}"}}'] >= 3
        assert any('code="500"' in k for k in samples(text, "watcher_cloud_requests_total"))

        sim.set_time(FAULT[1])  # the fault window is over
        await wait_for(lambda: len(blind.received) >= 2, 60, "the recovered notice", worker)
        await asyncio.sleep(2)
        assert [r.body["title"] for r in blind.received] == [
            f"[BLIND] watcher cannot poll {ws0}",
            f"[RECOVERED] watcher polls {ws0} again",
        ]
        assert blind.received[1].body["type"] == "success"
        text = (await get(port, "/metrics"))[1]
        assert samples(text, "watcher_target_blind")[f'{{target="{ws0}"}}'] == 0
        assert samples(text, "watcher_self_health_alerts_total") == {'{kind="firing"}': 1, '{kind="resolved"}': 1}
        assert not any(r.body["title"].startswith("[BLIND]") for r in jobs.received)

        worker.stop()
        assert worker.proc is not None and worker.proc.returncode == 0, worker.output()[-3000:]
        assert http_get(port, "/healthz")[0] == 0, "the web server outlived SIGTERM"
    finally:
        worker.stop()
        await jobs.stop()
        await blind.stop()
        await running.stop()


async def test_a_worker_killed_mid_episode_is_succeeded_without_a_second_page(tansu_broker, tmp_path: Path):
    """Blind alert from the first worker; SIGKILL; the successor adopts the open episode from
    Kafka: no second [BLIND] page while the target still fails, one [RECOVERED] when it heals."""
    p0 = "0bec5db98280d2d02fd6c00c2de791ce"
    running = await start_simulator(scenario=scenario(workspace_fault(p0)), settings=Settings(speed=0))
    blind = await WebhookSink().start()
    (tmp_path / "rules.yaml").write_text(RULES)
    cfg = write_config(
        tmp_path / "w.toml", leg=tansu_broker, prefix=unique_prefix("blind"), sim_url=running.url,
        watches=[WatchSpec("workspace", [p0])], rules=[str(tmp_path / "rules.yaml")],
        targets=[(blind.url("blind"), ["blind"])], cloud="retry_attempts = 1", extra=HEALTH,
    )  # fmt: skip
    ws0 = f"workspace/cn-north-4/{p0}"
    running.sim.set_time(FAULT[0])  # failing from the start
    first = Worker(cfg, tmp_path / "first.log").start()
    second = Worker(cfg, tmp_path / "second.log")
    try:
        await wait_for(lambda: len(blind.received) >= 1, 90, "the watcher-blind alert", first)
        first.kill()
        second.start()
        await wait_for(lambda: "adopting the open episode of " + ws0 in second.output(), 90, "adoption", second)
        await asyncio.sleep(3)  # more failing polls and checks in the successor: still one page
        assert [r.body["title"] for r in blind.received] == [f"[BLIND] watcher cannot poll {ws0}"]
        running.sim.set_time(FAULT[1])
        await wait_for(lambda: len(blind.received) >= 2, 60, "the recovered notice", second)
        await asyncio.sleep(2)
        assert [r.body["title"] for r in blind.received] == [
            f"[BLIND] watcher cannot poll {ws0}",
            f"[RECOVERED] watcher polls {ws0} again",
        ]
    finally:
        first.kill()
        second.stop()
        await blind.stop()
        await running.stop()


# -- secrets ------------------------------------------------------------------------------

AK = "AKWATCHSECRET7Q2Z9XK1"
SK = "SKwatchSecretValue-3f9c2b7e5d1a4c8b9e0f"
NOTIFY_PASSWORD = "NotifyPassw0rd-8d2k"
DEAD_PASSWORD = "DeadPassw0rd-4j7w"
HEARTBEAT_TOKEN = "HeartbeatTok3nABCDEFGH12345"
SECURITY_TOKEN = "StsSecurityTok3n-QWERTY-9876543210"
SECRETS = (AK, SK, SECURITY_TOKEN, NOTIFY_PASSWORD, DEAD_PASSWORD, HEARTBEAT_TOKEN)


async def read_every_topic(bootstrap: str, prefix: str) -> dict[str, list[bytes]]:
    """Every key and value of every topic whose name contains ``prefix``."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if prefix in t]
    finally:
        await admin.close()
    out: dict[str, list[bytes]] = {}
    consumer = AIOKafkaConsumer(
        *names, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        ends = await consumer.end_offsets(list(consumer.assignment()))
        left = {tp: end for tp, end in ends.items() if end > 0}
        deadline = asyncio.get_running_loop().time() + 60
        while left and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, msgs in batch.items():
                out.setdefault(tp.topic, []).extend(b for m in msgs for b in (m.key or b"", m.value or b""))
                if msgs and msgs[-1].offset + 1 >= left.get(tp, 0):
                    left.pop(tp, None)
        assert not left, f"could not read to the end of {sorted(str(tp) for tp in left)}"
    finally:
        await consumer.stop()
    for name in names:
        out.setdefault(name, [])
    return out


def helps() -> str:
    from watcher.cli import build_parser

    env = {
        **os.environ,
        "HUAWEICLOUD_SDK_AK": AK,
        "HUAWEICLOUD_SDK_SK": SK,
        "HUAWEICLOUD_SDK_SECURITY_TOKEN": SECURITY_TOKEN,
    }
    commands = [["--help"]]
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():  # type: ignore[union-attr]
        commands.append([name, "--help"])
        for action in p._actions:
            if getattr(action, "choices", None) and isinstance(action.choices, dict):
                commands += [[name, s, "--help"] for s in action.choices]
    out = []
    for args in commands:
        r = subprocess.run(
            [sys.executable, "-m", "watcher.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=60, env=env
        )
        assert r.returncode == 0, (args, r.stderr)
        out.append(r.stdout + r.stderr)
    return "\n".join(out)


async def test_no_secret_in_any_output(broker, tmp_path: Path):
    running = await start_simulator(
        scenario=scenario(workspace_fault("0bec5db98280d2d02fd6c00c2de791ce")), settings=Settings(speed=0, ak=AK, sk=SK)
    )
    sim, prefix = running.sim, unique_prefix("secret")
    p0, p1 = running.projects[0], running.projects[1]
    jobs, dead, blind = (
        await WebhookSink().start(),
        await WebhookSink(fail_always=True).start(),
        await WebhookSink().start(),
    )
    heartbeat = await WebhookSink().start()
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    port = free_port()
    health = HEALTH + (
        f'heartbeat_url = "json://127.0.0.1:{heartbeat.port}/beat/{HEARTBEAT_TOKEN}"\nheartbeat_interval = "1s"\n'
    )
    cfg = write_config(
        tmp_path / "w.toml",
        leg=broker,
        prefix=prefix,
        sim_url=running.url,
        watches=[
            WatchSpec("workspace", [p0, p1]),
            WatchSpec("script", [p0]),
            WatchSpec("evs", [p0], job_ids=sim.job_ids("evs", p0)),
        ],
        rules=[str(rules)],
        targets=[
            (jobs.url("jobs").replace("json://", f"json://ops:{NOTIFY_PASSWORD}@"), ["jobs"]),
            (dead.url("dead").replace("json://", f"json://ops:{DEAD_PASSWORD}@"), ["dead"]),
            (blind.url("blind"), ["blind"]),
        ],
        retry="attempts = 2\nbase_delay = 0.1\nmax_delay = 0.2\nbudget_seconds = 5.0",
        app=f"web_port = {port}",
        cloud="retry_attempts = 1",
        extra=health,
    )
    sim.set_time(END)
    worker = Worker(
        cfg,
        tmp_path / "worker.log",
        env={"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK, "HUAWEICLOUD_SDK_SECURITY_TOKEN": SECURITY_TOKEN},
        log_level="DEBUG",
        log_format="json",
    ).start()
    try:
        await wait_for(lambda: len(jobs.received) >= 1, 90, "an alert at the sink", worker)
        await wait_for(lambda: dead.attempts >= 2, 60, "a dead-lettered alert's attempts", worker)
        await wait_for(lambda: len(heartbeat.received) >= 1, 30, "a heartbeat", worker)
        sim.set_time(FAULT[0])
        await wait_for(lambda: len(blind.received) >= 1, 60, "the watcher-blind alert", worker)
        sim.set_time(FAULT[1])
        await wait_for(lambda: len(blind.received) >= 2, 60, "the recovered notice", worker)
        await wait_for(
            lambda: (
                samples(http_get(port, "/metrics")[1], "watcher_alerts_total").get('{outcome="dead_lettered"}', 0) >= 1
            ),
            30,
            "a dead letter",
            worker,
        )
        metrics = (await get(port, "/metrics"))[1]
        worker.stop()
        topics = await read_every_topic(broker.bootstrap, prefix)
        assert any(t.endswith(".dlq") and recs for t, recs in topics.items()), sorted(topics)
        assert any("changelog" in t and recs for t, recs in topics.items()), sorted(topics)
    finally:
        worker.stop()
        for s in (jobs, dead, blind, heartbeat):
            await s.stop()
        await running.stop()
    assert heartbeat.received[0].path == f"/beat/{HEARTBEAT_TOKEN}"  # the secret did reach its one place
    output = worker.output()
    outputs = {
        "worker output": output,
        "/metrics": metrics,
        "help": helps(),
        **{f"topic {t}": b"\n".join(recs).decode(errors="replace") for t, recs in topics.items()},
    }
    for where, text in outputs.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} in {where}"
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines, "the worker logged nothing"
    for line in lines:
        record = json.loads(line)  # every line is one JSON log record
        assert {"ts", "level", "logger", "msg"} <= set(record)
    assert any(json.loads(line)["level"] == "DEBUG" for line in lines)
