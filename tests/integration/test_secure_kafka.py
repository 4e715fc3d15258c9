"""Production Kafka (issue 15): SASL_SSL, SCRAM-SHA-512, ACLs, topics created by the cluster admin.

One Apache Kafka per session (``secure_kafka``) with a SASL_SSL listener, a CA and broker
certificate made at test time and the StandardAuthorizer. watcher connects as ``watcher``, a
user that may do nothing until a test runs what ``watcher topics plan`` printed for it (the
topics and ACLs, through the admin API: tests/kafka/plan_runner). Proved here:

* the full pipeline (simulator → alerts at a real HTTP sink, exactly) over SASL_SSL, on topics
  the admin created from the plan with ``create_topics = false``, with only the plan's ACLs;
* with one planned topic missing, ``watcher run`` refuses to start and names it;
* every CLI tool that talks to the broker works over SASL_SSL (creating what it needs with the
  plan's configs where ``create_topics = true``);
* a wrong password, an untrusted CA, a plaintext client and a hostname mismatch each fail at once
  with a one-line reason and exit 2, for ``config check --broker``, a tool and ``watcher run``;
* no password in any output, the workers' and the tools' at DEBUG.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.harness import ROOT, WatchSpec, Worker, read_topic, unique_prefix, wait_for, write_config
from tests.integration.test_delivery import P1, Rig, assert_exactly, at_webhook, expected_alerts, scenario
from tests.kafka.legs import SecureLeg
from tests.kafka.plan_runner import Plan, apply_plan, parse_plan
from watcher import events as ev
from watcher.app.topics import ensure_topics, topic_specs
from watcher.config import load_config
from watcher.incidents.model import standalone
from watcher.rules.templates import utc
from watcher.simulator import DEFAULT_AK, DEFAULT_SK

pytestmark = pytest.mark.timeout(300)

NOWHERE = "http://127.0.0.1:9"  # the tests that never poll


def cli(leg: SecureLeg, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m watcher.cli`` at DEBUG, with the worker's password in its environment."""
    full = {**os.environ, "HUAWEICLOUD_SDK_AK": DEFAULT_AK, "HUAWEICLOUD_SDK_SK": DEFAULT_SK, **leg.env, **(env or {})}
    out = subprocess.run([sys.executable, "-m", "watcher.cli", "--log-level", "DEBUG", *args], capture_output=True,
                         text=True, cwd=ROOT, env=full, timeout=60)  # fmt: skip
    assert leg.password not in out.stdout + out.stderr, f"the password leaked: {args}"
    return out


def error_line(out: subprocess.CompletedProcess[str]) -> str:
    """The one ``watcher: error:`` line (the DEBUG log lines around it aside); no traceback."""
    errors = [line for line in out.stderr.splitlines() if line.startswith("watcher: error: ")]
    assert len(errors) == 1 and "Traceback" not in out.stderr, out.stderr
    return errors[0]


async def grant(leg: SecureLeg, config: Path, *, topics: bool, skip: tuple[str, ...] = ()) -> Plan:
    """What a cluster admin does with `watcher topics plan`: create its topics (``topics``; but
    ``skip``) and its ACLs, as the admin. Returns the plan as parsed."""
    out = cli(leg, "topics", "plan", "--config", str(config))
    assert out.returncode == 0, out.stderr
    plan = parse_plan(out.stdout, skip)
    await apply_plan(leg.conn, plan if topics else Plan([], plan.acls, plan.topic_names))
    return plan


