"""Run real `watcher run` workers against a real broker, a running simulator and real sinks.

Each test gets its own topic prefix and consumer group, so tests share one broker per leg
without seeing each other's records. Workers are subprocesses, so a test can SIGKILL one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watcher import events as ev
from watcher.app.kafka import KafkaConnection
from watcher.simulator import DEFAULT_AK, DEFAULT_SK

ROOT = Path(__file__).resolve().parents[2]


def unique_prefix(name: str = "t") -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@dataclass
class WatchSpec:
    source: str
    projects: Sequence[str]
    job_types: Sequence[str] = ()
    job_ids: Sequence[str] = ()
    api_version: str = "v2"


def _toml_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{i}"' for i in items) + "]"


def write_config(
    path: Path,
    *,
    leg: Any,
    prefix: str,
    sim_url: str,
    watches: Sequence[WatchSpec],
    rules: Sequence[str] = ("rules/default.yaml",),
    targets: Sequence[tuple[str, Sequence[str]]] = (),
    partitions: int = 4,
    fast: str = "500ms",
    idle: str = "2s",
    tick: str = "250ms",
    retry: str = "attempts = 5\nbase_delay = 0.2\nmax_delay = 1.0\nbudget_seconds = 20.0",
    extra: str = "",
    session_timeout: str | None = None,
    app: str = "",
    cloud: str = "",
    broker: str = "",
) -> Path:
    """A worker config; ``app``, ``cloud`` and ``broker``: extra lines for those tables (``web_port = 9100``).

    A leg with ``broker_toml`` (the SASL_SSL leg) adds its security settings to ``[broker]``."""
    lines = [
        "[broker]",
        f'url = "{leg.url}"',
        f'topic_prefix = "{prefix}"',
        f"partitions = {partitions}",
        f"tansu = {'true' if leg.kind == 'tansu' else 'false'}",
        *([f'session_timeout = "{session_timeout}"'] if session_timeout else []),
        *([leg.broker_toml] if getattr(leg, "broker_toml", "") else []),
        *([broker] if broker else []),
        "",
        "[app]",
        f'id = "{prefix}"',
        *([app] if app else []),
        "",
        "[cloud]",
        f'endpoints = {{ workspace = "{sim_url}", workspaceapp = "{sim_url}", evs = "{sim_url}" }}',
        'retry_budget = "20s"',
        *([cloud] if cloud else []),
        "",
        "[poll]",
        f'fast = "{fast}"',
        f'idle = "{idle}"',
        f'tick = "{tick}"',
        "",
        "[rules]",
        f"files = {_toml_list([str(ROOT / r) for r in rules])}",
        "",
    ]
    for w in watches:
        lines += ["[[watch]]", f'source = "{w.source}"', 'region = "cn-north-4"', f"projects = {_toml_list(w.projects)}"]
        if w.job_types:
            lines.append(f"job_types = {_toml_list(w.job_types)}")
        if w.job_ids:
            lines.append(f"job_ids = {_toml_list(w.job_ids)}")
        if w.source == "appjob":
            lines.append(f'api_version = "{w.api_version}"')
        lines.append("")
    lines += ["[notify.retry]", retry, ""]
    for url, tags in targets:
        lines += ["[[notify.targets]]", f'url = "{url}"', f"tags = {_toml_list(tags)}", ""]
    lines.append(extra)
    path.write_text("\n".join(lines))
    return path


@dataclass
class Worker:
    """One `watcher run` subprocess; its output goes to a log file the test can print."""

    config: Path
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log_level: str = "INFO"
    log_format: str = "text"

    def start(self) -> Worker:
        env = {**os.environ, "HUAWEICLOUD_SDK_AK": DEFAULT_AK, "HUAWEICLOUD_SDK_SK": DEFAULT_SK, **self.env}
        out = self.log.open("ab")
        self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        return self

    def command(self) -> list[str]:
        return [sys.executable, "-m", "watcher.cli", "--log-level", self.log_level, "--log-format", self.log_format,
                "run", "--config", str(self.config)]

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class ReportingWorker(Worker):
    """A Worker that also appends one JSON line per alert it delivered to ``report``.

    It runs tests/integration/reporting_worker.py: the same ``run_worker`` as `watcher run`,
    plus a delivered-hook, so a test can tell which of several workers delivered what.
    """

    report: Path | None = None

    def command(self) -> list[str]:
        assert self.report is not None, "ReportingWorker needs a report path"
        return [sys.executable, "-m", "tests.integration.reporting_worker", str(self.config), str(self.report)]

    def delivered(self) -> list[dict[str, Any]]:
        """What this worker reported: {"pid", "key", "job_id"} per delivered alert."""
        import json

        if self.report is None or not self.report.exists():
            return []
        return [json.loads(line) for line in self.report.read_text().splitlines() if line.strip()]


async def read_topic(
    conn: KafkaConnection,
    topic: str,
    *,
    until: Callable[[list[Any]], bool],
    timeout: float = 60.0,
    settle: float = 0.0,
    partitions: int | None = None,
) -> list[Any]:
    """Decoded records of ``topic`` from the start, once ``until(records)`` holds (then ``settle`` more seconds).

    ``partitions``: create the topic with that many partitions first, if it does not exist yet.
    Reading a topic before the worker created it otherwise lets Apache Kafka auto-create it
    with one partition, and the worker then refuses to start on the mismatch.
    """
    if partitions is not None:
        from watcher.app.topics import ensure_topics

        await ensure_topics(conn, {topic: partitions})
    consumer = conn.consumer(topic, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None)
    await consumer.start()
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    settle_until: float | None = None
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for msgs in batch.values():
                records.extend(ev.decode(m.value) for m in msgs)
            if settle_until is None and until(records):
                settle_until = time.monotonic() + settle
            if settle_until is not None and time.monotonic() >= settle_until:
                break
    finally:
        await consumer.stop()
    return records


async def wait_for(predicate: Callable[[], bool], timeout: float, what: str, worker: Worker | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.2)
    tail = worker.output()[-4000:] if worker else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n--- worker output tail ---\n{tail}")



@dataclass
class Group:
    """A consumer group as DescribeGroups shows it; ``members``: member id → {topic: partitions}.

    Assignments are empty on brokers that do not return them (Tansu answers with empty bytes).
    """

    state: str
    members: dict[str, dict[str, set[int]]]


async def describe_group(conn: KafkaConnection, group_id: str) -> Group | None:
    """The group's state and members; None while the broker has no coordinator for it yet."""
    from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
    from aiokafka.errors import KafkaError

    admin = conn.admin()
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group_id])
    except KafkaError:
        return None
    finally:
        await admin.close()
    for response in responses:
        for error_code, gid, state, _ptype, _protocol, members, *_ in response.groups:
            if error_code or gid != group_id:
                continue
            out: dict[str, dict[str, set[int]]] = {}
            for member_id, *_, raw in members:
                assignment = ConsumerProtocolMemberAssignment.decode(raw) if raw else None
                out[member_id] = {t: set(ps) for t, ps in (assignment.assignment if assignment else [])}
            return Group(state=state, members=out)
    return None
