"""``watcher topics plan``: what a cluster admin creates and grants for one deployment.

Where it sits: it prints :func:`watcher.app.topics.topic_specs` (the one list of topics) for a
person, with a ``kafka-topics.sh --create`` command per topic and the ``kafka-acls.sh``
commands that give watcher's principal what it needs. Pure: builds text from the config,
connects to nothing (the admin may run it where the watcher's password is not set).

What the principal needs, and why:

* the topics ``<prefix>.*``: Read, Write, Describe (consume, produce, look up partitions) and
  DescribeConfigs (``watcher run`` checks the compacted topics' cleanup.policy);
* the tables' changelogs ``<app id>-<prefix>-*`` and Faust's leader topic
  ``<app id>-__assignor-__leader``: the same;
* the consumer group ``[app] id``: Read and Describe (join, commit, look up offsets);
* Create on the same topic prefixes only with ``create_topics = true``;
* no transactional id and no IdempotentWrite: watcher's producers use neither.

May import: :mod:`watcher.app.topics`, :mod:`watcher.config`, :mod:`watcher.duration`.
"""

from __future__ import annotations

import shlex

from watcher.app.topics import TopicSpec, changelog_topic, leader_topic, topic_specs
from watcher.config import Config
from watcher.duration import format_duration

TOPIC_OPERATIONS = ("Read", "Write", "Describe", "DescribeConfigs")
GROUP_OPERATIONS = ("Read", "Describe")
COMMAND_CONFIG = "admin.properties"


def principal_of(config: Config, principal: str | None = None) -> str:
    """``User:<name>``: the given one, else the SASL user, else ``User:ANONYMOUS`` (no SASL, no
    client certificate). With mutual TLS the principal is the certificate's subject as the
    broker maps it (``ssl.principal.mapping.rules``): pass it with ``--principal``."""
    if principal:
        return principal if ":" in principal else f"User:{principal}"
    if config.broker.sasl_username:
        return f"User:{config.broker.sasl_username}"
    return "User:ANONYMOUS"


def _retention(spec: TopicSpec) -> str:
    if spec.cleanup_policy == "compact":
        return "-"
    return format_duration(spec.retention_ms / 1000) if spec.retention_ms else "broker default"


def create_command(spec: TopicSpec, bootstrap: str, replication: int) -> str:
    args = ["kafka-topics.sh", "--bootstrap-server", bootstrap, "--command-config", COMMAND_CONFIG, "--create",
            "--if-not-exists", "--topic", spec.name, "--partitions", str(spec.partitions),
            "--replication-factor", str(replication)]  # fmt: skip
    for key, value in spec.configs().items():
        args += ["--config", f"{key}={value}"]
    return shlex.join(args)


def acl_command(bootstrap: str, principal: str, operations: tuple[str, ...], resource: tuple[str, str],
                prefixed: bool) -> str:  # fmt: skip
    kind, name = resource
    args = ["kafka-acls.sh", "--bootstrap-server", bootstrap, "--command-config", COMMAND_CONFIG, "--add",
            "--allow-principal", principal]  # fmt: skip
    for op in operations:
        args += ["--operation", op]
    args += [f"--{kind}", name]
    if prefixed:
        args += ["--resource-pattern-type", "prefixed"]
    return shlex.join(args)


def acl_commands(config: Config, bootstrap: str, principal: str) -> list[str]:
    """The ``kafka-acls.sh`` commands for ``principal``: topics by prefix, the leader topic, the group."""
    ops = TOPIC_OPERATIONS + (("Create",) if config.broker.create_topics else ())
    prefix = config.broker.topic_prefix
    changelogs = changelog_topic(config, "")[: -len("-changelog")]  # "<app id>-<prefix>-"
    return [
        acl_command(bootstrap, principal, ops, ("topic", f"{prefix}."), prefixed=True),
        acl_command(bootstrap, principal, ops, ("topic", changelogs), prefixed=True),
        acl_command(bootstrap, principal, ops, ("topic", leader_topic(config)), prefixed=False),
        acl_command(bootstrap, principal, GROUP_OPERATIONS, ("group", config.app.id), prefixed=False),
    ]


def format_plan(config: Config, principal: str | None = None) -> str:
    """The plan as text: a table of topics, then commands an admin can run as they are."""
    b = config.broker
    specs = topic_specs(config)
    bootstrap = b.bootstrap() if b.url else "BOOTSTRAP:9092"
    who = principal_of(config, principal)
    width = max(len(s.name) for s in specs)
    lines = [
        f"# Topics and ACLs for watcher: app id {config.app.id!r}, topic prefix {b.topic_prefix!r}, "
        f"{b.partitions} partitions, replication factor {b.replication_factor}",
        f"# Broker {bootstrap} ({b.security_protocol}); create_topics = {str(b.create_topics).lower()}: "
        + ("`watcher run` creates missing topics itself (the ACLs below include Create)." if b.create_topics else
           "`watcher run` only checks them: create them first, with the commands below."),
        f"# {COMMAND_CONFIG}: the cluster admin's own client settings (security.protocol, sasl.jaas.config...).",
        "",
        f"# {'topic':<{width}}  partitions  cleanup.policy  retention  purpose",
    ]
    for s in specs:
        lines.append(f"# {s.name:<{width}}  {s.partitions:>10}  {s.cleanup_policy:<14}  {_retention(s):<9}  {s.purpose}")
    lines += ["", "# 1. create the topics"]
    lines += [create_command(s, bootstrap, b.replication_factor) for s in specs]
    lines += ["", f"# 2. let {who} use them and the consumer group {config.app.id!r} "
              "(no transactional id: watcher uses no transactions)"]
    if not b.sasl_username and principal is None:
        lines.append("# (no sasl_username: with mutual TLS, pass the certificate's principal with --principal)")
    lines += acl_commands(config, bootstrap, who)
    return "\n".join(lines)