async def test_pipeline_over_sasl_ssl_on_the_topics_and_acls_of_the_plan(secure_kafka: SecureLeg, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("WATCHER_KAFKA_PASSWORD", secure_kafka.password)  # the worker's environment
    rig = Rig(secure_kafka, tmp_path)
    try:
        running = await rig.simulator(scenario(desktops=(2, 2), fail=0.5, volumes=2), at_end=True)
        sink = await rig.webhook()
        cfg = rig.config(running, [(sink.url(), ["webhook"])], partitions=2, broker="create_topics = false")
        plan = await grant(secure_kafka, cfg, topics=True)
        assert plan.topic_names == [s.name for s in topic_specs(load_config(cfg))]

        check = cli(secure_kafka, "config", "check", "--broker", str(cfg))
        assert check.returncode == 0, check.stderr
        assert check.stdout.splitlines()[-1] == (
            f"the broker at {secure_kafka.bootstrap} (SASL_SSL, SCRAM-SHA-512 as 'watcher'): ok (authenticated; "
            f"consumer group '{rig.prefix}' allowed; {len(plan.topic_names)} of {len(plan.topic_names)} topics present)"
        )

        expected = expected_alerts(running, seen_at=-1.0)
        assert len(expected) >= 2
        worker = Worker(cfg, tmp_path / "worker.log", log_level="DEBUG").start()
        rig.workers.append(worker)
        await wait_for(lambda: len(sink.received) >= len(expected), 120, "the alerts at the webhook", worker)
        await asyncio.sleep(3)  # a duplicate would arrive now
        assert_exactly(at_webhook(sink), expected)
        worker.stop()
        log = worker.output()
        assert " DEBUG watcher" in log  # the log was at DEBUG
        assert secure_kafka.password not in log and secure_kafka.passwords["admin"] not in log
        assert "Traceback" not in log
    finally:
        await rig.close()


async def test_run_refuses_to_start_when_a_planned_topic_is_missing(secure_kafka: SecureLeg, tmp_path: Path) -> None:
    prefix = unique_prefix("sec-miss")
    cfg = write_config(tmp_path / "w.toml", leg=secure_kafka, prefix=prefix, sim_url=NOWHERE, watches=[],
                       partitions=2, broker="create_topics = false")  # fmt: skip
    await grant(secure_kafka, cfg, topics=True, skip=(f"{prefix}.dlq",))
    out = cli(secure_kafka, "run", "--config", str(cfg))
    assert out.returncode == 2, out.stderr
    assert error_line(out) == (
        f"watcher: error: 1 topic(s) missing or wrong on {secure_kafka.bootstrap}: missing {prefix}.dlq (create them "
        f"as `watcher topics plan --config {cfg}` prints)"
    )


async def test_every_cli_tool_works_over_sasl_ssl(secure_kafka: SecureLeg, tmp_path: Path) -> None:
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    prefix = unique_prefix("sec-cli")
    cfg = write_config(tmp_path / "w.toml", leg=secure_kafka, prefix=prefix, sim_url=NOWHERE,
                       watches=[WatchSpec("evs", [P1])], partitions=2)  # fmt: skip
    await grant(secure_kafka, cfg, topics=False)  # create_topics = true: the ACLs include Create
    conn, config = secure_kafka.conn, load_config(cfg)

    added = cli(secure_kafka, "silence", "add", "--match", 'status == "FAIL"', "--for", "1h", "--config", str(cfg))
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.split()[1]
    listed = cli(secure_kafka, "silence", "list", "--config", str(cfg))
    assert listed.returncode == 0 and f"{silence_id}  active   cli" in listed.stdout, listed.stderr
    expired = cli(secure_kafka, "silence", "expire", silence_id, "--config", str(cfg))
    assert (expired.returncode, expired.stdout) == (0, f"silence {silence_id} expired\n"), expired.stderr
    listed = cli(secure_kafka, "silence", "list", "--config", str(cfg))
    assert f"{silence_id}  expired  cli" in listed.stdout, listed.stderr
    admin = conn.admin()
    await admin.start()
    try:  # the tool created the topic as the plan says: compacted (latest record per silence)
        [described] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, f"{prefix}.silences",
                                                                   {"cleanup.policy": None})])  # fmt: skip
        assert [(e[0], e[1]) for e in described.resources[0][4]] == [("cleanup.policy", "compact")]
    finally:
        await admin.close()

    tracked = cli(secure_kafka, "track", "evs", "job-77", "--project", P1, "--config", str(cfg))
    assert (tracked.returncode, tracked.stdout) == (0, f"tracking evs job job-77 in cn-north-4/{P1}\n"), tracked.stderr
    [request] = await read_topic(conn, f"{prefix}.track", until=lambda r: len(r) >= 1, timeout=30, partitions=2)
    assert (request.source, request.region, request.project_id, request.job_id) == ("evs", "cn-north-4", P1, "job-77")

    now = datetime.now(UTC)
    event = ev.JobEvent(source="evs", region="cn-north-4", project_id=P1, job_key=ev.job_key("evs", "cn-north-4", P1,
                        "job-9"), job_id="job-9", job_type="extendVolume", status="FAIL", phase="failed",
                        observed_at=now)  # fmt: skip
    alert = ev.Alert(key=f"volume-failed|{event.job_key}", rule="volume-failed", title="[FAIL] job-9", body="b",
                     event=event, fired_at=now, incident=f"volume-failed|{event.incident_subject}")  # fmt: skip
    note = standalone(alert, now)
    wanted = {f"{prefix}.dlq", f"{prefix}.events", f"{prefix}.alerts", f"{prefix}.notifications"}
    await ensure_topics(conn, [s for s in topic_specs(config) if s.name in wanted])
    producer = conn.producer()
    await producer.start()
    try:
        dead = ev.DeadLetter(notification=note, reason="http_5xx", attempts=2, failed_at=now)
        await producer.send_and_wait(f"{prefix}.dlq", ev.encode(dead), key=note.key.encode())
        await producer.send_and_wait(f"{prefix}.events", ev.encode(event), key=event.job_key.encode())
        await producer.send_and_wait(f"{prefix}.alerts", ev.encode(alert), key=alert.incident.encode())
    finally:
        await producer.stop()

    dlq = cli(secure_kafka, "dlq", "list", "--config", str(cfg))
    assert dlq.returncode == 0 and dlq.stdout.startswith("1 dead letter(s):\n") and note.key in dlq.stdout, dlq.stderr
    replayed = cli(secure_kafka, "dlq", "replay", "--config", str(cfg))
    assert replayed.returncode == 0 and replayed.stdout.startswith("replayed 1 notification(s)"), replayed.stderr
    [again] = await read_topic(conn, f"{prefix}.notifications", until=lambda r: len(r) >= 1, timeout=30)
    assert (again.key, again.replay) == (note.key, True)

    story = cli(secure_kafka, "explain", event.job_key, "--config", str(cfg))
    assert story.returncode == 0, story.stderr
    assert story.stdout.splitlines() == [
        f"job {event.job_key} (live, from the {prefix}.* topics)",
        f"{utc(now)}  FAIL (first seen): evs-job-failed",  # the rule of rules/default.yaml it matches
        f"alert {alert.key} (volume-failed, firing)",
        f"    → incident {alert.incident}",
        f"incident {alert.incident} (volume-failed, firing, 1 job(s))",
        "    open 1/1 to every target",  # the replayed dead letter, on the notifications topic
        "        not delivered yet",  # no worker runs
    ]


