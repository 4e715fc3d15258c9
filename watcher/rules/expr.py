"""CEL expressions: compile one, and refuse at load time what would only fail per event.

The CEL library (``common-expression-language``, cel-rust) parses at compile time but
resolves names only while evaluating, so ``phase == "failed" && stauts == "FAIL"`` would
compile and then never fire. Its programs do report the identifiers and functions they
reference, so unknown fields and functions are refused statically here; unknown keys of
the ``entities``/``counts`` maps by a scan of the text; anything left is caught by
evaluating once against a fully populated sample event (which also checks the result is a
boolean). The library has no type checker, so an expression that could fail on types
(ordering, arithmetic, functions) is also evaluated on fully populated events of every
source and status word: a TypeError there (``phase > 5``, ``duration_seconds + 1``) means it
cannot be well-typed over the event schema, whichever event comes, and is refused; errors
that depend on the data (a null field, a missing key) are left to evaluation, which counts
them per rule. Errors are RuleError with ``line``/``col`` 1-based within the expression text.

Pure: imports the CEL library and the standard library.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any

import cel
from cel.stdlib import EXTENSIONS

from watcher.errors import RuleError
from watcher.rules.fields import FIELDS, MAP_KEYS, event_context, sample_event

#: Functions cel-rust ships natively (receiver-style or global).
NATIVE_FUNCTIONS = frozenset({
    "size", "contains", "startsWith", "endsWith", "matches", "int", "uint", "double", "string",
    "bytes", "timestamp", "duration", "type", "dyn", "getFullYear", "getMonth", "getDayOfYear",
    "getDayOfMonth", "getDate", "getDayOfWeek", "getHours", "getMinutes", "getSeconds",
    "getMilliseconds", "of", "none", "hasValue", "value", "orValue", "or",
})  # fmt: skip

#: Pure-Python cel-go style extensions offered to rules (registered only when used).
EXTENSION_FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: fn
    for lib in ("core", "strings", "lists")
    for name, fn in EXTENSIONS[lib].items()
    if "." not in name and name != "contains"  # keep the native string contains()
}

#: Names that are namespaces, not fields (``optional.of(x)``).
NAMESPACES = frozenset({"optional"})

_ERROR = re.compile(r"<input>:(\d+):(\d+): (?:Syntax error: )?(.*)")
_MACRO_VAR = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_MAP_KEY = re.compile(r"(?<![\w.])(entities|counts)\s*\.\s*([A-Za-z_]\w*)(?!\s*\()")
_STRING = re.compile(r"""[rRbB]{0,2}('''|\"\"\"|'|")""")


def compile_expression(text: str, extra: dict[str, Any] | None = None) -> tuple[cel.Program, frozenset[str]]:
    """Compile and check ``text``; returns the program and the extension functions it uses.

    ``extra`` names more variables than an event's fields (a silence also sees ``rule``),
    each with a sample value for the load-time check.
    """
    names = (*FIELDS, *extra) if extra else FIELDS
    try:
        program = cel.compile(text)
    except ValueError as e:
        raise _syntax_error(str(e)) from None
    except Exception as e:  # the binding raises other types for odd input; never leak them
        raise RuleError(f"invalid expression: {e}") from None
    blank = blank_strings(text)
    bound = set(_MACRO_VAR.findall(blank))
    for name in program.variables():
        if name not in names and name not in NAMESPACES and name not in bound:
            raise _name_error(text, blank, name, "field", names, rf"(?<![\w.]){re.escape(name)}\b")
    used = set()
    for name in program.functions():
        if name[0] in "_@!" or name in NATIVE_FUNCTIONS:
            continue
        if name not in EXTENSION_FUNCTIONS:
            known = sorted(NATIVE_FUNCTIONS | EXTENSION_FUNCTIONS.keys())
            raise _name_error(text, blank, name, "function", known, rf"\b{re.escape(name)}\s*\(")
        used.add(name)
    for m in _MAP_KEY.finditer(blank):
        field, key = m.groups()
        if key not in MAP_KEYS[field] and field not in bound:
            err = _name_error(text, blank, key, f"{field} key", MAP_KEYS[field], "")
            raise _at(text, m.start(2), err.reason)
    _check_on_sample(program, frozenset(used), {**_SAMPLE, **extra} if extra else _SAMPLE)
    return program, frozenset(used)


def make_context(variables: dict[str, Any], functions: frozenset[str]) -> cel.Context:
    """A CEL activation with ``variables`` and only the extension functions rules use."""
    ctx = cel.Context(variables=variables)
    for name in functions:
        ctx.add_function(name, EXTENSION_FUNCTIONS[name])
    return ctx


_SAMPLE: dict[str, Any] = event_context(sample_event())


#: Operators that cannot fail on values of the right types whatever those are (CEL equality
#: is defined across types): an expression using only these needs no type check.
_TYPE_SAFE = frozenset({"_==_", "_!=_", "_&&_", "_||_", "!_", "@in", "_?_:_", "matches", "startsWith",
                        "endsWith", "contains"})
_PHASE_OF = {"FAILED": "failed", "FAIL": "failed", "0": "failed", "ABNORMAL": "failed", "SUCCESS": "succeeded",
             "FINISH": "succeeded", "1": "succeeded", "RUNNING": "running", "2": "running", "ROLLBACK": "running",
             "ABORTING": "running", "WAITING": "pending", "INIT": "pending", "3": "pending", "VANISHED": "other"}


def _typed_samples() -> list[dict[str, Any]]:
    """Fully populated events, one per source and status word: every field holds a value of
    its schema type (no nulls), so an evaluation that raises TypeError is the expression's
    fault, never the data's."""
    from watcher.rules.oneliner import COMMON_STATUSES, STATUSES

    out = []
    for source, statuses in STATUSES.items():
        words = (*statuses, *COMMON_STATUSES)
        for prev, status in zip((words[-1], *words), words, strict=False):
            out.append({**_SAMPLE, "source": source, "status": status, "phase": _PHASE_OF.get(status, "other"),
                        "prev_status": prev, "prev_phase": _PHASE_OF.get(prev, "other"),
                        "change": "vanished" if status == "VANISHED" else "changed"})
    return out


def _check_on_sample(program: cel.Program, functions: frozenset[str], sample: dict[str, Any]) -> None:
    try:
        result = program.execute(make_context(sample, functions))
    except RuntimeError as e:
        if "Undefined variable or function" in str(e):
            raise RuleError(f"unknown name in expression: {str(e).split('. Check')[0]}") from None
        return  # a runtime error on sample data (e.g. a regex that fails) may not recur
    except TypeError as e:
        raise _type_error(e) from None
    except Exception:
        return  # data-dependent (a missing map key, a division by zero): evaluation treats it as no match
    if not isinstance(result, bool):
        raise RuleError(f"the expression must be true or false, but it gives a {type(result).__name__}")
    if set(program.functions()) - _TYPE_SAFE and sample is _SAMPLE:
        # The one sample took one branch of each && / || / ?: — try every status of every source.
        for typed in _TYPED_SAMPLES:
            try:
                program.execute(make_context(typed, functions))
            except TypeError as e:
                raise _type_error(e) from None
            except Exception:
                continue


def _type_error(e: TypeError) -> RuleError:
    """The library's message, first sentence: which operation has no overload for which types."""
    first = str(e).split(". ")[0].rstrip(".")
    return RuleError(f"the expression is not well-typed over the event fields: {first} (see the field types in "
                     "`watcher.rules.fields`; convert with int(), double() or string())")


def _syntax_error(message: str) -> RuleError:
    m = _ERROR.search(message)
    if not m:
        return RuleError(f"invalid expression: {message}")
    detail = m.group(3).strip()
    return RuleError(f"invalid expression: {detail}", line=int(m.group(1)), col=int(m.group(2)))


def _name_error(text: str, blank: str, name: str, what: str, known: Any, pattern: str) -> RuleError:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    message = f"unknown {what} {name!r}{hint} (known: {', '.join(known)})"
    found = re.search(pattern, blank) if pattern else None
    return _at(text, found.start() if found else 0, message)


def _at(text: str, offset: int, message: str) -> RuleError:
    before = text[:offset]
    return RuleError(message, line=before.count("\n") + 1, col=offset - (before.rfind("\n") + 1) + 1)


def blank_strings(text: str) -> str:
    """``text`` with the inside of every string literal replaced by spaces (same offsets)."""
    out, i = list(text), 0
    while (m := _STRING.search(text, i)) is not None:
        quote, raw = m.group(1), "r" in m.group(0).lower()
        j = m.end()
        while j < len(text) and not text.startswith(quote, j):
            j += 2 if (text[j] == "\\" and not raw) else 1
        for k in range(m.end(), min(j, len(text))):
            if out[k] != "\n":
                out[k] = " "
        i = j + len(quote)
    return "".join(out)


_TYPED_SAMPLES = _typed_samples()
