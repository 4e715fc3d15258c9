"""`watcher dlq replay` on a real broker: an unknown key, and no_route letters that would die again.

Issue 12, item 5. Dead letters are published straight to the topic (no worker needed): what
is tested is what the command decides before it replays anything.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.integration.harness import ROOT, read_topic, unique_prefix
from watcher import events as ev
from watcher.incidents.model import standalone

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "watcher.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=90)


def letter(key: str, tags: tuple[str, ...], reason: str = "no_route") -> ev.DeadLetter:
    event = ev.JobEvent(source="evs", region="cn-north-4", project_id="p1", job_key=f"evs/cn-north-4/p1/{key}",
                        job_id=key, job_type="createVolume", status="FAIL", phase="failed", observed_at=NOW)
    alert = ev.Alert(key=f"evs-failed|{key}", rule="evs-failed", tags=tags, title=f"[FAIL] {key}", body="",
                     event=event, fired_at=NOW, incident=f"evs-failed|evs/cn-north-4/p1/{key}")
    return ev.DeadLetter(notification=standalone(alert, NOW), reason=reason, attempts=0, failed_targets=(),
                         failed_at=NOW)


LOST, ROUTABLE, FAILED = (f"evs-failed|evs/cn-north-4/p1/{k}#1/1" for k in ("lost", "routable", "failed"))


async def publish(conn: Any, topic: str, letters: list[ev.DeadLetter]) -> None:
    from watcher.app.topics import ensure_topics

    await ensure_topics(conn, {topic: 8, topic.replace(".dlq", ".notifications"): 8})  # as a deployment has them
    producer = conn.producer()
    await producer.start()
    try:
        for d in letters:
            await producer.send_and_wait(topic, ev.encode(d), key=d.key.encode())
    finally:
        await producer.stop()


async def test_replay_refuses_unknown_keys_and_letters_that_would_die_again(tansu_broker, tmp_path: Path) -> None:
    prefix = unique_prefix("replay")
    await publish(tansu_broker.conn, f"{prefix}.dlq",
                  [letter("lost", ("pager",)), letter("routable", ("ops",)), letter("failed", ("pager",), "http_5xx")])
    cfg = tmp_path / "w.toml"
    cfg.write_text(f'[broker]\nurl = "{tansu_broker.url}"\ntopic_prefix = "{prefix}"\ntansu = true\n\n'
                   '[[notify.targets]]\nurl = "json://127.0.0.1:9/hook"\ntags = ["ops"]\n')

    out = cli("dlq", "replay", "--key", "nosuch", "--config", str(cfg))
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr == f"watcher: error: no dead letter with key 'nosuch' on {prefix}.dlq (see `watcher dlq list`)\n"

    out = cli("dlq", "replay", "--key", LOST, "--config", str(cfg))
    refused = (f"watcher: not replayed: notification {LOST} was dead-lettered no_route, and its tags pager still "
               f"reach no notification target in {cfg}, so a replay would dead-letter it again; add a target with "
               "one of those tags (or fix the rule's notify), then replay\n")
    assert (out.returncode, out.stderr) == (1, refused)
    assert out.stdout == ("replayed 0 notification(s); each is delivered once, to the targets that have not accepted "
                          "it yet\n")

    # All: the routable no_route letter and the http_5xx one go; the lost one is refused.
    out = cli("dlq", "replay", "--config", str(cfg))
    assert (out.returncode, out.stderr) == (1, refused)
    assert out.stdout.startswith("replayed 2 notification(s)")
    replayed = await read_topic(tansu_broker.conn, f"{prefix}.notifications", until=lambda r: len(r) >= 2,
                                settle=1.0, timeout=30)  # fmt: skip
    assert sorted(n.key for n in replayed) == sorted([FAILED, ROUTABLE])
    assert all(n.replay for n in replayed)
