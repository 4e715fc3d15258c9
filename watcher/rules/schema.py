"""The rule file format: msgspec Structs, and decoding YAML into them with positions.

A rule file is a mapping with one key, ``rules``, a list of :class:`RuleSpec`::

    rules:
      - name: desktop-creation-failed
        when: FAILED createDesktops        # a one-liner, or a CEL expression
        notify: [webhook, mail]            # Apprise tags; empty → the default route
        severity: critical                 # critical | error | warning | info
        title: "{{ event.job_type }} failed in {{ event.project }}"

Each rule is converted on its own, so one file reports every broken rule, not just the
first. Errors are :class:`RuleError` at the offending node (``file:line:col: message``).
Fields reserved for later rule kinds (``for``, ``repeat``, ``group_by``) are declared so
the struct stays open, and refused with "not supported yet" until they are implemented.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec
import yaml

from watcher.errors import RuleError
from watcher.events import Severity
from watcher.rules import marks

#: Keys whose scalar values keep the text as typed (``to: 0`` is the App job status "0").
_TEXT_KEYS = frozenset({"name", "when", "notify", "title", "body", "from", "to", "description"})

#: Reserved keys → the later feature that will give them meaning.
RESERVED: dict[str, str] = {
    "for": "stuck-job timers",
    "repeat": "repeat intervals",
    "group_by": "grouping",
}

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/ -]*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_UNKNOWN = re.compile(r"Object contains unknown field `(.+)`")
_MISSING = re.compile(r"Object missing required field `(.+)`")


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
    # Reserved (see RESERVED): typed loosely so any value reaches the "not supported" check.
    for_: Any = msgspec.field(default=None, name="for")
    repeat: Any = None
    group_by: Any = None

    @property
    def tags(self) -> tuple[str, ...]:
        """``notify`` as a tuple: a single tag may be written as a plain string."""
        return (self.notify,) if isinstance(self.notify, str) else self.notify


class RuleFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    rules: list[RuleSpec] = msgspec.field(default_factory=list)


_FIELDS: tuple[str, ...] = tuple(
    f.encode_name for f in msgspec.structs.fields(RuleSpec) if f.encode_name not in RESERVED
)


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


def parse_rules(text: str, file: str) -> tuple[list[SourceRule], list[RuleError]]:
    """Decode one rule file's text: the rules that decoded, and an error for each that did not."""
    try:
        root = marks.compose(text, file)
    except RuleError as e:
        return [], [e]
    if root is None:
        return [], []  # an empty file holds no rules
    if not isinstance(root, yaml.MappingNode):
        return [], [marks.error_at(root, file, "a rule file is a mapping with a 'rules' list")]
    errors: list[RuleError] = []
    for key, _ in marks.mapping_items(root):
        if key.value != "rules":
            errors.append(marks.error_at(key, file, f"unknown top-level key {key.value!r}; expected 'rules'"))
    items = marks.child(root, "rules")
    if items is None:
        return [], errors or [marks.error_at(root, file, "missing 'rules': a list of rules")]
    if not isinstance(items, yaml.SequenceNode):
        return [], [*errors, marks.error_at(items, file, "'rules' must be a list of rules")]
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
    return rules, errors


def _decode_rule(node: yaml.Node, file: str) -> SourceRule:
    if not isinstance(node, yaml.MappingNode):
        raise marks.error_at(node, file, "a rule is a mapping with at least 'name' and 'when'")
    for key, _ in marks.mapping_items(node):
        if key.value in RESERVED:
            what = RESERVED[key.value]
            raise marks.error_at(key, file, f"{key.value!r} is reserved for {what} and not supported yet")
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
        raise _schema_error(node, file, str(e)) from None
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


def _schema_error(node: yaml.Node, file: str, text: str) -> RuleError:
    """Turn msgspec's "message - at `$.path`" into a RuleError at the node the path names."""
    message, _, path = text.partition(" - at `")
    path = path.rstrip("`") or "$"
    target = marks.node_at(node, path)
    if m := _UNKNOWN.fullmatch(message):
        key = marks.key_node(target, m.group(1)) or target
        allowed = ", ".join(_FIELDS)
        return marks.error_at(key, file, f"unknown field {m.group(1)!r}; a rule has: {allowed}")
    if m := _MISSING.fullmatch(message):
        return marks.error_at(target, file, f"rule is missing required field {m.group(1)!r}")
    field = path.removeprefix("$").lstrip(".")
    return marks.error_at(target, file, f"{field}: {message}" if field else message)
