"""`watcher run --config CONFIG` that also appends a JSON line per delivered notification to REPORT.

    python -m tests.integration.reporting_worker CONFIG REPORT

The worker is the product's own ``run_worker``; the only addition is a delivered-hook (the
seam :class:`watcher.app.components.Components` offers), so a test running several workers
can tell which one delivered which alert.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from watcher.app.runner import run_worker
from watcher.cli import setup_logging
from watcher.config import load_config
from watcher.events import Notification


def main(config_path: str, report: str) -> int:
    setup_logging("INFO")

    def record(note: Notification) -> None:
        alert = note.alert or note.incident.last_alert
        job_id = alert.event.job_id if alert is not None else ""
        line = json.dumps({"pid": os.getpid(), "key": note.key, "job_id": job_id, "kind": note.kind})
        with open(report, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def on_app(app: Any) -> None:
        app.watcher_components.delivered_hooks.append(record)

    return run_worker(load_config(config_path), loglevel="INFO", on_app=on_app)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
