"""`watcher demo --duration N` with a user's own Huawei keys in the environment (issue 12,
items 2 and 10): it polls the simulator with the simulator's keys anyway, alerts arrive,
it stops at N seconds from its start and its summary accounts for every alert fired."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(240)
DURATION = 20


def test_the_demo_uses_its_own_keys_stops_on_time_and_explains_every_alert(tmp_path: Path) -> None:
    env = {**os.environ, "HUAWEICLOUD_SDK_AK": "MYREALAK000000000001", "HUAWEICLOUD_SDK_SK": "MYREALSK0000000000001",
           "HUAWEICLOUD_SDK_TOKEN": "MYREALTOKEN"}
    launched = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "watcher.cli", "demo", "--duration", str(DURATION)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env=env)
    assert proc.stdout is not None
    lines: list[str] = []
    summary_at = None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("demo summary"):
            summary_at = time.monotonic() - launched
    assert proc.wait(60) == 0, "\n".join(lines[-40:])
    text = "\n".join(lines)
    assert "Traceback" not in text and "BuildBackendWarning" not in text
    assert summary_at is not None and summary_at >= DURATION, text[-3000:]  # not before the deadline
    start = lines.index("demo summary")
    summary = lines[start + 1:start + 11]
    fired = int(re.fullmatch(r"  polls \d+  events \d+  alerts fired (\d+), of which:", summary[0]).group(1))
    fate = dict((name, int(n)) for name, n in re.findall(r"([a-z-]+) (\d+)", summary[1]))
    assert list(fate) == ["paged", "merged", "grouped", "silenced", "inhibited", "pending"]
    assert fired > 0, "no alert with the user's keys in the environment: the demo used them, not the simulator's"
    assert sum(fate.values()) == fired, summary
    assert re.fullmatch(r"  incidents opened (\d+), updated \d+ .*, resolved \d+", summary[5]), summary[5]
    assert re.fullmatch(r"  notifications delivered \d+ \(\d+ group messages, \d+ self-health notices\)  "
                        r"dead-lettered \d+", summary[6]), summary[6]
    hooks = int(re.fullmatch(r"  webhook received (\d+)  mailbox received \d+", summary[7]).group(1))
    assert hooks > 0
    assert summary[8] == f"  ran {DURATION}s"
