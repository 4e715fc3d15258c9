"""Command line: parses arguments, then calls into the package. No logic of its own."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from watcher.errors import WatcherError
from watcher.logs import setup_logging

if TYPE_CHECKING:
    from watcher.config import Config

EPILOG = """\
Secrets come from the environment, never from the config file or the command line:
HUAWEICLOUD_SDK_AK / HUAWEICLOUD_SDK_SK (and HUAWEICLOUD_SDK_SECURITY_TOKEN), or an IAM
token in HUAWEICLOUD_SDK_TOKEN; the Kafka SASL password in WATCHER_KAFKA_PASSWORD (or the
variable [broker] sasl_password_env names). With no [broker] url, an embedded in-memory Tansu
broker is started (demos, development, tests); set [broker] url = "kafka://host:9092" for real
Kafka, and security_protocol, ssl_* and sasl_* for TLS and SASL (README: Production Kafka).
"""


def cmd_run(args: argparse.Namespace) -> int:
    from watcher.app.runner import run_worker
    from watcher.checkup import checkup
    from watcher.config import load_config

    config = load_config(args.config)
    found = checkup(config)  # the checks of `config check`, made before anything starts
    if found.errors:
        for line in found.errors:
            print(f"watcher: error: {line}", file=sys.stderr)
        print(f"watcher: error: {args.config}: not started; `watcher config check {args.config}` "
              "lists the same problems", file=sys.stderr)
        return 2
    for line in found.unrouted:  # runs anyway (watching without targets is legitimate), but says so
        logging.getLogger("watcher").error("%s: its alerts will be dead-lettered no_route", line)
    return run_worker(config, loglevel=args.log_level)


def cmd_config_check(args: argparse.Namespace) -> int:
    from watcher.checkup import checkup
    from watcher.config import load_config

    config = load_config(args.config)
    found = checkup(config)
    for line in found.problems:
        print(line, file=sys.stderr)
    if found.ok:
        print("\n".join(found.summary()))
        if config.broker.url:
            print(broker_summary(config))
    if args.broker:
        from watcher.app.preflight import check_broker

        print(asyncio.run(check_broker(config)))  # BrokerError: one line, exit 2
    return 0 if found.ok else 1


def broker_summary(config: Config) -> str:
    """The [broker] security in one line, the password masked (and whether its variable is set)."""
    import os

    b = config.broker
    line = f"broker: {b.bootstrap()} ({b.security_protocol}"
    if b.uses_sasl:
        state = "set" if os.environ.get(b.sasl_password_env) else "NOT SET: `watcher run` will refuse to start"
        line += f", {b.sasl_mechanism} as {b.sasl_username!r}, password ****** from ${b.sasl_password_env} ({state})"
    if b.uses_tls:
        line += f", CA {b.ssl_cafile or 'the system trust store'}"
        line += f", client certificate {b.ssl_certfile}" if b.ssl_certfile else ""
        line += "" if b.ssl_check_hostname else ", hostname NOT checked"
    return line + f"; topics {'created by watcher' if b.create_topics else 'created by the admin'})"


def cmd_topics_plan(args: argparse.Namespace) -> int:
    from watcher.app.plan import format_plan
    from watcher.config import load_config

    print(format_plan(load_config(args.config), args.principal))
    return 0


def cmd_rules_check(args: argparse.Namespace) -> int:
    from watcher.rules.check import run

    code, lines = run(args.files)  # 0 ok, 1 errors, 2 a path that does not exist
    for line in lines[:-1]:
        print(line, file=sys.stderr)
    print(lines[-1], file=sys.stdout if code == 0 else sys.stderr)
    return code


def cmd_rules_test(args: argparse.Namespace) -> int:
    from watcher.rules.report import run_test

    code, text = run_test(args.rules, args.events, as_json=args.json)
    print(text, file=sys.stdout if code == 0 else sys.stderr)
    return code


def cmd_explain(args: argparse.Namespace) -> int:
    from watcher.events import job_key_problem

    if (problem := job_key_problem(args.job_key)) is not None:
        raise WatcherError(problem)
    if args.config is not None:
        if args.rules or args.events:
            raise WatcherError("give either --config (live) or --rules and --events (offline), not both")
        from watcher.app.explain import explain_live
        from watcher.config import load_config

        print(asyncio.run(explain_live(load_config(args.config), args.job_key)))
        return 0
    if not args.rules or not args.events:
        raise WatcherError("give --config to explain from the live topics, or --rules and --events for a dry run")
    from watcher.rules.report import run_explain

    code, text = run_explain(args.job_key, args.rules, args.events)
    print(text, file=sys.stdout if code == 0 else sys.stderr)
    return code


def cmd_simulate(args: argparse.Namespace) -> int:
    from watcher.simulator.server import run

    run(args.port, args.scenario, host=args.host)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from watcher.demo import run_demo

    return run_demo(duration=args.duration, log_level=args.log_level)


def cmd_notify_test(args: argparse.Namespace) -> int:
    from watcher.config import load_config
    from watcher.notify.deliver import format_results, send_test

    config = load_config(args.config)
    results = asyncio.run(send_test(config.notify, args.tag))
    print(format_results(results))
    return 0 if results and all(r.ok for r in results) else 1


def cmd_track(args: argparse.Namespace) -> int:
    from watcher.app.track import send_track_request
    from watcher.config import load_config
    from watcher.events import id_problem

    if (problem := id_problem(args.job_id) or id_problem(args.project, "project id")) is not None:
        raise WatcherError(problem)
    config = load_config(args.config)
    region = args.region or next((w.region for w in config.watch if w.source == args.source), None)
    if region is None:
        raise WatcherError(f"no [[watch]] for source {args.source!r} in {args.config}; pass --region")
    # The worker drops a request no [[watch]] covers: refuse it here, where someone reads the reason.
    watched = sorted({p for w in config.watch if (w.source, w.region) == (args.source, region) for p in w.projects})
    if args.project not in watched:
        where = f"projects: {', '.join(watched)}" if watched else f"no [[watch]] for {args.source} in {region}"
        raise WatcherError(f"project {args.project!r} is not watched for {args.source} in {region} in {args.config} "
                           f"({where}); add it to a [[watch]] table's projects, or the worker would drop the request")
    asyncio.run(send_track_request(config, args.source, region, args.project, args.job_id))
    print(f"tracking {args.source} job {args.job_id} in {region}/{args.project}")
    return 0


def cmd_dlq_list(args: argparse.Namespace) -> int:
    from watcher.app.dlq import format_dead, list_dead
    from watcher.config import load_config

    print(format_dead(asyncio.run(list_dead(load_config(args.config)))))
    return 0


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    from watcher.app.dlq import replay
    from watcher.config import load_config

    n, refused = asyncio.run(replay(load_config(args.config), args.key or ()))
    for line in refused:
        print(f"watcher: {line}", file=sys.stderr)
    print(f"replayed {n} notification(s); each is delivered once, to the targets that have not accepted it yet")
    return 1 if refused else 0


def cmd_act(args: argparse.Namespace) -> int:
    from watcher.app.actions import act, snooze_until
    from watcher.config import load_config
    from watcher.duration import parse_duration

    until = snooze_until(parse_duration(args.for_)) if args.command == "snooze" else None
    kind = {"ack": "ack", "unack": "unack", "snooze": "snooze"}[args.command]
    incident, action = asyncio.run(act(load_config(args.config), args.incident, kind, by=args.by, until=until,
                                       comment=args.comment))  # fmt: skip
    done = {"ack": "acknowledged", "unack": "acknowledgement withdrawn on", "snooze": "snoozed"}[kind]
    span = f" until {until:%Y-%m-%d %H:%M} UTC" if until else ""
    print(f"{done} incident {incident.id}{span} (by {action.by}; the incident stage applies it within seconds)")
    return 0


def cmd_silence_add(args: argparse.Namespace) -> int:
    from watcher.app.silences import add
    from watcher.config import load_config

    s = asyncio.run(add(load_config(args.config), args.match, args.for_, args.comment, args.created_by))
    print(f"silence {s.id} added: {s.describe()}")
    return 0


def cmd_silence_list(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from watcher.app.silences import format_silences, read_all
    from watcher.config import load_config
    from watcher.rules.engine import load_book

    config = load_config(args.config)
    print(format_silences(asyncio.run(read_all(config)), load_book(list(config.rules.files))[1], datetime.now(UTC)))
    return 0


def cmd_silence_expire(args: argparse.Namespace) -> int:
    from watcher.app.silences import expire_id
    from watcher.config import load_config

    s = asyncio.run(expire_id(load_config(args.config), args.id))
    print(f"silence {s.id} expired")
    return 0


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MAX_SILENCE = "365d"


def silence_duration(text: str) -> str:
    """``--for``: a duration longer than 0 and at most :data:`MAX_SILENCE`, else a usage error."""
    from watcher.duration import parse_duration

    if text.strip().startswith("-"):
        raise argparse.ArgumentTypeError(f"a silence cannot last a negative time, got {text!r}")
    try:
        seconds = parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"a silence must last longer than 0s, got {text!r}")
    if seconds > parse_duration(MAX_SILENCE):
        raise argparse.ArgumentTypeError(f"a silence lasts at most {MAX_SILENCE}, got {text!r}; "
                                         "for longer, change or disable the rule")
    return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="watcher",
        description="Watch Huawei Cloud asynchronous jobs and alert the moment one goes wrong.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--log-level", default=None, type=str.upper, choices=LOG_LEVELS, metavar="LEVEL",
        help="DEBUG, INFO, WARNING or ERROR (default INFO; WARNING for `demo`)",
    )
    p.add_argument("--log-format", default="text", choices=["text", "json"], help="log line format")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("run", help="run pollers, rule processors and the notifier (one worker)")
    s.add_argument("--config", required=True, help="TOML config file")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("demo", help="everything on this machine: embedded broker, simulator, sinks, alerts")
    s.add_argument("--duration", type=float, default=None, help="stop after this many seconds and print a summary")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("simulate", help="serve the five Huawei job APIs locally (a stand-in for the cloud)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 in a container)")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument(
        "--scenario", default=None,
        help="scenario YAML, or the name of a shipped one (demo, small, scale, abnormal-rollback-failed, ...; "
        "default: demo)",
    )  # fmt: skip
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("track", help="follow a by-id job (evs, appjob) until it ends")
    s.add_argument("source", choices=["evs", "appjob"])
    s.add_argument("job_id")
    s.add_argument("--project", required=True)
    s.add_argument("--region", default=None, help="default: the region of the first matching [[watch]]")
    s.add_argument("--config", required=True)
    s.set_defaults(func=cmd_track)

    cfg = sub.add_parser("config", help="config tools").add_subparsers(dest="sub", required=True, metavar="SUB")
    s = cfg.add_parser(
        "check", help="validate a config file, its rule files and its notification URLs (--broker: and connect)",
        description="Validate a config file, its rule files and its notification URLs. With --broker, also "
        "connect to the [broker] with its TLS and SASL settings and say in one line what failed (unreachable, "
        "TLS handshake and why, authentication, topic or group authorization, missing topics); exit 2 if so.",
    )
    s.add_argument("config")
    s.add_argument("--broker", action="store_true", help="also connect to the broker and check access (exit 2 if not)")
    s.set_defaults(func=cmd_config_check)

    topics = sub.add_parser("topics", help="topic tools").add_subparsers(dest="sub", required=True, metavar="SUB")
    s = topics.add_parser(
        "plan", help="print every topic the deployment needs, with kafka-topics.sh and kafka-acls.sh commands",
        description="Print every topic and changelog the deployment needs (partitions, cleanup.policy, "
        "retention), a ready-to-run kafka-topics.sh --create command per topic, and the kafka-acls.sh commands "
        "that let watcher's principal use them and its consumer group. Connects to nothing.",
    )
    s.add_argument("--config", required=True)
    s.add_argument("--principal", default=None,
                   help="the principal to grant (default: User:<sasl_username>; with mutual TLS, the certificate's)")
    s.set_defaults(func=cmd_topics_plan)

    rules = sub.add_parser("rules", help="rule tools").add_subparsers(dest="sub", required=True, metavar="SUB")
    s = rules.add_parser("check", help="check rule files; errors as file:line:col: message")
    s.add_argument("files", nargs="+")
    s.set_defaults(func=cmd_rules_check)
    s = rules.add_parser(
        "test", help="dry run: which rules fire on an events file, what dedup/grouping/silences decide; sends nothing"
    )
    s.add_argument("--rules", nargs="+", required=True, metavar="FILE", help="rule files or directories")
    s.add_argument("--events", required=True, help="JSON Lines file, one job event per line")
    s.add_argument("--json", action="store_true", help="print the decision log and messages as JSON")
    s.set_defaults(func=cmd_rules_test)

    s = sub.add_parser(
        "explain",
        help="why a job did or did not notify (live from the topics, or from an events file)",
        description="Tell one job's story. With --config: from what the deployment's topics hold (its events "
        "and the rules they match now, each alert fired, grouped, silenced or inhibited, delivered or "
        "dead-lettered). With --rules and --events: a dry run of an events file, with what dedup, "
        "silences, inhibition and grouping would decide.",
    )
    s.add_argument("job_key", help="source/region/project_id/job_id")
    s.add_argument("--config", help="live: the worker config (its [broker] url and rule files)")
    s.add_argument("--rules", nargs="+", metavar="FILE", help="offline: rule files or directories")
    s.add_argument("--events", help="offline: JSON Lines file, one job event per line")
    s.set_defaults(func=cmd_explain)

    dlq = sub.add_parser("dlq", help="dead-letter tools").add_subparsers(dest="sub", required=True, metavar="SUB")
    s = dlq.add_parser("list", help="list alerts that could not be delivered, with the reason")
    s.add_argument("--config", required=True)
    s.set_defaults(func=cmd_dlq_list)
    s = dlq.add_parser("replay", help="re-deliver dead alerts (all, or --key K ...), each exactly once")
    s.add_argument("--config", required=True)
    s.add_argument("--key", action="append", help="an alert key from `dlq list` (repeatable)")
    s.set_defaults(func=cmd_dlq_replay)

    silence = sub.add_parser("silence", help="run-time silences").add_subparsers(dest="sub", required=True, metavar="SUB")
    s = silence.add_parser("add", help="mute the alerts a CEL expression matches, starting now, on every worker")
    s.add_argument("--match", required=True, help="CEL over event fields plus rule, severity, kind")
    s.add_argument("--for", dest="for_", default=None, type=silence_duration, metavar="DURATION",
                   help=f"e.g. 2h, at most {MAX_SILENCE} (default: until expired)")
    s._negative_number_matcher = re.compile(r"^-\d")  # `--for -1h` is a (bad) value, not an option
    s.add_argument("--comment", default="", help="why (shown wherever the silence mutes an alert)")
    s.add_argument("--created-by", default="", help="who")
    s.add_argument("--config", required=True)
    s.set_defaults(func=cmd_silence_add)
    s = silence.add_parser("list", help="list run-time and rule-file silences, active or not")
    s.add_argument("--config", required=True)
    s.set_defaults(func=cmd_silence_list)
    s = silence.add_parser("expire", help="end a run-time silence now (it stays listed, as expired)")
    s.add_argument("id", help="a silence id from `silence list`")
    s.add_argument("--config", required=True)
    s.set_defaults(func=cmd_silence_expire)

    for name, what in (("ack", "acknowledge an incident: no reminders or escalation until it resolves"),
                       ("unack", "withdraw an acknowledgement"),
                       ("snooze", "hold an incident's reminders and escalation for a while")):
        s = sub.add_parser(name, help=what)
        s.add_argument("incident", help="an incident id, or a prefix only it has (from a message or the status page)")
        if name == "snooze":
            s.add_argument("--for", dest="for_", default="1h", type=silence_duration, metavar="DURATION",
                           help="e.g. 30m, 4h (default 1h)")
            s._negative_number_matcher = re.compile(r"^-\d")
        s.add_argument("--by", default=None, help="who (default: your user name)")
        s.add_argument("--comment", default="", help="why")
        s.add_argument("--config", required=True)
        s.set_defaults(func=cmd_act)

    notify = sub.add_parser("notify", help="notification tools").add_subparsers(dest="sub", required=True, metavar="SUB")
    s = notify.add_parser("test", help="send a test message to the targets with a tag; print per-target results")
    s.add_argument("--tag", required=True)
    s.add_argument("--config", required=True)
    s.set_defaults(func=cmd_notify_test)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.log_level is None:
        args.log_level = "WARNING" if args.command == "demo" else "INFO"
    setup_logging(args.log_level, args.log_format)
    started = time.monotonic()
    try:
        return int(args.func(args) or 0)
    except WatcherError as e:
        print(f"watcher: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        logging.getLogger("watcher").debug("%s took %.1fs", args.command, time.monotonic() - started)


if __name__ == "__main__":
    raise SystemExit(main())

