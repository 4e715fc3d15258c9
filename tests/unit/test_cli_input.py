"""Bad input at the `watcher` command line: one clear line, the documented exit code, no traceback.

Issue 12, items 3-5 (the broker-down messages are tested with the broker tools). Every
command runs as a subprocess through the real entry point, from the repository root.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def watcher(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "watcher.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=60)


def last_line(out: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in out.stderr, out.stderr
    return out.stderr.strip().splitlines()[-1]


# -- item 4: one validation for `config check` and `run` ----------------------------------------

BAD_CONFIGS = {
    "max_concurrency": ('[cloud]\nmax_concurrency = 0\n',
                        "{path}:2: cloud.max_concurrency: must be at least 1 (HTTP requests in flight to the cloud)"),
    "apprise_missing": ('[notify]\napprise_config = "nope.yaml"\n',
                        "{path}:2: notify.apprise_config: Apprise config file {dir}/nope.yaml not found"),
    "apprise_broken": ('[notify]\napprise_config = "broken.yaml"\n',
                       "{path}:2: notify.apprise_config: no usable notification URL in {dir}/broken.yaml (not Apprise "
                       "YAML or TEXT, or no URL in it parses)"),
    "broker_url": ('[broker]\nurl = "http://kafka:9092"\n',
                   "{path}:2: broker.url: unknown scheme 'http://'; expected kafka://host:port"),
    "region": ('[[watch]]\nsource = "evs"\nregion = "mars-1"\nprojects = ["p1"]\n',
               "{path}:3: watch[0].region: unknown region 'mars-1' for evs, not one of the SDK's 34 (did you mean "
               "'me-east-1'?); for another region set [cloud] endpoints.evs or HUAWEICLOUD_SDK_REGION_EVS_MARS_1"),
    "job_id": ('[[watch]]\nsource = "evs"\nregion = "cn-north-4"\nprojects = ["p1"]\njob_ids = ["a/b"]\n',
               "{path}:5: watch[0].job_ids: not a valid job id: 'a/b'; expected 1 to 128 letters, digits, '.', '_', "
               "':' or '-'"),
}


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_config_check_and_run_refuse_the_same_config(tmp_path: Path, case: str, command: str) -> None:
    text, expected = BAD_CONFIGS[case]
    path = tmp_path / "w.toml"
    path.write_text(text)
    (tmp_path / "broken.yaml").write_text("urls: [[[\n")
    args = ("config", "check", str(path)) if command == "check" else ("run", "--config", str(path))
    out = watcher(*args)
    assert out.returncode == 2
    assert out.stderr == f"watcher: error: {expected.format(path=path, dir=tmp_path)}\n"
    assert out.stdout == ""


def test_a_binary_config_file_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    out = watcher("config", "check", str(path))
    assert (out.returncode, out.stderr) == (2, f"watcher: error: {path}: not a TOML text file: byte 0x89 at offset 0 "
                                               "is not UTF-8\n")


def test_rule_files_resolve_beside_the_config_not_the_current_directory(tmp_path: Path) -> None:
    conf = tmp_path / "etc"
    conf.mkdir()
    (conf / "mine.yaml").write_text("rules:\n  - name: anything-failed\n    when: failed\n")
    (conf / "w.toml").write_text('[rules]\nfiles = ["mine.yaml"]\n\n[[notify.targets]]\nurl = "console://"\n')
    out = watcher("config", "check", "etc/w.toml", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "etc/w.toml: ok (0 poll targets, 1 rule in 1 rule file, 1 notification target)"


# -- item 3: track checks against the config before publishing ------------------------------------

TRACK_CONFIG = '[broker]\nurl = "kafka://127.0.0.1:9"\n\n[[watch]]\nsource = "evs"\nregion = "cn-north-4"\nprojects = ["p1", "p2"]\n'


def test_track_an_unwatched_project_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text(TRACK_CONFIG)
    out = watcher("track", "evs", "abc", "--project", "nosuchproject", "--config", str(path))
    assert out.returncode == 2
    assert out.stderr == (
        f"watcher: error: project 'nosuchproject' is not watched for evs in cn-north-4 in {path} (projects: p1, p2); "
        "add it to a [[watch]] table's projects, or the worker would drop the request\n"
    )
    assert out.stdout == ""


def test_track_a_region_without_a_watch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text(TRACK_CONFIG)
    out = watcher("track", "evs", "abc", "--project", "p1", "--region", "cn-east-3", "--config", str(path))
    assert out.returncode == 2
    assert last_line(out) == (
        f"watcher: error: project 'p1' is not watched for evs in cn-east-3 in {path} (no [[watch]] for evs in "
        "cn-east-3); add it to a [[watch]] table's projects, or the worker would drop the request"
    )


@pytest.mark.parametrize(("job_id", "shown"), [
    ("x" * 100_000, "'xxxxxxxxxxxxxxxxxxxx'… (100,000 characters)"),
    ("../../v2/other", "'../../v2/other'"),
    ("a b", "'a b'"),
])
def test_track_refuses_an_id_that_is_not_an_id(tmp_path: Path, job_id: str, shown: str) -> None:
    path = tmp_path / "w.toml"
    path.write_text(TRACK_CONFIG)
    out = watcher("track", "evs", job_id, "--project", "p1", "--config", str(path))
    assert out.returncode == 2
    assert out.stderr == (f"watcher: error: not a valid job id: {shown}; expected 1 to 128 letters, digits, '.', "
                          "'_', ':' or '-'\n")


# -- item 5: durations, log levels, job keys, notification URLs -----------------------------------


@pytest.mark.parametrize(("value", "reason"), [
    ("5parsecs", "expected a duration like '30s', '10m', '2h' or '1h30m', got '5parsecs'"),
    ("-1h", "a silence cannot last a negative time, got '-1h'"),
    ("99999999999h", "a silence lasts at most 365d, got '99999999999h'; for longer, change or disable the rule"),
    ("0s", "a silence must last longer than 0s, got '0s'"),
])
def test_silence_add_for_a_duration_that_is_not_one(tmp_path: Path, value: str, reason: str) -> None:
    out = watcher("silence", "add", "--match", 'job_type == "x"', "--for", value, "--config", str(tmp_path / "w.toml"))
    assert out.returncode == 2
    assert last_line(out) == f"watcher silence add: error: argument --for: {reason}"


def test_an_unknown_log_level_is_a_usage_error() -> None:
    out = watcher("--log-level", "TRACE", "rules", "check", "rules/default.yaml")
    assert out.returncode == 2
    assert last_line(out) == ("watcher: error: argument --log-level: invalid choice: 'TRACE' "
                              "(choose from 'DEBUG', 'INFO', 'WARNING', 'ERROR')")


def test_log_level_is_case_insensitive() -> None:
    out = watcher("--log-level", "debug", "rules", "check", "rules/default.yaml")
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(("key", "reason"), [
    ("garbage", "not a job key: 'garbage'; expected source/region/project_id/job_id, e.g. evs/cn-north-4/0bec…/ff80…"),
    ("ftp/cn-north-4/p1/j1", "not a job key: 'ftp/cn-north-4/p1/j1'; the source must be one of workspace, "
                             "workspaceapp, appjob, script, evs"),
])
def test_explain_garbage_is_a_usage_error(key: str, reason: str) -> None:
    out = watcher("explain", key, "--rules", "rules/examples/features.yaml", "--events", "rules/examples/events.jsonl")
    assert out.returncode == 2
    assert out.stderr == f"watcher: error: {reason}\n"
    assert out.stdout == ""


def test_explain_a_job_key_with_no_events_still_answers() -> None:
    out = watcher("explain", "evs/cn-north-4/p1/nosuch", "--rules", "rules/examples/features.yaml",
                  "--events", "rules/examples/events.jsonl")
    assert out.returncode == 0, out.stderr


def test_a_slack_url_with_one_token_says_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text('[[notify.targets]]\nurl = "slack://onlyonetoken"\n')
    out = watcher("config", "check", str(path))
    assert out.returncode == 2
    assert out.stderr == (
        f"watcher: error: {path}:2: notify.targets[0].url: not a usable Apprise URL: a slack:// (Slack) URL that "
        "Apprise does not accept; expected slack://{token_a}/{token_b}/{token_c} or "
        "slack://{botname}@{token_a}/{token_b}/{token_c}\n"
    )


def test_an_unknown_scheme_is_named(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text('[[notify.targets]]\nurl = "nosuch://SECRETPASS123@host/x"\n')
    out = watcher("config", "check", str(path))
    assert out.returncode == 2
    assert out.stderr == (f"watcher: error: {path}:2: notify.targets[0].url: not a usable Apprise URL: unknown "
                          "scheme 'nosuch://': no Apprise service is called that\n")
