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
    WatchConfig,
)
from watcher.sinks import BackgroundLoop, Mail, Mailbox, Received, WebhookSink

#: Shipped inside the package (``pip install .`` then ``watcher demo`` works anywhere).
DEMO_RULES = Path(__file__).resolve().parent / "rules" / "demo.yaml"


def _say(line: str) -> None:
    print(line, flush=True)


def demo_config(sim_url: str, projects: list[str], job_ids: dict[str, list[str]], notify: Any) -> Config:
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
    )


def run_demo(duration: float | None = None, log_level: str = "WARNING") -> int:
    """Block until Ctrl-C (or ``duration`` seconds), then print a summary."""
    import logging

    for noisy in ("mail.log", "aiohttp.access", "watcher.simulator"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from watcher.app.runner import run_worker
    from watcher.notify.config import NotifyConfig, NotifyTarget
    from watcher.simulator import DEFAULT_AK, DEFAULT_SK
    from watcher.simulator.server import demo_scenario_path, start_simulator

    os.environ.setdefault("HUAWEICLOUD_SDK_AK", DEFAULT_AK)
    os.environ.setdefault("HUAWEICLOUD_SDK_SK", DEFAULT_SK)
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
    config = demo_config(sim.url, projects, job_ids, notify)
    _say("watcher demo: embedded Tansu broker (in-memory) + Huawei Cloud job API simulator")
    _say(f"  simulator  {sim.url}  projects: {', '.join(projects)}")
    _say(f"  webhook    http://127.0.0.1:{sink.port}/demo      mailbox  smtp://127.0.0.1:{mailbox.port}")
    _say(f"  rules      {DEMO_RULES}")
    _say("  alerts appear below as they are delivered (console = full text; webhook/mailbox = receipts)")
    _say("")

    app_ref: dict[str, Any] = {}

    def on_app(app: Any) -> None:
        app_ref["app"] = app
        if duration:
            @app.task
            async def stop_after() -> None:
                import asyncio

                await asyncio.sleep(duration)
                app_ref["stopped_by_timer"] = True
                # stop the way Ctrl-C does, so the worker shuts down in order
                os.kill(os.getpid(), signal.SIGINT)

    try:
        run_worker(config, loglevel=log_level, on_app=on_app)
    finally:
        stats = app_ref["app"].watcher_components.stats if "app" in app_ref else None
        _say("")
        _say("demo summary")
        if stats is not None:
            _say(f"  polls {stats.polls}  events {stats.events}  alerts fired {stats.fired}  delivered {stats.sent}"
                 f"  dead-lettered {stats.dead}")
        _say(f"  webhook received {counts['webhook']}  mailbox received {counts['mail']}")
        _say(f"  ran {time.monotonic() - started:.0f}s")
        mailbox.stop()
        bg.run(sim.stop())
        bg.run(sink.stop())
        bg.close()
        sys.stdout.flush()
    return 0
