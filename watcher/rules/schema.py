"""The rule file format: msgspec Structs, and decoding YAML into them with positions.

A rule file is a mapping with ``rules``, a list of :class:`RuleSpec`, and optionally
``silences``, a list of :class:`SilenceSpec`::

    rules:
      - name: desktop-creation-failed
        when: FAILED createDesktops        # a one-liner, or a CEL expression
        notify: [webhook, mail]            # Apprise tags; empty → the default route
        severity: critical                 # critical | error | warning | info
        title: "{{ event.job_type }} failed in {{ event.project }}"
        group_by: [project_id, parent_job_id]   # one message per batch (see grouping.py)
        escalate:                          # nobody acknowledged: reach further (see incidents/)
          - {after: 15m, notify: [oncall-lead]}
      - name: desktop-creation-stuck
        when: RUNNING createDesktops
        for: 30m                           # stuck: held longer than this (see stuck.py)
        repeat: 2h
    silences:
      - match: 'project_id == "0bec…"'
        starts: 2026-11-23T08:00:00Z
        for: 2h
        comment: maintenance window

Each rule is converted on its own, so one file reports every broken rule, not just the
first. Errors are :class:`RuleError` at the offending node (``file:line:col: message``).
Durations (``for``, ``repeat``, ``within``, ``group_wait``…) are checked when compiling
(:mod:`watcher.rules.compile`), which also knows which keys combine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import yaml

from watcher.errors import RuleError
from watcher.events import Severity
from watcher.rules import marks

#: Keys whose scalar values keep the text as typed (``to: 0`` is the App job status "0").
_TEXT_KEYS = frozenset({"name", "when", "notify", "title", "body", "from", "to", "description", "group_by", "inhibits"})

#: Top-level keys of a rule file.
TOP_LEVEL = ("rules", "silences")

Duration = str | int | float

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/ -]*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_UNKNOWN = re.compile(r"Object contains unknown field `(.+)`")
_MISSING = re.compile(r"Object missing required field `(.+)`")


class BurstSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``burst: {count: 5, within: 10m, by: [project_id]}``: N matches within a window per group."""

    count: int
    within: Duration
    by: tuple[str, ...] = ()


class ShareSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``share: {min: 0.05, of: parent}``: the share of a parent's seen sub-jobs that match."""

    min: float
    of: str = "parent"


class EscalateSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One escalation step: ``{after: 15m, notify: [oncall-lead]}``, fired once if the incident is
    still unacknowledged and unresolved that long after it opened."""

    after: Duration
    notify: str | tuple[str, ...]

    @property
    def tags(self) -> tuple[str, ...]:
        return (self.notify,) if isinstance(self.notify, str) else self.notify


class SilenceSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One silence as written in a rule file: a CEL ``match`` and a time span."""

    match: str
    id: str | None = None
    starts: datetime | None = None
    ends: datetime | None = None
    for_: Duration | None = msgspec.field(default=None, name="for")
    comment: str = ""
    created_by: str = ""


class RuleSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One rule as written in a file (before compiling ``when``/``from``/``to``)."""

    name: str
    when: str
    notify: str | tuple[str, ...] = ()
    severity: Severity = "error"
    title: str | None = None
    body: str | None = None
    from_: str | tuple[str, ...] | None = msgspec.field(default=None, name="from")
    to: str | tuple[str, ...] | None = None
    enabled: bool = True
    description: str | None = None
    for_: Duration | None = msgspec.field(default=None, name="for")
    repeat: Duration | None = None
    burst: BurstSpec | None = None
    share: ShareSpec | None = None
    group_by: tuple[str, ...] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    inhibits: tuple[str, ...] = ()
    escalate: tuple[EscalateSpec, ...] = ()

    @property
    def tags(self) -> tuple[str, ...]:
        """``notify`` as a tuple: a single tag may be written as a plain string."""
        return (self.notify,) if isinstance(self.notify, str) else self.notify


@dataclass(frozen=True)
class SourceRule:
    """A decoded rule plus where it was written, so later stages can point at its nodes."""

    spec: RuleSpec
    file: str
    node: yaml.Node  # the rule's mapping node

    def node_for(self, key: str) -> yaml.Node:
        """The value node of ``key``, or the rule itself when the key is absent."""
        return marks.child(self.node, key) or self.node

    def error(self, key: str, message: str) -> RuleError:
        return marks.error_at(self.node_for(key), self.file, message)


@dataclass(frozen=True)
class SourceSilence:
    """A decoded silence plus where it was written (its position makes its default id)."""

    spec: SilenceSpec
    file: str
    node: yaml.Node

    @property
    def line(self) -> int:
        return self.node.start_mark.line + 1

    def error(self, key: str, message: str) -> RuleError:
        return marks.error_at(marks.child(self.node, key) or self.node, self.file, message)


def parse_rules(text: str, file: str) -> tuple[list[SourceRule], list[RuleError]]:
    """Decode one rule file's text: the rules that decoded, and an error for each that did not."""
    rules, _, errors = parse_file(text, file)
    return rules, errors


