"""The README's Configuration section names every key the config accepts, and no other.

Walks the config Structs (`watcher.config.Config`, with `watcher.notify.config`'s inside it)
field by field, and compares the dotted keys with those of the TOML blocks the README's
Configuration section shows. A key added to a Struct without a line in the README fails here.
"""

from __future__ import annotations

import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

import msgspec

from watcher.config import Config

ROOT = Path(__file__).resolve().parents[2]
#: Set by the loader, not by a user: the file the config came from.
INTERNAL = {"path"}


def _struct_of(tp: Any) -> type[msgspec.Struct] | None:
    """The Struct a field holds (itself, or the item of a tuple/list of them), else None."""
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return tp
    origin = typing.get_origin(tp)
    if origin in (tuple, list) or origin is types.UnionType:
        for arg in typing.get_args(tp):
            if (found := _struct_of(arg)) is not None:
                return found
    return None


def struct_keys(cls: type[msgspec.Struct], prefix: str = "") -> set[str]:
    hints = typing.get_type_hints(cls)
    out: set[str] = set()
    for field in msgspec.structs.fields(cls):
        if not prefix and field.name in INTERNAL:
            continue
        key = f"{prefix}{field.encode_name}"
        inner = _struct_of(hints[field.name])
        out |= struct_keys(inner, f"{key}.") if inner is not None else {key}
    return out


def toml_keys(data: Any, prefix: str = "") -> set[str]:
    out: set[str] = set()
    items = data if isinstance(data, list) else [data]
    for item in items:
        for key, value in item.items():
            dotted = f"{prefix}{key}"
            if isinstance(value, dict) and dotted not in ("cloud.endpoints", "notify.links"):  # maps: leaves here
                out |= toml_keys(value, f"{dotted}.")
            elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                out |= toml_keys(value, f"{dotted}.")
            else:
                out.add(dotted)
    return out


def readme_keys() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = re.search(r"^## Configuration\n(.*?)^## ", readme, re.M | re.S)
    assert section, "README.md has no Configuration section"
    keys: set[str] = set()
    for block in re.findall(r"```toml\n(.*?)```", section.group(1), re.S):
        keys |= toml_keys(tomllib.loads(block))
    return keys


def test_the_struct_walk_sees_nested_tables() -> None:
    keys = struct_keys(Config)
    assert {"broker.url", "watch.job_ids", "notify.targets.url", "notify.retry.budget_seconds",
            "health.heartbeat_url", "cloud.endpoints"} <= keys


def test_the_readme_names_every_config_key_and_no_other() -> None:
    code, readme = struct_keys(Config), readme_keys()
    assert sorted(code - readme) == [], "keys the code accepts that the README's Configuration section never shows"
    assert sorted(readme - code) == [], "keys the README shows that the code does not accept"
