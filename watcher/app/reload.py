"""Hot reload of rule files: a valid change takes effect at once, an invalid one is refused.

Every few seconds the worker compares the rule files' modification times and sizes with
what it loaded. On a change it compiles them all again, in a thread of its own so that the
event loop keeps serving (``/healthz`` answers during a 50,000-rule load; a rule file is at
most :data:`watcher.rules.engine.MAX_RULE_FILE_BYTES`); if that succeeds the new rules and
file silences replace the old ones, otherwise the last good rules stay in force and the
error (``file:line:col: message``) is logged once per change, counted in
``watcher_rule_reloads{result="refused"}`` and, with ``[health] notify_rule_errors`` (the
default), sent as one ``watcher-rules-refused`` alert per refused change, routed like the
self-health alerts (``[health] tags``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from watcher.errors import RuleError
from watcher.events import Alert, JobEvent, job_key

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


class _Load:
    """One load of the rule files, in a daemon thread of its own (a worker stopping mid-load
    does not wait for it)."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.result: tuple[Any, list[Any]] | None = None
        self.error: RuleError | None = None
        self.finished = threading.Event()
        threading.Thread(target=self._run, args=(list(paths),), name="watcher-rules-reload", daemon=True).start()

    def _run(self, paths: list[str]) -> None:
        from watcher.rules.engine import load_book

        try:
            self.result = load_book(paths)
        except RuleError as e:
            self.error = e
        except Exception as e:  # never let a bug here kill the thread silently: refuse the change instead
            self.error = RuleError(f"cannot load the rule files: {type(e).__name__}: {e}")
        finally:
            self.finished.set()


class RuleReloader:
    """Call :meth:`check` periodically; ``apply(ruleset, silences)`` installs a good load.

    Loading happens off the caller's thread: 50,000 rules take tens of seconds to compile, and
    the caller is the worker's event loop, which must keep answering ``/healthz``, polling and
    delivering meanwhile. :meth:`check` never blocks (unless asked to ``wait``): it starts a
    load when the files changed, and a later call installs its result (``apply`` runs on the
    caller's thread, so the rule set is swapped between two events, never during one).
    """

    def __init__(self, paths: Sequence[str], apply: Callable[[Any, list[Any]], None]) -> None:
        self.paths, self.apply = list(paths), apply
        self.loaded = snapshot(self.paths)
        self.last_error: str | None = None
        self.reloads = 0
        self.failures = 0
        self._load: _Load | None = None

    @property
    def loading(self) -> bool:
        """A load is running (its result is installed by the next :meth:`check` after it ends)."""
        return self._load is not None and not self._load.finished.is_set()

    def check(self, wait: float = 0.0) -> bool | None:
        """True: reloaded; False: a change was refused; None: nothing changed, or the load of a
        change is still running. ``wait``: seconds to wait for a load started or running now."""
        if self._load is None:
            now = snapshot(self.paths)
            if now == self.loaded:
                return None
            self.loaded = now
            log.info("rule files changed: loading them in the background; the current rules stay in force meanwhile")
            self._load = _Load(self.paths)
        if not self._load.finished.wait(wait):
            return None
        load, self._load = self._load, None
        if load.error is not None or load.result is None:
            self.failures += 1
            self.last_error = str(load.error)
            log.error("rule files changed but do not load; keeping the last good rules: %s", load.error)
            return False
        ruleset, silences = load.result
        self.apply(ruleset, silences)
        self.reloads += 1
        self.last_error = None
        log.warning("rule files reloaded: %d rule(s)", len(ruleset))
        return True


REFUSED_RULE = "watcher-rules-refused"


def refused_alert(error: str, now: datetime, tags: tuple[str, ...]) -> Alert:
    """The alert for a refused rule change; the same error gives the same key on every worker."""
    digest = hashlib.sha256(error.encode()).hexdigest()[:16]
    event = JobEvent(
        source="watcher", region="", project_id="", job_key=job_key("watcher", "", "", REFUSED_RULE),
        job_id=REFUSED_RULE, job_type=REFUSED_RULE, status="REFUSED", phase="failed", message=error,
        observed_at=now,
    )  # fmt: skip
    return Alert(
        key=f"{REFUSED_RULE}|{digest}",
        rule=REFUSED_RULE,
        severity="warning",
        tags=tags,
        title="[RULES] a rule file change was refused; the last good rules stay in force",
        body=f"{error}\nFix the file: the next valid save is applied without a restart.",
        event=event,
        fired_at=now,
        incident=f"{REFUSED_RULE}|{digest}",
        incident_kind="health",
    )