def variants(leg: SecureLeg) -> dict[str, tuple[str, dict[str, str], str]]:
    """(broker lines, environment, the one-line reason) of each way to get the security wrong."""
    ok = leg.broker_toml
    sasl = "SCRAM-SHA-512 as 'watcher'"
    return {
        "wrong password": (ok, {"WATCHER_KAFKA_PASSWORD": "not-the-password"},
                           f"authentication failed ({sasl}): Authentication failed during authentication due to "
                           "invalid credentials with SASL mechanism SCRAM-SHA-512"),
        "untrusted CA": (ok.replace(leg.ca, leg.other_ca), {},
                         "TLS handshake failed: the broker's certificate is not signed by a trusted CA (unable to get "
                         "local issuer certificate; set [broker] ssl_cafile to the CA that signed it)"),
        "plaintext client": ("", {}, "the broker closed the connection: the listener may expect TLS or SASL "
                                     "(security_protocol = PLAINTEXT)"),
        "hostname mismatch": (ok, {}, "TLS handshake failed: the broker's certificate is not valid for 'localhost' "
                                      "(hostname mismatch; connect by a name the certificate lists)"),
    }  # fmt: skip


@pytest.mark.parametrize("case", ["wrong password", "untrusted CA", "plaintext client", "hostname mismatch"])
async def test_bad_security_fails_at_once_with_one_line(secure_kafka: SecureLeg, tmp_path: Path, case: str) -> None:
    lines, env, reason = variants(secure_kafka)[case]
    prefix = unique_prefix("sec-bad")
    cfg = write_config(tmp_path / "w.toml", leg=secure_kafka, prefix=prefix, sim_url=NOWHERE,
                       watches=[WatchSpec("evs", [P1])], partitions=2)  # fmt: skip
    text = cfg.read_text().replace(secure_kafka.broker_toml, lines)
    host = "localhost" if case == "hostname mismatch" else "127.0.0.1"
    cfg.write_text(text.replace("url = \"kafka://127.0.0.1:", f"url = \"kafka://{host}:"))
    where = secure_kafka.bootstrap.replace("127.0.0.1", host)
    for command in (("config", "check", "--broker", str(cfg)), ("silence", "list", "--config", str(cfg)),
                    ("run", "--config", str(cfg))):  # fmt: skip
        out = cli(secure_kafka, *command, env=env)
        assert out.returncode == 2, (command, out.stderr)
        assert error_line(out) == f"watcher: error: cannot reach the broker at {where} ({reason})", command
