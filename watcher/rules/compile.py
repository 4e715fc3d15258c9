"""Compiling a decoded rule: ``when`` + ``from``/``to`` → one CEL program, templates, index keys.

``when`` is a one-liner if it parses as one (see :mod:`watcher.rules.oneliner`), else CEL.
``from``/``to`` are transitions, each a word or a list of words:

* a phase (``failed``), ``terminal`` (succeeded or failed), or a raw status (``FAIL``);
* ``any``: no constraint (the default when the key is absent);
* ``none`` (``from`` only): the job was first seen by this event (``prev_status`` null).

A job first seen already failed has no previous status, so it matches ``to: failed``
with ``from`` absent, and ``from: none`` when written; it never matches ``from: running``.
Everything compiles to one CEL expression, ``(when) && (from) && (to)``; the index keys
are read back from that expression, so one-liners, CEL and transitions index alike.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import cel
import jinja2

from watcher.errors import RuleError
from watcher.events import Severity
from watcher.rules import marks, oneliner, templates
from watcher.rules.expr import compile_expression
from watcher.rules.index import IndexKeys, index_keys
from watcher.rules.options import RuleOptions, compile_options
from watcher.rules.schema import SourceRule


@dataclass(frozen=True, eq=False)
class CompiledRule:
    """A rule ready to evaluate: its program, index keys, templates and routing."""

    name: str
    severity: Severity
    tags: tuple[str, ...]
    when: str  # as written
    expression: str  # the full CEL condition, one-liner and transitions included
    program: cel.Program
    keys: IndexKeys
    functions: frozenset[str]  # CEL extension functions the program calls
    title: jinja2.Template
    body: jinja2.Template
    enabled: bool = True
    description: str | None = None
    options: RuleOptions = RuleOptions()
    file: str = "<rules>"
    line: int = 1
    col: int = 1

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    @property
    def kind(self) -> str:
        return self.options.kind

    @property
    def custom_title(self) -> bool:
        return self.title is not templates.DEFAULT_TITLE_TEMPLATE

    @property
    def custom_body(self) -> bool:
        return self.body is not templates.DEFAULT_BODY_TEMPLATE


def compile_rule(rule: SourceRule) -> CompiledRule:
    """Compile one decoded rule; every problem is a RuleError at the node it is about."""
    spec = rule.spec
    options = compile_options(rule)
    condition = _when(rule)
    program, functions = _compiled_when(rule, condition)  # alone first: errors point into `when`
    parts = [] if condition == "true" else [condition]
    for key, prev in (("from", True), ("to", False)):
        value = spec.from_ if prev else spec.to
        if value is not None and (cond := transition(rule, key, value, prev=prev)) is not None:
            parts.append(cond)
    expression = condition
    if parts != [condition] and parts:
        expression = " && ".join(f"({p})" for p in parts)
        try:
            program, functions = compile_expression(expression)
        except RuleError as e:
            raise rule.error("when", e.reason) from None
    title = _template(rule, "title", spec.title, templates.DEFAULT_TITLE_TEMPLATE)
    body = _template(rule, "body", spec.body, templates.DEFAULT_BODY_TEMPLATE)
    start = rule.node.start_mark
    return CompiledRule(
        name=spec.name,
        severity=spec.severity,
        tags=spec.tags,
        when=spec.when,
        expression=expression,
        program=program,
        keys=index_keys(expression),
        functions=functions,
        title=title,
        body=body,
        enabled=spec.enabled,
        description=spec.description,
        options=options,
        file=rule.file,
        line=start.line + 1,
        col=start.column + 1,
    )


def _relocate(rule: SourceRule, key: str, err: RuleError) -> RuleError:
    """Move an error positioned inside a scalar's text to its place in the file."""
    node = rule.node_for(key)
    line, col = marks.text_position(node, err.line, err.col)
    return RuleError(err.reason, file=rule.file, line=line, col=col)


def _when(rule: SourceRule) -> str:
    """The CEL text of ``when``: a one-liner's translation, or the expression itself."""
    try:
        parsed = oneliner.parse(rule.spec.when)
    except RuleError as e:
        raise _relocate(rule, "when", e) from None
    return parsed.cel() if parsed is not None else rule.spec.when


def _compiled_when(rule: SourceRule, condition: str) -> tuple[cel.Program, frozenset[str]]:
    try:
        return compile_expression(condition)
    except RuleError as e:
        if condition != rule.spec.when:  # generated from a one-liner: point at its start
            raise rule.error("when", e.reason) from None
        raise _relocate(rule, "when", e) from None


def transition(rule: SourceRule, key: str, value: str | tuple[str, ...], *, prev: bool) -> str | None:
    """CEL for a ``from``/``to`` value, or None when it allows anything."""
    words = (value,) if isinstance(value, str) else value
    if not words:
        raise rule.error(key, f"{key}: empty list; leave '{key}' out (or write 'any') to allow any status")
    phases: list[str] = []
    statuses: list[str] = []
    first_seen = False
    for i, word in enumerate(words):
        node = marks.node_at(rule.node, f"$.{key}" if isinstance(value, str) else f"$.{key}[{i}]")
        word = word.strip()
        if word == "any":
            return None
        if word == "none" and prev:
            first_seen = True
        elif word in oneliner.PHASES:
            phases.append(word)
        elif word == "terminal":
            phases.extend(oneliner.TERMINAL)
        elif word in oneliner.ALL_STATUSES:
            statuses.append(word)
        else:
            raise marks.error_at(node, rule.file, _unknown_word(key, word, prev=prev))
    pre = "prev_" if prev else ""
    alternatives = []
    if phases:
        alternatives.append(oneliner.cel_in(f"{pre}phase", tuple(dict.fromkeys(phases))))
    if statuses:
        alternatives.append(oneliner.cel_in(f"{pre}status", tuple(dict.fromkeys(statuses))))
    if first_seen:
        alternatives.append("prev_status == null")
    return " || ".join(alternatives) if alternatives else None


def _unknown_word(key: str, word: str, *, prev: bool) -> str:
    specials = ["terminal", "any", "none"] if prev else ["terminal", "any"]
    known = [*oneliner.PHASES, *specials, *oneliner.ALL_STATUSES]
    close = difflib.get_close_matches(word, known, n=1)
    hint = f"; did you mean {close[0]!r}" if close else ""
    only = " ('none' is only for 'from')" if word == "none" else ""
    return (
        f"{key}: unknown status {word!r}{hint}{only}. Expected a phase ({', '.join(oneliner.PHASES)}), "
        f"{', '.join(specials)}, or an API status ({', '.join(oneliner.ALL_STATUSES)})"
    )


def _template(rule: SourceRule, key: str, text: str | None, default: jinja2.Template) -> jinja2.Template:
    if text is None:
        return default
    try:
        return templates.compile_template(text)
    except RuleError as e:
        raise _relocate(rule, key, e) from None
