"""Rule index: which rules could match an event, found with a dozen dict lookups.

Each rule's CEL condition is read back for its top-level conjuncts of the form
``source == "evs"``, ``phase == "failed"``, ``status in ["FAIL", "FAILED"]`` and
``job_type == "createVolume"``. Those are *necessary* conditions, so a rule is filed under
every (source, state, job type) combination they allow (``None`` = any) and an event only
looks in the 2 × 3 × 2 buckets its own values name. Rules with nothing indexable (an
``||`` at the top, a glob job type only) land in the (None, None, None) bucket and are
evaluated for every event. Adding a thousand rules for other sources, statuses or job
types therefore costs an event nothing but those same twelve lookups.

Pure: the standard library only.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import product

from watcher.rules.expr import blank_strings

#: ("phase", "failed") or ("status", "FAIL").
StateKey = tuple[str, str]
BucketKey = tuple[str | None, StateKey | None, str | None]

_INDEXED = ("source", "phase", "status", "job_type")
_LIT = r'"([^"\\]*)"'
_EQ = re.compile(rf"({'|'.join(_INDEXED)})\s*==\s*{_LIT}")
_EQ_REVERSED = re.compile(rf"{_LIT}\s*==\s*({'|'.join(_INDEXED)})")
_IN = re.compile(rf"({'|'.join(_INDEXED)})\s+in\s+\[\s*({_LIT}(?:\s*,\s*{_LIT})*)\s*,?\s*\]")
_OPEN, _CLOSE = "([{", ")]}"


@dataclass(frozen=True)
class IndexKeys:
    """What a rule's condition requires; ``None`` means any value."""

    sources: frozenset[str] | None = None
    states: frozenset[StateKey] | None = None
    job_types: frozenset[str] | None = None
    impossible: bool = False  # contradictory conjuncts (phase == "a" && phase == "b")

    def buckets(self) -> Iterable[BucketKey]:
        if self.impossible:
            return []
        return product(
            sorted(self.sources) if self.sources is not None else [None],
            sorted(self.states) if self.states is not None else [None],
            sorted(self.job_types) if self.job_types is not None else [None],
        )


def index_keys(expression: str) -> IndexKeys:
    """The necessary source/state/job-type values of a CEL condition."""
    found: dict[str, frozenset[str]] = {}
    for part in conjuncts(expression):
        got = _constraint(part)
        if got is None:
            continue
        field, values = got
        found[field] = found[field] & values if field in found else values
    if any(not v for v in found.values()):
        return IndexKeys(impossible=True)
    states: frozenset[StateKey] | None = None
    if "status" in found:  # the more selective of the two when a rule names both
        states = frozenset(("status", s) for s in found["status"])
    elif "phase" in found:
        states = frozenset(("phase", p) for p in found["phase"])
    return IndexKeys(sources=found.get("source"), states=states, job_types=found.get("job_type"))


def _constraint(part: str) -> tuple[str, frozenset[str]] | None:
    if m := _EQ.fullmatch(part):
        return m.group(1), frozenset({m.group(2)})
    if m := _EQ_REVERSED.fullmatch(part):
        return m.group(2), frozenset({m.group(1)})
    if m := _IN.fullmatch(part):
        return m.group(1), frozenset(re.findall(_LIT, m.group(2)))
    return None


def conjuncts(expression: str) -> list[str]:
    """The top-level ``&&`` operands, parentheses unwrapped; ``[expression]`` when it is no conjunction."""
    text = expression.strip()
    blank = blank_strings(text)
    if _wrapped(blank):
        return conjuncts(text[1:-1])
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(blank):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif depth == 0 and (blank.startswith("||", i) or ch == "?"):
            return [text]  # a disjunction or conditional: one opaque operand
        elif depth == 0 and blank.startswith("&&", i):
            parts.append(text[start:i])
            start = i + 2
    parts.append(text[start:])
    if len(parts) == 1:
        return [text]
    return [c for p in parts for c in conjuncts(p)]


def _wrapped(blank: str) -> bool:
    """True when the whole text is one parenthesized group: ``(a && b)``, not ``(a) && (b)``."""
    if not (blank.startswith("(") and blank.endswith(")")):
        return False
    depth = 0
    for i, ch in enumerate(blank):
        depth += ch in _OPEN
        depth -= ch in _CLOSE
        if depth == 0 and i < len(blank) - 1:
            return False
    return True


class RuleIndex:
    """Positions of rules by bucket; :meth:`candidates` lists the ones an event must try."""

    def __init__(self, keys: Iterable[IndexKeys]) -> None:
        self._buckets: dict[BucketKey, list[int]] = defaultdict(list)
        for pos, k in enumerate(keys):
            for bucket in k.buckets():
                self._buckets[bucket].append(pos)
        self._buckets = dict(self._buckets)

    def candidates(self, source: str, phase: str, status: str, job_type: str) -> list[int]:
        """Rule positions, in rule order, whose index keys allow these event values."""
        hits: list[int] = []
        get = self._buckets.get
        for s in (source, None):
            for st in (("phase", phase), ("status", status), None):
                for jt in (job_type, None):
                    bucket = get((s, st, jt))
                    if bucket:
                        hits.extend(bucket)
        return sorted(set(hits)) if len(hits) > 1 else hits
