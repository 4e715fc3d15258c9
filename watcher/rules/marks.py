"""YAML with positions: compose a rule file into nodes, convert them, point errors at them.

PyYAML's ``compose`` keeps a ``start_mark`` (0-based line/column) on every node, which a
plain ``safe_load`` throws away. Rule files are composed once; every later error (schema,
one-liner, CEL, template) is raised as :class:`RuleError` at the node it is about, so a
user reads ``rules/x.yaml:12:11: unknown status 'FIALED'`` instead of a Python traceback.

Pure: imports PyYAML and the standard library only.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from watcher.errors import RuleError

#: Converting more nodes than this means an alias bomb (or a file nobody writes by hand).
MAX_NODES = 200_000

_NULL_TAG = "tag:yaml.org,2002:null"
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def compose(text: str, file: str) -> yaml.Node | None:
    """Compose one YAML document; any syntax error becomes a RuleError at its mark."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        message = ", ".join(p for p in (e.context, e.problem) if p) or "invalid YAML"
        if e.problem == "mapping values are not allowed here":
            message += " (quote a value that contains ': ', e.g. when: \"evs: FAIL *\")"
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise RuleError(f"YAML syntax error: {message}", file=file, line=line, col=col) from None
    except yaml.reader.ReaderError as e:
        line, col = offset_position(text, e.position)
        raise RuleError(f"YAML syntax error: {e.reason}", file=file, line=line, col=col) from None
    except (yaml.YAMLError, RecursionError) as e:
        raise RuleError(f"YAML error: {e}", file=file) from None


def offset_position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, col) of a character offset in ``text``."""
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def error_at(node: yaml.Node, file: str, message: str) -> RuleError:
    """A RuleError located at the start of ``node``."""
    return RuleError(message, file=file, line=node.start_mark.line + 1, col=node.start_mark.column + 1)


def to_python(node: yaml.Node, file: str, *, raw: bool = False) -> Any:
    """Convert a node tree to plain Python (dict/list/scalars) for ``msgspec.convert``.

    ``raw`` keeps scalars as the text the user typed (``from: 0`` is the App job status
    ``"0"``, not the integer). Duplicate keys, cycles and alias bombs are RuleErrors.
    """
    return _Converter(file).convert(node, raw)


class _Converter:
    def __init__(self, file: str) -> None:
        self.file = file
        self.count = 0
        self.active: set[int] = set()
        self.constructor = SafeConstructor()

    def convert(self, node: yaml.Node, raw: bool) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise error_at(node, self.file, f"document too large (more than {MAX_NODES} values)")
        if id(node) in self.active:
            raise error_at(node, self.file, "recursive alias: a value contains itself")
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, raw)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.convert(item, raw) for item in node.value]
            return self.mapping(node, raw)
        finally:
            self.active.discard(id(node))

    def scalar(self, node: yaml.ScalarNode, raw: bool) -> Any:
        if raw and node.tag != _NULL_TAG:
            return node.value
        try:
            return self.constructor.construct_object(node, deep=True)
        except Exception as e:  # a bad timestamp, an unknown !tag, ...
            raise error_at(node, self.file, f"invalid value {node.value!r}: {e}") from None

    def mapping(self, node: yaml.Node, raw: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise error_at(key_node, self.file, "a key must be a plain word")
            key = key_node.value
            if key in out:
                raise error_at(key_node, self.file, f"duplicate key {key!r}")
            out[key] = self.convert(value_node, raw)
        return out


def mapping_items(node: yaml.Node) -> list[tuple[yaml.ScalarNode, yaml.Node]]:
    """The (key, value) node pairs of a mapping node whose keys are scalars."""
    if not isinstance(node, yaml.MappingNode):
        return []
    return [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)]


def child(node: yaml.Node, key: str) -> yaml.Node | None:
    """The value node under ``key`` of a mapping node, or None."""
    for k, v in mapping_items(node):
        if k.value == key:
            return v
    return None


def key_node(node: yaml.Node, key: str) -> yaml.Node | None:
    """The key node ``key`` of a mapping node, or None."""
    for k, _ in mapping_items(node):
        if k.value == key:
            return k
    return None


def node_at(root: yaml.Node, path: str) -> yaml.Node:
    """The deepest node a msgspec error path (``$.rules[2].notify``) reaches from ``root``."""
    node = root
    for name, index in _PATH_PART.findall(path.removeprefix("$")):
        if name:
            nxt = child(node, name)
        elif isinstance(node, yaml.SequenceNode) and int(index) < len(node.value):
            nxt = node.value[int(index)]
        else:
            nxt = None
        if nxt is None:
            break
        node = nxt
    return node


def text_position(node: yaml.Node, line: int, col: int) -> tuple[int, int]:
    """1-based file (line, col) of position (line, col) inside a scalar's text.

    Exact for one-line plain and quoted scalars and for literal blocks (``|``); other
    multi-line styles fold lines, so they fall back to the node's start.
    """
    start = node.start_mark
    style = getattr(node, "style", None)
    if style in ("|", ">"):
        indent = _block_indent(start)
        if indent is not None and style == "|":
            return start.line + 1 + line, indent + col
        return start.line + 1, start.column + 1
    if line == 1:  # the first line of a flow scalar starts where the node does
        quote = 1 if style in ("'", '"') else 0
        return start.line + 1, start.column + quote + col
    return start.line + 1, start.column + 1


def _block_indent(mark: yaml.Mark) -> int | None:
    """Indentation of a block scalar's first content line (from the composed buffer)."""
    buffer = mark.buffer
    if not isinstance(buffer, str):
        return None
    lines = buffer[mark.pointer :].split("\n")[1:]
    for text in lines:
        if text.strip():
            return len(text) - len(text.lstrip(" "))
    return None
