"""`watcher demo`: the whole pipeline on one machine, with alerts you can watch arrive.

Embedded Tansu broker + the simulator playing the demo scenario + pollers for all five
APIs + ``watcher/rules/demo.yaml`` + three notification targets: the console, a local webhook sink
and a local SMTP mailbox (both started here, both real servers on 127.0.0.1).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from watcher.config import (
    AppConfig,
    BrokerConfig,
    CloudConfig,
    Config,
    PollConfig,
    RulesConfig,
    UiConfig,
    WatchConfig,
)
from watcher.sinks import BackgroundLoop, Mail, Mailbox, Received, WebhookSink

#: Shipped inside the package (``pip install .`` then ``watcher demo`` works anywhere).
DEMO_RULES = Path(__file__).resolve().parent / "rules" / "demo.yaml"


def _say(line: str) -> None:
    print(line, flush=True)


def demo_config(sim_url: str, projects: list[str], job_ids: dict[str, list[str]], notify: Any,
                ui_port: int = 0) -> Config:
    region = "cn-north-4"
    endpoints = {"workspace": sim_url, "workspaceapp": sim_url, "evs": sim_url}
    watch = [
        WatchConfig(source="workspace", region=region, projects=tuple(projects)),
        WatchConfig(source="workspaceapp", region=region, projects=tuple(projects), job_types=("CREATE_SERVER",)),
        WatchConfig(source="script", region=region, projects=tuple(projects)),
    ]
    for project in projects:
        if job_ids.get(f"evs/{project}"):
            watch.append(WatchConfig(source="evs", region=region, projects=(project,), job_ids=tuple(job_ids[f"evs/{project}"])))
        if job_ids.get(f"appjob/{project}"):
            watch.append(
                WatchConfig(source="appjob", region=region, projects=(project,), job_ids=tuple(job_ids[f"appjob/{project}"]))
            )
    return Config(
        broker=BrokerConfig(url="", partitions=4),
        cloud=CloudConfig(endpoints=endpoints, max_concurrency=8),
        poll=PollConfig(fast="2s", idle="10s", tick="1s"),
        watch=tuple(watch),
        rules=RulesConfig(files=(str(DEMO_RULES),)),
        notify=notify,
        app=AppConfig(id="watcher-demo"),
        ui=UiConfig(enabled=ui_port > 0, port=ui_port),
    )


def _ui_port() -> int:
    """8088 if it is free, else any free port: the status page must not stop the demo."""
    import socket

    from watcher.app.broker import free_port

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", 8088))
            return 8088
        except OSError:
            return free_port()
#: The variables the demo sets for the simulator, and the ones it hides, whatever the shell has:
#: a user's real keys (normal on an engineer's shell) would get every poll a 401.
SIMULATOR_ENV = ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK")
HIDDEN_ENV = ("HUAWEICLOUD_SDK_TOKEN", "HUAWEICLOUD_SDK_SECURITY_TOKEN")


def use_simulator_keys(environ: dict[str, str] | os._Environ[str]) -> dict[str, str | None]:
    """Put the simulator's own keys in ``environ`` (the cloud client reads them there) and
    hide any token; returns what was there, for :func:`restore_env`."""
    from watcher.simulator import DEFAULT_AK, DEFAULT_SK

    before = {k: environ.get(k) for k in (*SIMULATOR_ENV, *HIDDEN_ENV)}
    environ["HUAWEICLOUD_SDK_AK"], environ["HUAWEICLOUD_SDK_SK"] = DEFAULT_AK, DEFAULT_SK
    for k in HIDDEN_ENV:
        environ.pop(k, None)
    return before


def restore_env(environ: dict[str, str] | os._Environ[str], before: dict[str, str | None]) -> None:
    for k, v in before.items():
        if v is None:
            environ.pop(k, None)
        else:
            environ[k] = v


def summary_lines(stats: Any, elapsed: float, webhook: int, mail: int) -> list[str]:
    """The demo summary: every alert fired is accounted for, by the named counters of
    :class:`watcher.app.metrics.Stats` (see :meth:`Stats.explained`)."""
    fate = stats.explained()
    return [
        f"  polls {stats.polls}  events {stats.events}  alerts fired {stats.fired}, of which:",
        "    " + "  ".join(f"{name} {n}" for name, n in fate.items()),
        "    (paged: opened an incident; merged: joined one already open, so one failure is one page;",
        "     grouped: one message per group; silenced and inhibited: recorded on the decisions topic;",
        "     pending: not at their incident yet when the demo stopped)",
        f"  incidents opened {stats.opened}, updated {stats.updated} (cards edit themselves; mail and webhooks "
        f"hear only new failures), resolved {stats.resolved}",
        f"  notifications delivered {stats.sent} ({stats.group_messages} group messages, {stats.notices} "
        f"self-health notices)  dead-lettered {stats.dead}",
        f"  webhook received {webhook}  mailbox received {mail}",
        f"  ran {elapsed:.0f}s",
    ]


def show_incidents(app: Any, stamp: Any) -> None:
    """Print each incident change as it is made: openings, and the updates that edit a card in
    place (the console is no chat, so the demo says what a Slack card would show)."""
    def said(note: Any) -> None:
        if note.kind == "open":
            return  # the console target prints the page itself
        what = {"update": "updated", "resolve": "resolved", "escalate": "escalated", "remind": "reminder"}[note.kind]
        _say(f"{stamp()}  incident {what:<9} {note.incident.title[:70]}: {note.change[:90]}")

    app.watcher_components.incident_hooks.append(said)


def run_demo(duration: float | None = None, log_level: str = "WARNING") -> int:
    """Block until Ctrl-C (or ``duration`` seconds after the start), then print a summary."""
    import logging

    for noisy in ("mail.log", "aiohttp.access", "watcher.simulator"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from watcher.app.runner import run_worker
    from watcher.notify.config import NotifyConfig, NotifyTarget
    from watcher.simulator.server import demo_scenario_path, start_simulator

    env_before = use_simulator_keys(os.environ)
    counts: Counter[str] = Counter()
    started = time.monotonic()

    def stamp() -> str:
        return f"{time.monotonic() - started:6.1f}s"

    def on_hook(rec: Received) -> None:
        counts["webhook"] += 1
        title = rec.body.get("title", "") if isinstance(rec.body, dict) else ""
        _say(f"{stamp()}  webhook  <- {title}")

    def on_mail(mail: Mail) -> None:
        counts["mail"] += 1
        _say(f"{stamp()}  mailbox  <- {mail.subject}  (to {', '.join(mail.rcpt_tos)})")

    bg = BackgroundLoop()
    sink = bg.run(WebhookSink(on_receive=on_hook).start())
    mailbox = Mailbox(on_receive=on_mail).start()
    sim = bg.run(start_simulator(scenario=demo_scenario_path()))
    projects = list(sim.projects)
    job_ids = {f"{src}/{p}": list(sim.sim.job_ids(src, p)) for src in ("evs", "appjob") for p in projects}
    notify = NotifyConfig(
        targets=(
            NotifyTarget(url="console://", tags=("console",)),
            NotifyTarget(url=sink.url("demo"), tags=("webhook",)),
            NotifyTarget(url=mailbox.url(), tags=("mail",)),
        )
    )
    ui_port = _ui_port()
    config = demo_config(sim.url, projects, job_ids, notify, ui_port)
    _say("watcher demo: embedded Tansu broker (in-memory) + Huawei Cloud job API simulator")
    _say(f"  simulator  {sim.url}  projects: {', '.join(projects)}  (its own keys, whatever your shell has)")
    _say(f"  webhook    http://127.0.0.1:{sink.port}/demo      mailbox  smtp://127.0.0.1:{mailbox.port}")
    _say(f"  rules      {DEMO_RULES}")
    _say(f"  status     http://127.0.0.1:{ui_port}/  ("
         + ("actions need WATCHER_UI_TOKEN" if os.environ.get("WATCHER_UI_TOKEN") else "read-only: set WATCHER_UI_TOKEN to act")
         + ")")
    _say("  alerts appear below as they are delivered (console = full text; webhook/mailbox = receipts)")
    _say("")

    app_ref: dict[str, Any] = {}
    printed: list[bool] = []

    def summary() -> None:
        if printed:
            return
        printed.append(True)
        stats = app_ref["app"].watcher_components.stats if "app" in app_ref else None
        _say("")
        _say("demo summary")
        if stats is not None:
            for line in summary_lines(stats, time.monotonic() - started, counts["webhook"], counts["mail"]):
                _say(line)
        else:
            _say(f"  webhook received {counts['webhook']}  mailbox received {counts['mail']}")
            _say(f"  ran {time.monotonic() - started:.0f}s")

    def on_app(app: Any) -> None:
        app_ref["app"] = app
        show_incidents(app, stamp)
        if duration:
            @app.task
            async def stop_after() -> None:
                import asyncio

                # Counted from the demo's start, not the worker's: starting takes seconds.
                await asyncio.sleep(max(0.0, started + duration - time.monotonic()))
                summary()  # at the deadline; the orderly shutdown that follows adds nothing to it
                app_ref["stopped_by_timer"] = True
                # stop the way Ctrl-C does, so the worker shuts down in order
                os.kill(os.getpid(), signal.SIGINT)

    try:
        run_worker(config, loglevel=log_level, on_app=on_app)
    finally:
        summary()
        mailbox.stop()
        bg.run(sim.stop())
        bg.run(sink.stop())
        bg.close()
        restore_env(os.environ, env_before)
        sys.stdout.flush()
    return 0
