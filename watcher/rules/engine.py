"""Evaluating rules: a RuleSet finds the rules an event matches and turns them into Alerts.

:func:`load_rules` reads files and directories (``*.yaml``/``*.yml``, sorted), compiles
every rule and raises the first :class:`RuleError` (``watcher rules check`` lists them
all, see :mod:`watcher.rules.check`). :meth:`RuleSet.matching` asks the index for the few
rules the event's source/status/phase/job type allow, then runs their CEL programs
against one shared activation. A program that fails on an event's data (a null field in
arithmetic, say) does not match; :attr:`RuleSet.eval_errors` counts those per rule (exported
as ``watcher_rule_eval_errors_total{rule}``), and a WARNING names the rule, at most once per
rule every :data:`WARN_EVERY` seconds.

Routing: an alert carries the rule's Apprise tags; empty tags mean the notifier's default
route. :data:`NOTIFY_TYPES` maps severity to Apprise notify types for the notifier.
Pure: nothing here does I/O except reading rule files in :func:`load_rules`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from watcher.errors import RuleError
from watcher.events import Alert, AlertKind, JobEvent, alert_key, incident_id
from watcher.rules import templates
from watcher.rules.compile import CompiledRule, compile_rule
from watcher.rules.expr import make_context
from watcher.rules.fields import event_context
from watcher.rules.index import RuleIndex
from watcher.rules.options import check_inhibits
from watcher.rules.schema import SourceRule, SourceSilence, parse_file
from watcher.rules.silence import Silence, silence_from_spec

log = logging.getLogger(__name__)

#: Severity → Apprise NotifyType value (strings, so this module needs no Apprise import).
NOTIFY_TYPES: dict[str, str] = {"critical": "failure", "error": "failure", "warning": "warning", "info": "info"}

RULE_SUFFIXES = (".yaml", ".yml")
#: The largest rule file read (about 90,000 one-line rules): YAML of unbounded size would hold
#: a worker's memory and a reload's CPU hostage. Split bigger rule sets into several files.
MAX_RULE_FILE_BYTES = 4 * 1024 * 1024
#: Seconds between two WARNING lines about one rule's evaluation errors.
WARN_EVERY = 60.0


class RuleSet:
    """Compiled, enabled rules plus their index; evaluation is a pure function of the event."""

    def __init__(self, rules: Iterable[CompiledRule], clock: Callable[[], float] = time.monotonic) -> None:
        self.rules: tuple[CompiledRule, ...] = tuple(r for r in rules if r.enabled)
        self._index = RuleIndex(r.keys for r in self.rules)
        self._functions = frozenset().union(*(r.functions for r in self.rules))
        self.eval_errors: Counter[str] = Counter()
        self._clock = clock
        self._warned: dict[str, tuple[float, int]] = {}  # rule -> (when last warned, errors since)

    def __len__(self) -> int:
        return len(self.rules)

    def candidates(self, event: JobEvent) -> list[CompiledRule]:
        """The rules the index cannot rule out for ``event`` (a superset of the matches)."""
        positions = self._index.candidates(event.source, event.phase, event.status, event.job_type)
        return [self.rules[i] for i in positions]

    def matching(self, event: JobEvent) -> list[CompiledRule]:
        """The rules whose condition holds for ``event``, in file order."""
        candidates = self.candidates(event)
        if not candidates:
            return []
        ctx = make_context(event_context(event), self._functions)
        matched = []
        for rule in candidates:
            try:
                result = rule.program.execute(ctx)
            except Exception as e:  # data-dependent: this event does not match
                self._eval_error(rule, event, e)
                continue
            if result is True:
                matched.append(rule)
        return matched

    def _eval_error(self, rule: CompiledRule, event: JobEvent, e: Exception) -> None:
        """Count it (``watcher_rule_eval_errors_total{rule}``) and say so: one WARNING per rule
        per :data:`WARN_EVERY` seconds, with how many more there were meanwhile."""
        self.eval_errors[rule.name] += 1
        now = self._clock()
        last, held = self._warned.get(rule.name, (-WARN_EVERY, 0))
        if now - last < WARN_EVERY:
            self._warned[rule.name] = (last, held + 1)
            return
        self._warned[rule.name] = (now, 0)
        more = f"; {held} more since the last warning" if held else ""
        reason = str(e).split(". ")[0].rstrip(".") or type(e).__name__
        log.warning("rule %s (%s) could not be evaluated on %s, so it did not match: %s%s", rule.name,
                    rule.location, event.job_key, reason, more)

    def evaluate(self, event: JobEvent, now: datetime) -> list[Alert]:
        """One firing Alert per matching *event* rule (stuck, burst and share rules fire elsewhere)."""
        return [make_alert(r, event, now) for r in self.matching(event) if r.kind == "event"]


def make_alert(
    rule: CompiledRule,
    event: JobEvent,
    now: datetime,
    *,
    key: str | None = None,
    kind: AlertKind = "firing",
    count: int = 1,
    title: str | None = None,
    body: str | None = None,
    extra: dict[str, Any] | None = None,
    incident: str | None = None,
) -> Alert:
    """Render ``rule``'s alert for ``event``. A stage's own ``title``/``body`` (stuck, burst…)
    replace the default templates, never a rule's own; ``extra`` fills the ``alert`` variable.

    The alert names its incident: by default the rule and the event's subject (a job with its
    sub-jobs is one incident); bursts and shares pass their episode's own ``incident``."""
    variables = {
        "event": event_context(event),
        "rule": templates.rule_vars(rule.name, rule.severity, rule.tags, rule.description),
        "alert": templates.alert_vars(kind, count, **(extra or {})),
    }
    if title is None or rule.custom_title:
        title = templates.render(rule.title, variables, templates.TITLE_MAX * 4, templates.DEFAULT_TITLE_TEMPLATE)
    default_body = body is None and not rule.custom_body
    if body is None or rule.custom_body:
        body = templates.render(rule.body, variables, templates.BODY_MAX, templates.DEFAULT_BODY_TEMPLATE)
    return Alert(
        key=key or alert_key(rule.name, event),
        rule=rule.name,
        kind=kind,
        severity=rule.severity,
        tags=rule.tags,
        title=templates.clean(" ".join(title.split()), templates.TITLE_MAX),
        body=templates.clean(body, templates.BODY_MAX),
        event=event,
        count=count,
        fired_at=now,
        default_body=default_body,
        incident=incident or incident_id(rule.name, event.incident_subject),
        incident_kind=_INCIDENT_KIND.get(rule.kind, "job"),
    )