def parse_file(text: str, file: str) -> tuple[list[SourceRule], list[SourceSilence], list[RuleError]]:
    """Decode one rule file: its rules, its silences, and an error for each item that did not decode."""
    try:
        root = marks.compose(text, file)
    except RuleError as e:
        return [], [], [e]
    if root is None:
        return [], [], []  # an empty file holds no rules
    if not isinstance(root, yaml.MappingNode):
        return [], [], [marks.error_at(root, file, "a rule file is a mapping with a 'rules' list")]
    errors: list[RuleError] = []
    for key, _ in marks.mapping_items(root):
        if key.value not in TOP_LEVEL:
            errors.append(marks.error_at(key, file, f"unknown top-level key {key.value!r}; expected 'rules'"))
    silences = _silences(root, file, errors)
    items = marks.child(root, "rules")
    if items is None:
        if silences or marks.child(root, "silences") is not None:
            return [], silences, errors
        return [], [], errors or [marks.error_at(root, file, "missing 'rules': a list of rules")]
    if not isinstance(items, yaml.SequenceNode):
        return [], silences, [*errors, marks.error_at(items, file, "'rules' must be a list of rules")]
    rules: list[SourceRule] = []
    seen: dict[str, yaml.Node] = {}
    for item in items.value:
        try:
            rule = _decode_rule(item, file)
        except RuleError as e:
            errors.append(e)
            continue
        first = seen.setdefault(rule.spec.name, rule.node_for("name"))
        if first is not rule.node_for("name"):
            where = f"{first.start_mark.line + 1}:{first.start_mark.column + 1}"
            errors.append(rule.error("name", f"duplicate rule name {rule.spec.name!r} (first defined at line {where})"))
            continue
        rules.append(rule)
    return rules, silences, errors


def _silences(root: yaml.Node, file: str, errors: list[RuleError]) -> list[SourceSilence]:
    items = marks.child(root, "silences")
    if items is None:
        return []
    if not isinstance(items, yaml.SequenceNode):
        errors.append(marks.error_at(items, file, "'silences' must be a list of silences"))
        return []
    out = []
    for item in items.value:
        if not isinstance(item, yaml.MappingNode):
            errors.append(marks.error_at(item, file, "a silence is a mapping with at least 'match'"))
            continue
        raw = marks.to_python(item, file)
        if isinstance(raw.get("match"), str | int | float | bool):
            raw["match"] = str(marks.to_python(marks.child(item, "match"), file, raw=True))
        try:
            spec = msgspec.convert(raw, SilenceSpec)
        except msgspec.ValidationError as e:
            errors.append(_schema_error(item, file, str(e), SilenceSpec, "a silence"))
            continue
        out.append(SourceSilence(spec=spec, file=file, node=item))
    return out


def _decode_rule(node: yaml.Node, file: str) -> SourceRule:
    if not isinstance(node, yaml.MappingNode):
        raise marks.error_at(node, file, "a rule is a mapping with at least 'name' and 'when'")
    raw: dict[str, Any] = {}
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise marks.error_at(key, file, "a key must be a plain word")
        if key.value in raw:
            raise marks.error_at(key, file, f"duplicate key {key.value!r}")
        raw[key.value] = marks.to_python(value, file, raw=key.value in _TEXT_KEYS)
    try:
        spec = msgspec.convert(raw, RuleSpec)
    except msgspec.ValidationError as e:
        raise _schema_error(node, file, str(e), RuleSpec, "a rule") from None
    rule = SourceRule(spec=spec, file=file, node=node)
    if not _NAME.fullmatch(spec.name):
        raise rule.error(
            "name",
            f"invalid rule name {spec.name!r}: start with a letter or digit; then letters, digits, space, _ . : / -",
        )
    if not spec.when.strip():
        raise rule.error("when", "'when' is empty: write a one-liner (FAILED createDesktops) or a CEL expression")
    for i, tag in enumerate(spec.tags):
        if not _TAG.fullmatch(tag):
            where = (
                marks.node_at(node, f"$.notify[{i}]") if not isinstance(spec.notify, str) else rule.node_for("notify")
            )
            raise marks.error_at(where, file, f"invalid Apprise tag {tag!r}: letters, digits, _ . - only")
    return rule


def _schema_error(node: yaml.Node, file: str, text: str, struct: type = RuleSpec, what: str = "a rule") -> RuleError:
    """Turn msgspec's "message - at `$.path`" into a RuleError at the node the path names."""
    message, _, path = text.partition(" - at `")
    path = path.rstrip("`") or "$"
    target = marks.node_at(node, path)
    if m := _UNKNOWN.fullmatch(message):
        key = marks.key_node(target, m.group(1)) or target
        inner = _struct_at(struct, path)
        allowed = ", ".join(f.encode_name for f in msgspec.structs.fields(inner))
        owner = what if inner is struct else path.removeprefix("$.")
        return marks.error_at(key, file, f"unknown field {m.group(1)!r}; {owner} has: {allowed}")
    if m := _MISSING.fullmatch(message):
        noun = what.split()[-1] if path == "$" else path.removeprefix("$.")
        return marks.error_at(target, file, f"{noun} is missing required field {m.group(1)!r}")
    field = path.removeprefix("$").lstrip(".")
    return marks.error_at(target, file, f"{field}: {message}" if field else message)


def _struct_at(struct: type, path: str) -> type:
    """The nested spec struct an error path points into (``$.burst`` → BurstSpec)."""
    nested = {"burst": BurstSpec, "share": ShareSpec}
    head = path.removeprefix("$").lstrip(".").split(".")[0]
    return nested.get(head, struct) if struct is RuleSpec else struct
