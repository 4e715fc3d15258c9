"""Run what `watcher topics plan` prints, as a cluster admin would, through the admin API.

The plan's ``kafka-topics.sh --create`` and ``kafka-acls.sh --add`` lines are parsed with the
options those tools define and sent as CreateTopics / CreateAcls requests, so a test proves the
printed commands (not a copy of them) give a deployment what it needs. Each JVM start of the
real tools would cost seconds per line; the requests are the same ones the tools send.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass

from aiokafka.admin import NewTopic
from aiokafka.protocol.admin import CreateAclsRequest

from watcher.app.kafka import KafkaConnection

# Kafka's AclOperation, ResourceType, PatternType and AclPermissionType codes.
OPERATIONS = {"All": 2, "Read": 3, "Write": 4, "Create": 5, "Delete": 6, "Alter": 7, "Describe": 8,
              "ClusterAction": 9, "DescribeConfigs": 10, "AlterConfigs": 11, "IdempotentWrite": 12}  # fmt: skip
TOPIC, GROUP = 2, 3
LITERAL, PREFIXED = 3, 4
ALLOW = 3


@dataclass(frozen=True)
class Plan:
    topics: list[NewTopic]
    acls: list[CreateAclsRequest]
    topic_names: list[str]


def _topics_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kafka-topics.sh", exit_on_error=False)
    for opt in ("--bootstrap-server", "--command-config", "--topic"):
        p.add_argument(opt, required=True)
    p.add_argument("--create", action="store_true", required=True)
    p.add_argument("--if-not-exists", action="store_true")
    p.add_argument("--partitions", type=int, required=True)
    p.add_argument("--replication-factor", type=int, required=True)
    p.add_argument("--config", action="append", default=[])
    return p


def _acls_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kafka-acls.sh", exit_on_error=False)
    for opt in ("--bootstrap-server", "--command-config", "--allow-principal"):
        p.add_argument(opt, required=True)
    p.add_argument("--add", action="store_true", required=True)
    p.add_argument("--operation", action="append", choices=list(OPERATIONS), required=True)
    p.add_argument("--topic")
    p.add_argument("--group")
    p.add_argument("--resource-pattern-type", choices=["literal", "prefixed"], default="literal")
    return p


def parse_plan(text: str, skip_topics: tuple[str, ...] = ()) -> Plan:
    """The commands of a printed plan; ``skip_topics``: leave these out (an admin who forgot one)."""
    topics, acls, names = [], [], []
    tp, ap = _topics_parser(), _acls_parser()
    for line in text.splitlines():
        if line.startswith("kafka-topics.sh "):
            a = tp.parse_args(shlex.split(line)[1:])
            names.append(a.topic)
            if a.topic not in skip_topics:
                configs = dict(c.split("=", 1) for c in a.config)
                topics.append(NewTopic(a.topic, a.partitions, a.replication_factor, topic_configs=configs))
        elif line.startswith("kafka-acls.sh "):
            a = ap.parse_args(shlex.split(line)[1:])
            kind, name = (TOPIC, a.topic) if a.topic else (GROUP, a.group)
            pattern = PREFIXED if a.resource_pattern_type == "prefixed" else LITERAL
            for op in a.operation:
                acls.append(CreateAclsRequest(kind, name, pattern, a.allow_principal, "*", OPERATIONS[op], ALLOW))
        elif line.strip() and not line.startswith("#"):
            raise AssertionError(f"a plan line that is neither a comment nor a command: {line!r}")
    return Plan(topics, acls, names)


async def apply_plan(admin_conn: KafkaConnection, plan: Plan) -> None:
    """Create the plan's topics and ACLs as the admin; AssertionError naming anything refused."""
    admin = admin_conn.admin()
    await admin.start()
    try:
        if plan.topics:
            response = await admin.create_topics(plan.topics)
            errors = [(t, code, msg) for t, code, msg, *_ in response.topic_errors if code]
            assert not errors, f"creating the plan's topics: {errors}"
        for request in plan.acls:
            response = await admin._send_request(request)  # aiokafka has no create_acls(); the request it has
            errors = [(code, msg) for code, msg in response.creation_responses if code]
            assert not errors, f"creating an ACL of the plan: {errors}"
    finally:
        await admin.close()