#: A rule's kind → the kind of incident its alerts are about (grouped alerts become "group").
_INCIDENT_KIND = {"event": "job", "stuck": "stuck", "burst": "burst", "share": "share"}


def rule_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories to their ``*.yaml``/``*.yml`` files (sorted); keep files as given."""
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix in RULE_SUFFIXES and p.is_file()))
        else:
            out.append(path)
    return out


def read_rules(path: Path) -> tuple[list[SourceRule], list[RuleError]]:
    """Decode one file's rules; unreadable files are a RuleError too."""
    rules, _, errors = read_file(path)
    return rules, errors


def read_file(path: Path) -> tuple[list[SourceRule], list[SourceSilence], list[RuleError]]:
    """Decode one file's rules and silences; unreadable and oversized files are a RuleError too."""
    try:
        size = path.stat().st_size
        if size > MAX_RULE_FILE_BYTES:
            return [], [], [RuleError(f"rule file of {size:,} bytes; the limit is {MAX_RULE_FILE_BYTES:,} (4 MiB): "
                                      "split it into several files", file=str(path))]
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        before = e.object[: e.start]
        line, col = before.count(b"\n") + 1, e.start - (before.rfind(b"\n") + 1) + 1
        return [], [], [RuleError(f"not UTF-8 text: {e.reason}", file=str(path), line=line, col=col)]
    except OSError as e:
        return [], [], [RuleError(f"cannot read rule file: {e.strerror or e}", file=str(path))]
    return parse_file(text, str(path))


def compile_all(paths: Iterable[str | Path]) -> tuple[list[CompiledRule], list[RuleError]]:
    """Compile every rule of every file; rule names must be unique across files."""
    compiled, _, errors = compile_book(paths)
    return compiled, errors


def compile_book(paths: Iterable[str | Path]) -> tuple[list[CompiledRule], list[Silence], list[RuleError]]:
    """Compile every rule and silence of every file; ``inhibits`` may name rules of any file."""
    compiled: list[CompiledRule] = []
    silences: list[Silence] = []
    errors: list[RuleError] = []
    names: dict[str, CompiledRule] = {}
    sources: list[SourceRule] = []
    for path in rule_files(paths):
        decoded, file_silences, file_errors = read_file(path)
        errors.extend(file_errors)
        for item in file_silences:
            try:
                silences.append(silence_from_spec(item))
            except RuleError as e:
                errors.append(e)
        for rule in decoded:
            try:
                c = compile_rule(rule)
            except RuleError as e:
                errors.append(e)
                continue
            if (first := names.setdefault(c.name, c)) is not c:
                errors.append(rule.error("name", f"duplicate rule name {c.name!r} (first defined at {first.location})"))
                continue
            compiled.append(c)
            sources.append(rule)
    known = set(names)
    for rule in sources:
        try:
            check_inhibits(rule, known)
        except RuleError as e:
            errors.append(e)
    return compiled, silences, errors


def load_rules(paths: Sequence[str | Path] | str | Path) -> RuleSet:
    """Load rule files/directories into a RuleSet; raises the first RuleError found."""
    if isinstance(paths, str | Path):
        paths = [paths]
    compiled, errors = compile_all(paths)
    if errors:
        raise errors[0]
    return RuleSet(compiled)


def load_book(paths: Sequence[str | Path] | str | Path) -> tuple[RuleSet, list[Silence]]:
    """Load rules and file silences; raises the first RuleError found."""
    if isinstance(paths, str | Path):
        paths = [paths]
    compiled, silences, errors = compile_book(paths)
    if errors:
        raise errors[0]
    return RuleSet(compiled), silences
