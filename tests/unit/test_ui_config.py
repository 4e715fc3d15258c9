"""The ``[ui]`` section: off by default, loopback, a port checked like every key (file, key, line)."""

from __future__ import annotations

import pytest

from watcher.config import UiConfig, parse_config
from watcher.errors import ConfigError


def test_ui_is_off_and_on_loopback_by_default() -> None:
    assert parse_config("").ui == UiConfig(enabled=False, host="127.0.0.1", port=8088)
    cfg = parse_config('[ui]\nenabled = true\nport = 0\n')
    assert (cfg.ui.enabled, cfg.ui.host, cfg.ui.port) == (True, "127.0.0.1", 0)


@pytest.mark.parametrize(("text", "fragments", "line"), [
    ("[ui]\nport = 70000\n", ["ui.port", "Expected `int` <= 65535"], 2),
    ('[ui]\nport = "http"\n', ["ui.port", "Expected `int`, got `str`"], 2),
    ('[ui]\ntoken = "x"\n', ["ui.token", "unknown field `token`"], 2),  # the token lives in the environment only
])  # fmt: skip
def test_bad_ui_keys_name_file_key_and_line(text: str, fragments: list[str], line: int) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "w.toml")
    assert all(f in str(info.value) for f in fragments), str(info.value)
    assert info.value.line == line and info.value.file == "w.toml"
