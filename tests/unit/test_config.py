"""watcher.config: the README's config decodes; every bad config names file, key and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watcher.config import Config, check_notify_targets, load_config, parse_config
from watcher.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
FILE = "watcher.toml"


def readme_config() -> str:
    """The ```toml block of README.md's "Configuration" section: the test keeps the README true."""
    readme = (ROOT / "README.md").read_text()
    section = re.search(r"^## Configuration\n(.*?)^## ", readme, re.M | re.S)
    assert section, "README.md has no '## Configuration' section"
    block = re.search(r"```toml\n(.*?)```", section.group(1), re.S)
    assert block, "README.md's Configuration section has no ```toml block"
    return block.group(1)


def test_readme_config_is_valid_and_complete() -> None:
    cfg = parse_config(readme_config(), "README.md")
    assert cfg.path == "README.md"
    assert cfg.broker.url == "kafka://kafka-1.internal:9092"
    assert cfg.broker.partitions == 8
    assert cfg.broker.outage_buffer == 10000 and cfg.seconds(cfg.app.shutdown_grace) == 10
    assert cfg.cloud.max_concurrency == 8
    assert cfg.seconds(cfg.cloud.retry_budget) == 60
    assert cfg.seconds(cfg.poll.idle) == 60
    assert [w.source for w in cfg.watch] == ["workspace", "workspaceapp", "script", "evs", "appjob"]
    assert cfg.watch[1].job_types == ("CREATE_SERVER", "DELETE_SERVER")
    assert cfg.watch[4].api_version == "v2"
    assert cfg.rules.files == ("rules/default.yaml",)
    assert [t.tags for t in cfg.notify.targets] == [("oncall",), ("oncall", "mail")]
    assert len(cfg.targets()) == 5
    check_notify_targets(cfg, readme_config())  # Apprise can use every target URL


def test_readme_config_secrets_never_in_repr() -> None:
    cfg = parse_config(readme_config(), "README.md")
    assert "user:password" not in repr(cfg)  # the mailtos:// URL's credentials
    assert "TokenB" not in repr(cfg)


def test_empty_file_is_all_defaults() -> None:
    cfg = parse_config("", FILE)
    assert cfg == Config(path=FILE)
    assert cfg.broker.url == ""  # the embedded broker
    assert cfg.watch == ()


WATCH = '[[watch]]\nsource = "evs"\nregion = "cn-north-4"\nprojects = ["p1"]\n'

# (id, config text, fragments the message must contain, expected line or None)
BAD = [
    ("wrong type", '[broker]\npartitions = "eight"\n', ["broker.partitions", "Expected `int`, got `str`"], 2),
    ("wrong type top-level table", "broker = 1\n", ["broker", "Expected `object`, got `int`"], 1),
    ("wrong type in list", '[rules]\nfiles = [1]\n', ["rules.files[0]", "Expected `str`, got `int`"], 2),
    ("unknown top-level key", 'brokers = 1\n[broker]\nurl = ""\n', ["brokers", "unknown field `brokers`"], 1),
    ("unknown key in table", '[poll]\nfast = "5s"\nslow = "1m"\n', ["poll.slow", "unknown field `slow`"], 3),
    ("unknown key in [[watch]]", WATCH + "foo = 1\n", ["watch[0].foo", "unknown field `foo`"], 5),
    ("unknown key in 2nd [[watch]]", WATCH + "\n" + WATCH + "foo = 1\n", ["watch[1].foo", "unknown field `foo`"], 10),
    ("unknown key in notify target", '[[notify.targets]]\nurl = "json://h"\ntag = "x"\n',
     ["notify.targets[0].tag", "unknown field `tag`"], 3),
    ("bad duration", '[poll]\nfast = "5 parsecs"\n', ["poll.fast", "expected a duration like '30s'", "'5 parsecs'"], 2),
    ("bad duration in cloud", '[cloud]\nread_timeout = "soon"\n', ["cloud.read_timeout", "got 'soon'"], 2),
    ("duration of wrong type", "[poll]\nidle = 60\n", ["poll.idle", "Expected `str`, got `int`"], 2),
    ("unknown source", WATCH.replace('"evs"', '"ecs"'),
     ["watch[0].source", "unknown source 'ecs'", "expected one of workspace, workspaceapp, appjob, script, evs"], 2),
    ("unknown source in 2nd [[watch]]", WATCH + WATCH.replace('"evs"', '"ecs"'), ["watch[1].source", "'ecs'"], 6),
    ("workspaceapp without job_types", WATCH + "\n" + WATCH.replace('"evs"', '"workspaceapp"'),
     ["watch[1].job_types", "workspaceapp API requires job_type"], 6),  # the key is missing: its table's header
    ("no projects", WATCH.replace('["p1"]', "[]"), ["watch[0].projects", "at least one project"], 4),
    ("missing required key", '[[watch]]\nsource = "evs"\nprojects = ["p"]\n', ["watch[0]", "missing required field `region`"], 1),
    ("bad api_version", WATCH + 'api_version = "v3"\n', ["watch[0].api_version", "Invalid enum value 'v3'; expected 'v1' or 'v2'"], 5),
    ("zero partitions", "[broker]\npartitions = 0\n", ["broker.partitions", "must be at least 1"], 2),
    ("zero outage buffer", "[broker]\noutage_buffer = 0\n", ["broker.outage_buffer", "must be at least 1"], 2),
    ("bad shutdown grace", '[app]\nshutdown_grace = "soon"\n', ["app.shutdown_grace"], 2),
    ("unknown endpoint service", '[cloud]\nendpoints = { workspace = "http://sim:8080", ecs = "http://x" }\n',
     ["cloud.endpoints.ecs", "unknown service"], 2),
    ("retry attempts below 1", "[notify.retry]\nattempts = 0\n", ["notify.retry.attempts", "Expected `int` >= 1"], 2),
    ("invalid TOML", '[broker]\nurl = "kafka://k:9092\n', ["not valid TOML"], 2),
    ("invalid TOML at end", "[broker]\nurl = [", ["not valid TOML", "end of document"], 2),
    ("table declared twice", "[poll]\n[poll]\n", ["not valid TOML", "twice"], 2),
]


