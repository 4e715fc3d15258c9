"""Secrets at two edges a newcomer found open (issue 12, item 11): a short webhook token printed
by `watcher notify test`, and the cloud keys inherited by the embedded broker's process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from watcher.app.broker import EmbeddedBroker
from watcher.sinks import BackgroundLoop, WebhookSink

ROOT = Path(__file__).resolve().parents[2]
SHORT = "S3cr3tT0k3n12"  # 13 characters: too short to look like a token


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    bg = BackgroundLoop()
    hook = bg.run(WebhookSink().start())
    try:
        yield hook
    finally:
        bg.run(hook.stop())
        bg.close()


def test_notify_test_masks_every_path_segment_and_query_value(sink: WebhookSink, tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text(f'[[notify.targets]]\nurl = "json://127.0.0.1:{sink.port}/hook/{SHORT}?-room={SHORT}x"\n'
                    'tags = ["X"]\n')
    out = subprocess.run([sys.executable, "-m", "watcher.cli", "--log-level", "DEBUG", "notify", "test", "--tag", "X",
                          "--config", str(path)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"OK      json://127.0.0.1:{sink.port}/****/****\n"
    assert SHORT not in out.stdout + out.stderr
    assert [r.path for r in sink.received] == [f"/hook/{SHORT}"]  # the real URL was used


def test_the_embedded_broker_gets_a_clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "AKFROMTHESHELL0000001")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "SKFROMTHESHELL00000000000000000000000001")
    monkeypatch.setenv("HUAWEICLOUD_SDK_TOKEN", "TOKENFROMTHESHELL")
    with EmbeddedBroker() as broker:  # it started: it answers Kafka requests
        assert broker.pid is not None
        environ = Path(f"/proc/{broker.pid}/environ").read_bytes().split(b"\0")
    names = {item.split(b"=", 1)[0].decode() for item in environ if item}
    assert names <= {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "RUST_LOG", "RUST_BACKTRACE"}
    assert not any(b"FROMTHESHELL" in item for item in environ)
