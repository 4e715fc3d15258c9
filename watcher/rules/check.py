"""``watcher rules check FILE...``: every problem in every rule file, not just the first.

The CLI calls :func:`check_files`, prints each error (already ``file:line:col: message``)
to stderr, prints a summary line (:func:`run` does both) and exits with :func:`exit_code`:

* ``0`` every file decoded and every rule compiled;
* ``1`` at least one error (YAML, schema, one-liner, CEL, template, duplicate name);
* ``2`` usage: no paths given, or a path that does not exist.

Usage errors are reported as RuleErrors too (at ``path:1:1``), so callers print one list.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from watcher.errors import RuleError
from watcher.rules.compile import CompiledRule
from watcher.rules.engine import compile_all, rule_files

EXIT_OK = 0
EXIT_ERRORS = 1
EXIT_USAGE = 2


def check_files(paths: Sequence[str | Path]) -> list[RuleError]:
    """Compile every rule in ``paths`` (files or directories) and return all errors, in file order."""
    return _check(paths)[0]


def check_book(paths: Sequence[str | Path]) -> tuple[list[CompiledRule], list[RuleError], int]:
    """(the rules that compiled, every error in file order, the number of files checked)."""
    missing = [RuleError("no such file or directory", file=str(p)) for p in paths if not Path(p).exists()]
    present = [p for p in paths if Path(p).exists()]
    rules, errors = compile_all(present)
    order = {str(f): i for i, f in enumerate(rule_files(present))}
    errors.sort(key=lambda e: (order.get(e.file, len(order)), e.line, e.col))
    return rules, missing + errors, len(order)


def _check(paths: Sequence[str | Path]) -> tuple[list[RuleError], int, int]:
    """(errors, files checked, rules compiled)."""
    rules, errors, files = check_book(paths)
    return errors, files, len(rules)


def exit_code(paths: Sequence[str | Path], errors: Sequence[RuleError]) -> int:
    """The process exit status for a check of ``paths`` that found ``errors``."""
    if not paths or any(not Path(p).exists() for p in paths):
        return EXIT_USAGE
    return EXIT_ERRORS if errors else EXIT_OK


def run(paths: Sequence[str | Path]) -> tuple[int, list[str]]:
    """For the CLI: (exit code, lines to print: each error, then a one-line summary)."""
    if not paths:
        return EXIT_USAGE, ["usage: watcher rules check FILE_OR_DIR..."]
    errors, files, rules = _check(paths)
    lines = [str(e) for e in errors]
    if errors:
        lines.append(f"{len(errors)} error(s) in {files} file(s)")
    else:
        lines.append(f"ok: {rules} rule(s) in {files} file(s)")
    return exit_code(paths, errors), lines