@pytest.mark.parametrize(("text", "fragments", "line"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_names_file_key_and_line(text: str, fragments: list[str], line: int | None) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, FILE)
    err = info.value
    message = str(err)
    assert err.file == FILE
    assert message.startswith(f"{FILE}:{line}: " if line else f"{FILE}: "), message
    assert err.line == line
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    if err.key:
        assert f": {err.key}: " in message


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("not-a-url", "no scheme:// in the URL"),
        ("nosuchservice://SECRETTOKEN123456/x", "unknown scheme 'nosuchservice://'"),
    ],
)
def test_bad_notify_url_names_key_not_secret(url: str, fragment: str) -> None:
    text = f'[[notify.targets]]\nurl = "json://127.0.0.1:9/ok"\n\n[[notify.targets]]\nurl = "{url}"\ntags = ["x"]\n'
    cfg = parse_config(text, FILE)  # decoding alone does not load Apprise
    with pytest.raises(ConfigError) as info:
        check_notify_targets(cfg, text)
    message = str(info.value)
    assert message.startswith(f"{FILE}:5: notify.targets[1].url: not a usable Apprise URL"), message
    assert fragment in message
    assert "SECRETTOKEN123456" not in message


def test_check_notify_targets_reads_the_file_for_the_line(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text('# notify\n\n[[notify.targets]]\nurl = "bogus"\n')
    with pytest.raises(ConfigError, match=r"w\.toml:4: notify\.targets\[0\]\.url: "):
        check_notify_targets(load_config(path))


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: cannot read config: No such file or directory"


def test_load_config_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text("[poll]\n\nfast = 5\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}:3: poll.fast: Expected `str`, got `int`"


def test_load_config_ok(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text(readme_config())
    cfg = load_config(path)
    assert cfg.path == str(path)
    assert len(cfg.watch) == 5


# -- fuzz: whatever the text, the only exception is ConfigError -----------------------------

KEYS = ["broker", "url", "partitions", "poll", "fast", "watch", "source", "projects", "job_types", "notify",
        "targets", "tags", "cloud", "endpoints", "workspace", "rules", "files", "api_version", "foo"]
VALUES = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.booleans(), st.text(max_size=12).map(repr),
    st.sampled_from(['"5s"', '"1h30m"', '"-1s"', '"evs"', '"workspaceapp"', "[]", '["p"]', "{}", "1979-05-27",
                     '{ workspace = "http://x" }', '"v1"', "[[1]]", "inf", "nan"]),
)
LINE = st.one_of(
    st.builds(lambda k, v: f"{k} = {v}", st.sampled_from(KEYS), VALUES),
    st.builds(lambda a, b: f"[{a}.{b}]", st.sampled_from(KEYS), st.sampled_from(KEYS)),
    st.sampled_from(KEYS).map(lambda k: f"[{k}]"),
    st.sampled_from(KEYS).map(lambda k: f"[[{k}]]"),
    st.sampled_from(["[[watch]]", "[[notify.targets]]", "[notify.retry]", "[poll]", "[broker]", "[cloud]", "#"]),
    st.text(max_size=20),
)
TOMLISH = st.lists(LINE, max_size=12).map("\n".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), TOMLISH))
def test_fuzz_only_config_errors(text: str) -> None:
    try:
        cfg = parse_config(text, FILE)
    except ConfigError as e:
        assert str(e).startswith(FILE)
    else:
        assert isinstance(cfg, Config)


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=5000))
def test_deeply_nested_toml_is_a_config_error(depth: int) -> None:
    with pytest.raises(ConfigError):
        parse_config("x = " + "[" * depth, FILE)


def test_surrogates_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        parse_config('[broker]\nurl = "\udcff"\n', FILE)
