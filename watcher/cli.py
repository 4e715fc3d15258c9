"""Command line: parses arguments, then calls into the package. No logic of its own."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Sequence

from watcher.errors import WatcherError
from watcher.logs import setup_logging

EPILOG = """\
Secrets come from the environment, never from the config file or the command line:
HUAWEICLOUD_SDK_AK / HUAWEICLOUD_SDK_SK (and HUAWEICLOUD_SDK_SECURITY_TOKEN), or an IAM
token in HUAWEICLOUD_SDK_TOKEN. With no [broker] url, an embedded in-memory Tansu broker is
started (demos, development, tests); set [broker] url = "kafka://host:9092" for real Kafka.
"""


def cmd_run(args: argparse.Namespace) -> int:
    from watcher.app.runner import run_worker
    from watcher.config import load_config

    config = load_config(args.config)
    return run_worker(config, loglevel=args.log_level)


def cmd_config_check(args: argparse.Namespace) -> int:
    from watcher.config import check_notify_targets, load_config
    from watcher.rules.check import check_files

    config = load_config(args.config)
    check_notify_targets(config)
    errors = check_files(list(config.rules.files))
    for e in errors:
        print(e, file=sys.stderr)
    if not errors:
        print(f"{args.config}: ok ({len(config.targets())} targets, {len(config.rules.files)} rule files)")
    return 1 if errors else 0


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

    config = load_config(args.config)
    region = args.region or next((w.region for w in config.watch if w.source == args.source), None)
    if region is None:
        raise WatcherError(f"no [[watch]] for source {args.source!r} in {args.config}; pass --region")
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

    n = asyncio.run(replay(load_config(args.config), args.key or ()))
    print(f"replayed {n} alert(s); each is delivered once, to the targets that have not accepted it yet")
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="watcher",
        description="Watch Huawei Cloud asynchronous jobs and alert the moment one goes wrong.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--log-level", default=None, help="DEBUG, INFO, WARNING, ERROR (default INFO; WARNING for `demo`)"
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
    s = cfg.add_parser("check", help="validate a config file, its rule files and its notification URLs")
    s.add_argument("config")
    s.set_defaults(func=cmd_config_check)

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
    s.add_argument("--for", dest="for_", default=None, metavar="DURATION", help="e.g. 2h (default: until expired)")
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

