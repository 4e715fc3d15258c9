"""The `watcher` command, run as a subprocess: help, checks, a real test notification, errors."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from watcher.cli import build_parser
from watcher.sinks import BackgroundLoop, WebhookSink

ROOT = Path(__file__).resolve().parents[2]
SECRET = "SECRETPASS123"


def watcher(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watcher.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout
    )


def subcommands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path the parser defines: ("run",), ("config", "check"), ..."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from subcommands(sub, (*prefix, name))


COMMANDS = list(subcommands(build_parser()))


def test_the_parser_defines_these_commands() -> None:
    assert COMMANDS == [
        ("run",), ("demo",), ("simulate",), ("track",),
        ("config",), ("config", "check"), ("topics",), ("topics", "plan"), ("rules",), ("rules", "check"), ("rules", "test"), ("explain",),
        ("dlq",), ("dlq", "list"), ("dlq", "replay"),
        ("silence",), ("silence", "add"), ("silence", "list"), ("silence", "expire"), ("ack",), ("unack",),
        ("snooze",), ("notify",), ("notify", "test"),
    ]


def test_top_level_help_mentions_every_command() -> None:
    out = watcher("--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: watcher")
    for (name,) in (c for c in COMMANDS if len(c) == 1):
        assert re.search(rf"^\s+{name}\s+\S", out.stdout, re.M), f"{name} missing from --help"
    assert "HUAWEICLOUD_SDK_AK" in out.stdout  # the epilog says where secrets come from


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: tuple[str, ...]) -> None:
    out = watcher(*command, "--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"usage: watcher {' '.join(command)}")
    for child in (c[-1] for c in COMMANDS if len(c) == len(command) + 1 and c[: len(command)] == command):
        assert child in out.stdout


def test_simulate_help_shows_host() -> None:
    out = watcher("simulate", "--help")
    assert "--host HOST" in out.stdout and "127.0.0.1" in out.stdout


def test_no_command_is_a_usage_error() -> None:
    out = watcher()
    assert out.returncode == 2
    assert "the following arguments are required: COMMAND" in out.stderr


# -- rules check ------------------------------------------------------------------------------


def test_rules_check_shipped_rules() -> None:
    out = watcher("rules", "check", "rules/default.yaml", "watcher/rules/demo.yaml")
    assert out.returncode == 0, out.stderr
    assert re.fullmatch(r"ok: \d+ rule\(s\) in 2 file\(s\)\n", out.stdout)
    assert out.stderr == ""


def test_rules_check_bad_file_reports_file_line_col(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: ok\n    when: failed\n  - name: broken\n    when: FAILED [\n")
    out = watcher("rules", "check", "rules/default.yaml", str(bad))
    assert out.returncode == 1
    assert re.search(rf"^{re.escape(str(bad))}:\d+:\d+: ", out.stderr, re.M), out.stderr
    assert "1 error(s) in 2 file(s)" in out.stderr
    assert out.stdout == ""


def test_rules_check_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    out = watcher("rules", "check", str(tmp_path / "nope.yaml"))
    assert out.returncode == 2
    assert f"{tmp_path / 'nope.yaml'}:1:1: no such file or directory" in out.stderr


# -- config check -----------------------------------------------------------------------------


@pytest.mark.parametrize("config", ["deploy/watcher.toml", "deploy/watcher-demo.toml"])
def test_config_check_good(config: str) -> None:
    out = watcher("config", "check", config)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{config}: ok (")


def test_config_check_bad_value(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text('[poll]\nfast = "soon"\n')
    out = watcher("config", "check", str(path))
    assert out.returncode == 2
    assert out.stderr.startswith(f"watcher: error: {path}:2: poll.fast: expected a duration")


def test_config_check_bad_rule_file(tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text("rules:\n  - name: x\n    wen: failed\n")
    path = tmp_path / "w.toml"
    path.write_text(f'[rules]\nfiles = ["{rules}"]\n')
    out = watcher("config", "check", str(path))
    assert out.returncode == 1
    assert re.search(rf"^{re.escape(str(rules))}:\d+:\d+: ", out.stderr, re.M), out.stderr


def test_config_check_bad_notify_url_keeps_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text(f'[[notify.targets]]\nurl = "nosuch://{SECRET}@host/x"\n')
    out = watcher("config", "check", str(path))
    assert out.returncode == 2
    assert f"{path}:2: notify.targets[0].url: not a usable Apprise URL" in out.stderr
    assert SECRET not in out.stdout + out.stderr


def test_config_check_missing_file(tmp_path: Path) -> None:
    out = watcher("config", "check", str(tmp_path / "nope.toml"))
    assert out.returncode == 2
    assert "cannot read config: No such file or directory" in out.stderr


# -- notify test against a real webhook sink ------------------------------------------------


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    bg = BackgroundLoop()
    hook = bg.run(WebhookSink().start())
    try:
        yield hook
    finally:
        bg.run(hook.stop())
        bg.close()


def test_notify_test_delivers_and_masks(sink: WebhookSink, tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text(
        f'[[notify.targets]]\nurl = "json://user:{SECRET}@127.0.0.1:{sink.port}/x"\ntags = ["X"]\n\n'
        f'[[notify.targets]]\nurl = "json://127.0.0.1:{sink.port}/other"\ntags = ["Y"]\n'
    )
    out = watcher("--log-level", "DEBUG", "notify", "test", "--tag", "X", "--config", str(path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"OK      json://user:****@127.0.0.1:{sink.port}/****"
    assert SECRET not in out.stdout + out.stderr  # not in the result, not in DEBUG logs
    assert [r.path for r in sink.received] == ["/x"]  # only the target tagged X
    body = sink.received[0].body
    assert body["title"] == "watcher test notification"
    assert "targets tagged 'X'" in body["message"]


def test_notify_test_failure_is_reported_masked(sink: WebhookSink, tmp_path: Path) -> None:
    sink.fail_always = True
    path = tmp_path / "w.toml"
    path.write_text(f'[[notify.targets]]\nurl = "json://user:{SECRET}@127.0.0.1:{sink.port}/x"\ntags = ["X"]\n')
    out = watcher("notify", "test", "--tag", "X", "--config", str(path))
    assert out.returncode == 1
    assert out.stdout.startswith(f"FAILED  json://user:****@127.0.0.1:{sink.port}/****  [")
    assert SECRET not in out.stdout + out.stderr


def test_notify_test_no_matching_tag(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text('[[notify.targets]]\nurl = "json://127.0.0.1:9/x"\ntags = ["X"]\n')
    out = watcher("notify", "test", "--tag", "nobody", "--config", str(path))
    assert out.returncode == 1
    assert out.stdout.strip() == "no notification targets matched"


# -- track ------------------------------------------------------------------------------------


def test_track_without_broker_url_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text('[[watch]]\nsource = "evs"\nregion = "cn-north-4"\nprojects = ["p1"]\n')
    out = watcher("track", "evs", "ff8080816", "--project", "p1", "--config", str(path))
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "watcher: error: `watcher track` needs a [broker] url: the embedded broker lives inside `watcher run`"
    )


def test_track_without_a_region_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text('[broker]\nurl = "kafka://127.0.0.1:9"\n')
    out = watcher("track", "appjob", "123", "--project", "p1", "--config", str(path))
    assert out.returncode == 2
    assert f"no [[watch]] for source 'appjob' in {path}; pass --region" in out.stderr


# -- README ------------------------------------------------------------------------------------


def commands_listing() -> str:
    """The README's "Commands" block, as the parser defines it: usage line, then the help."""
    parser = build_parser()
    lines = [" ".join(parser.format_usage().split()[1:]).replace("[-h] ", ""), ""]

    def walk(p: argparse.ArgumentParser) -> Iterator[tuple[str, str]]:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {c.dest: c.help or "" for c in action._choices_actions}
                for name, sub in action.choices.items():
                    if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                        yield from walk(sub)
                    else:
                        usage = " ".join(sub.format_usage().split()[1:]).replace(" [-h]", "")
                        yield usage, helps[name]

    for usage, help_text in walk(parser):
        lines += [usage, f"    {help_text}"]
    return "\n".join(lines) + "\n"


def test_readme_lists_the_commands_as_the_parser_defines_them() -> None:
    readme = (ROOT / "README.md").read_text()
    section = re.search(r"^## Commands\n(.*?)^## ", readme, re.M | re.S)
    assert section, "README.md has no '## Commands' section"
    block = re.search(r"```text\n(.*?)```", section.group(1), re.S)
    assert block, "README.md's Commands section has no ```text block"
    assert block.group(1) == commands_listing(), "regenerate it with tests.unit.test_cli.commands_listing()"
