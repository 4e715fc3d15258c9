"""Hot reload of rule files: a valid change takes effect at once, an invalid one is refused.

Every few seconds the worker compares the rule files' modification times and sizes with
what it loaded. On a change it compiles them all again; if that succeeds the new rules and
file silences replace the old ones, otherwise the last good rules stay in force and the
error (``file:line:col: message``) is logged once per change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from watcher.errors import RuleError

log = logging.getLogger("watcher.rules")

Snapshot = dict[str, tuple[float, int]]


def snapshot(paths: Sequence[str]) -> Snapshot:
    """mtime and size of every rule file under ``paths`` (files or directories)."""
    out: Snapshot = {}
    for p in map(Path, paths):
        files = sorted([*p.rglob("*.yaml"), *p.rglob("*.yml")]) if p.is_dir() else [p]
        for f in files:
            try:
                st = f.stat()
            except OSError:
                out[str(f)] = (-1.0, -1)
                continue
            out[str(f)] = (st.st_mtime, st.st_size)
    return out


class RuleReloader:
    """Call :meth:`check` periodically; ``apply(ruleset, silences)`` installs a good load."""

    def __init__(self, paths: Sequence[str], apply: Callable[[Any, list[Any]], None]) -> None:
        self.paths, self.apply = list(paths), apply
        self.loaded = snapshot(self.paths)
        self.last_error: str | None = None
        self.reloads = 0
        self.failures = 0

    def check(self) -> bool | None:
        """True: reloaded; False: a change was refused; None: nothing changed."""
        from watcher.rules.engine import load_book

        now = snapshot(self.paths)
        if now == self.loaded:
            return None
        self.loaded = now
        try:
            ruleset, silences = load_book(self.paths)
        except RuleError as e:
            self.failures += 1
            self.last_error = str(e)
            log.error("rule files changed but do not load; keeping the last good rules: %s", e)
            return False
        self.apply(ruleset, silences)
        self.reloads += 1
        self.last_error = None
        log.warning("rule files reloaded: %d rule(s)", len(ruleset))
        return True
