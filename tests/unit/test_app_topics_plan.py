"""watcher.app.topics.topic_specs (the one list of topics) and `watcher topics plan` (what an admin runs)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kafka.plan_runner import GROUP, LITERAL, OPERATIONS, PREFIXED, TOPIC, parse_plan
from watcher.app.plan import format_plan
from watcher.app.topics import TopicSpec, topic_specs
from watcher.config import parse_config

ROOT = Path(__file__).resolve().parents[2]
WEEK_MS = 7 * 86400 * 1000
CONFIG = '[broker]\nurl = "kafka://k1:9093,k2:9093"\ntopic_prefix = "w"\npartitions = 6\n[app]\nid = "wapp"\n'


def cfg(extra: str = ""):
    return parse_config(CONFIG.replace("[app]", extra + "[app]"), "w.toml")


def test_every_topic_and_changelog_with_its_shape() -> None:
    specs = topic_specs(cfg())
    by_name = {s.name: s for s in specs}
    assert len(by_name) == len(specs) == 24
    assert [s.name for s in specs if s.cleanup_policy == "compact"] == [
        "w.status", "w.silences", "w.inhibitions",
        "wapp-w-poll-jobs-changelog", "wapp-w-delivered-changelog", "wapp-w-blind-episodes-changelog",
        "wapp-w-stuck-timers-changelog", "wapp-w-groups-changelog", "wapp-w-burst-windows-changelog",
        "wapp-w-shares-changelog", "wapp-w-incidents-changelog", "wapp-w-message-refs-changelog",
    ]  # fmt: skip
    assert [s.name for s in specs if s.cleanup_policy == "delete"] == [
        "w.events", "w.alerts", "w.notifications", "w.actions", "w.decisions", "w.dlq", "w.track", "w.poll-requests",
        "w.grouping", "w.bursts", "w.shares", "wapp-__assignor-__leader",
    ]  # fmt: skip
    assert by_name["w.events"] == TopicSpec("w.events", 6, "delete", WEEK_MS, "job status changes (key: the job's incident subject)")
    assert by_name["w.status"].retention_ms is None and by_name["w.status"].configs() == {"cleanup.policy": "compact"}
    assert by_name["w.dlq"].configs() == {"cleanup.policy": "delete", "retention.ms": str(WEEK_MS)}
    assert by_name["wapp-__assignor-__leader"].partitions == 1
    assert {s.partitions for s in specs if s.name != "wapp-__assignor-__leader"} == {6}


def test_retention_comes_from_the_config() -> None:
    specs = topic_specs(cfg('retention = "30d"\n'))
    assert {s.retention_ms for s in specs if s.cleanup_policy == "delete"} == {30 * 86400 * 1000}


def test_the_plan_names_every_topic_the_app_declares(monkeypatch: pytest.MonkeyPatch) -> None:
    """The drift guard: a topic, table or agent added to the Faust app but not to topic_specs fails here."""
    from watcher.app.factory import build_app

    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "ak")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "sk")
    config = cfg()
    app = build_app(config, config.broker.url)
    declared = dict(getattr(app, "watcher_topics", {}))
    declared |= {t.changelog_topic.get_topic_name(): t.partitions or 6 for t in app.tables.values()}
    declared |= {name: 6 for a in app.agents.values() for name in a.channel.topics}  # one agent reads two
    declared[app._leader_assignor._leader_topic_name] = 1
    planned = {s.name: s.partitions for s in topic_specs(config)}
    assert {name: planned.get(name) for name in declared} == declared


def test_plan_prints_a_create_command_per_topic_and_the_acls() -> None:
    config = cfg('security_protocol = "SASL_SSL"\nsasl_mechanism = "SCRAM-SHA-512"\nsasl_username = "svc-watcher"\n'
                 "replication_factor = 3\n")  # fmt: skip
    text = format_plan(config)
    lines = text.splitlines()
    assert lines[0] == "# Topics and ACLs for watcher: app id 'wapp', topic prefix 'w', 6 partitions, replication factor 3"
    creates = [line for line in lines if line.startswith("kafka-topics.sh ")]
    assert [shlex.split(c)[shlex.split(c).index("--topic") + 1] for c in creates] == [s.name for s in topic_specs(config)]
    assert creates[0] == (
        "kafka-topics.sh --bootstrap-server k1:9093,k2:9093 --command-config admin.properties --create "
        "--if-not-exists --topic w.events --partitions 6 --replication-factor 3 --config cleanup.policy=delete "
        f"--config retention.ms={WEEK_MS}"
    )
    assert "--topic w.status --partitions 6 --replication-factor 3 --config cleanup.policy=compact" in text
    acls = [line for line in lines if line.startswith("kafka-acls.sh ")]
    base = "kafka-acls.sh --bootstrap-server k1:9093,k2:9093 --command-config admin.properties --add " \
           "--allow-principal User:svc-watcher"  # fmt: skip
    ops = "--operation Read --operation Write --operation Describe --operation DescribeConfigs --operation Create"
    assert acls == [
        f"{base} {ops} --topic w. --resource-pattern-type prefixed",
        f"{base} {ops} --topic wapp-w- --resource-pattern-type prefixed",
        f"{base} {ops} --topic wapp-__assignor-__leader",
        f"{base} --operation Read --operation Describe --group wapp",
    ]
    assert "no transactional id" in text


def test_plan_without_create_topics_grants_no_create() -> None:
    text = format_plan(cfg("create_topics = false\n"), principal="User:CN=watcher")
    acls = [line for line in text.splitlines() if line.startswith("kafka-acls.sh ")]
    assert all("--operation Create" not in a and "--allow-principal User:CN=watcher" in a for a in acls)
    assert "`watcher run` only checks them: create them first" in text


def test_the_printed_commands_parse_with_the_tools_options() -> None:
    """What tests/kafka/plan_runner sends to a real broker is exactly what the plan printed."""
    config = cfg('security_protocol = "SASL_SSL"\nsasl_mechanism = "PLAIN"\nsasl_username = "u"\n')
    plan = parse_plan(format_plan(config))
    assert [(t.name, t.num_partitions, t.topic_configs) for t in plan.topics] == [
        (s.name, s.partitions, s.configs()) for s in topic_specs(config)]
    triples = {(r._resource_type, r._resource_name, r._resource_pattern_type_filter, r._operation) for r in plan.acls}
    assert (TOPIC, "w.", PREFIXED, OPERATIONS["Write"]) in triples
    assert (TOPIC, "wapp-__assignor-__leader", LITERAL, OPERATIONS["Read"]) in triples
    assert (GROUP, "wapp", LITERAL, OPERATIONS["Read"]) in triples
    assert len(plan.acls) == 3 * 5 + 2


def test_topics_plan_through_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text(CONFIG)
    out = subprocess.run([sys.executable, "-m", "watcher.cli", "topics", "plan", "--config", str(path)],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout == format_plan(cfg()) + "\n"
    assert "# (no sasl_username: with mutual TLS, pass the certificate's principal with --principal)" in out.stdout
