"""The README's complete config, with `rules/default.yaml`, delivers to the targets it names.

Issue 12, item 1: the README's config sent every alert nowhere (its rules had no `notify`, the
default route had no target). This decodes the README's TOML block, checks it as written,
then swaps in local stand-ins for what it points at — the broker, the simulator for the cloud,
a webhook sink for the Slack URL and an SMTP mailbox for the mailtos URL, tags untouched — and
runs `watcher run` on it: every alert the rules fire arrives at both targets.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.integration.harness import ROOT, Worker, read_topic, unique_prefix, wait_for
from watcher import events as ev
from watcher.simulator.server import small_scenario_path, start_simulator
from watcher.simulator.settings import Settings
from watcher.sinks import Mailbox, WebhookSink

pytestmark = pytest.mark.timeout(240)


def readme_config() -> dict[str, Any]:
    readme = (ROOT / "README.md").read_text()
    section = re.search(r"^## Configuration\n(.*?)^## ", readme, re.M | re.S)
    assert section, "README.md has no Configuration section"
    block = re.search(r"A complete config for a real account:\n\n```toml\n(.*?)```", section.group(1), re.S)
    assert block, "the Configuration section has no complete config"
    return tomllib.loads(block.group(1))


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "watcher.cli", "config", "check", str(path)], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)


def beside_rules(tmp_path: Path, data: dict[str, Any], name: str = "watcher.toml") -> Path:
    """The config written next to a copy of the rules it names (its paths are relative to it)."""
    for rel in data.get("rules", {}).get("files", []):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    path = tmp_path / name
    path.write_bytes(msgspec.toml.encode(data))
    return path


def test_the_readme_config_checks_as_written(tmp_path: Path) -> None:
    beside_rules(tmp_path, readme_config())
    out = subprocess.run([sys.executable, "-m", "watcher.cli", "config", "check", "watcher.toml"], capture_output=True,
                         text=True, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "watcher.toml: ok (5 poll targets, 4 rules in 1 rule file, 2 notification targets)"
    shown = re.search(r"`watcher config check` on it:\n\n```text\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert shown and shown.group(1) == out.stdout, "the README shows another `config check` output"


async def test_the_readme_config_delivers_every_alert_to_its_targets(tansu_broker, tmp_path: Path) -> None:
    running = await start_simulator(scenario=small_scenario_path(), settings=Settings(speed=0))
    hook = await WebhookSink().start()
    mailbox = Mailbox().start()
    prefix = unique_prefix("readme")
    worker: Worker | None = None
    try:
        data = readme_config()
        targets = data["notify"]["targets"]
        assert [t["url"].split("://")[0] for t in targets] == ["slack", "mailtos"]
        targets[0]["url"] = hook.url("slack")
        targets[1]["url"] = mailbox.url()
        data["broker"].update(url=tansu_broker.url, topic_prefix=prefix, tansu=True)
        data["app"]["id"] = prefix
        data["cloud"].update(endpoints={s: running.url for s in ("workspace", "workspaceapp", "evs")},
                             retry_budget="20s")
        data["poll"].update(fast="500ms", idle="2s", tick="250ms", sweep="2s")  # test pace; routing untouched
        path = beside_rules(tmp_path, data)
        out = check(path)
        assert out.returncode == 0, out.stderr

        # Every job of the scenario has ended: each failed one is seen, and alerted, on the first poll.
        running.sim.set_time(running.sim.horizon() + 1)
        project = data["watch"][0]["projects"][0]
        expected = {
            ("workspace-job-failed", "18acb11c-f51e-4e77-98a9-8c01130026cf"),
            ("app-server-job-failed", "863770430872548230"),
            ("app-server-job-failed", "156605018718244850"),
            ("script-task-failures", "e780b5d9-0543-44bd-b713-e5234cd012d5"),  # FINISH, 1 desktop failed
            ("script-task-failures", "a8e4064c-a45c-4e5c-b9d3-0e3051bf6c2d"),
        }
        failed = {t.job_id for t in running.sim.transitions()
                  if t.project == project and t.source in ("workspace", "workspaceapp", "script")
                  and t.to_status in ("FAILED", "FINISH", "ABNORMAL")}
        assert failed == {job for _, job in expected}, "the small scenario changed: update the expected alerts"

        worker = Worker(path, tmp_path / "worker.log").start()
        # Mail is not paced by default (Apprise would wait 5.5 s between two mails to one server).
        await wait_for(lambda: len(hook.received) >= 5 and len(mailbox.mails) >= 5, 180, "five alerts at both targets",
                       worker)
        alerts = await read_topic(tansu_broker.conn, f"{prefix}.alerts", until=lambda r: len(r) >= 5, settle=2.0)
        fired = [a for a in alerts if isinstance(a, ev.Alert)]
        assert {(a.rule, a.event.job_id) for a in fired} == expected
        assert len(fired) == 5
        titles = sorted(a.title for a in fired)
        assert sorted(r.body["title"] for r in hook.received) == titles
        assert sorted(m.subject for m in mailbox.mails) == titles
        assert all(m.rcpt_tos == ["oncall@example.com"] for m in mailbox.mails)
        assert {r.path for r in hook.received} == {"/slack"}
        assert "no_route" not in worker.output()
    finally:
        if worker is not None:
            worker.stop()
        mailbox.stop()
        await hook.stop()
        await running.stop()
