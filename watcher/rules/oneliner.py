"""One-liner rule conditions: ``[source:] STATUS [JOB_TYPE_GLOB]`` → a CEL expression.

Forms (from the rules v1 issue)::

    FAILED createDesktops     raw status + exact job type
    FAILED                    any job type
    FAILED create*            a job-type glob (* ? [abc] [!abc], case-sensitive)
    FAIL createVolume         each API's own word (EVS says FAIL)
    evs: FAIL *               a source qualifier; * is any job type
    failed createDesktops     a normalized phase: FAILED, FAIL, App job "0", a script task
                              with failures all have phase "failed"

A lower-case phase word (pending, running, succeeded, failed, other) matches ``phase``;
``terminal`` matches succeeded or failed; ``*`` matches any status; any other word is the
API's raw status and must be one of the words the APIs send (a typo would otherwise make
a rule that silently never fires). A one-liner compiles to the same CEL every rule uses.

Pure: the standard library only. Errors are RuleError whose ``col`` is 1-based in the text.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from watcher.errors import RuleError
from watcher.events import SOURCES

PHASES: tuple[str, ...] = ("pending", "running", "succeeded", "failed", "other")
TERMINAL: tuple[str, ...] = ("succeeded", "failed")

_APP_SUB_JOB = ("WAITING", "RUNNING", "SUCCESS", "FAILED", "ABNORMAL", "ROLLBACK", "ABORTING")

#: Raw status words per source (huawei-job-apis.md §0); the App job v1 integers as text.
STATUSES: dict[str, tuple[str, ...]] = {
    "workspace": ("WAITING", "RUNNING", "SUCCESS", "FAILED"),
    "workspaceapp": _APP_SUB_JOB,
    "appjob": ("0", "1", "2", "3", *_APP_SUB_JOB),
    "script": ("INIT", "RUNNING", "FINISH", "FAILED"),
    "evs": ("INIT", "RUNNING", "SUCCESS", "FAIL"),
}
#: Statuses the poller itself produces for any source.
COMMON_STATUSES: tuple[str, ...] = ("VANISHED",)
ALL_STATUSES: tuple[str, ...] = tuple(dict.fromkeys(s for v in STATUSES.values() for s in v)) + COMMON_STATUSES

# Only these characters: anything else (quotes, operators, parentheses) means CEL.
_SHAPE = re.compile(r"[A-Za-z0-9_\s:*?\[\]!.\-]*")
_TOKEN = re.compile(r"\S+")
_WORD = re.compile(r"[A-Za-z0-9_]+")
_GLOB = re.compile(r"[A-Za-z0-9_.\-*?\[\]!]+")
_CEL_LITERALS = frozenset({"true", "false", "null"})
FORM = "[source:] STATUS [JOB_TYPE_GLOB]"


@dataclass(frozen=True)
class OneLiner:
    """A parsed one-liner; ``phase``/``status``/``job_type`` None mean "any"."""

    source: str | None = None
    phase: tuple[str, ...] | None = None
    status: str | None = None
    job_type: str | None = None  # exact name, or a glob when ``glob`` is True
    glob: bool = False

    def cel(self) -> str:
        """The CEL expression this one-liner means (``true`` when it matches everything)."""
        parts: list[str] = []
        if self.source:
            parts.append(f'source == "{self.source}"')
        if self.phase:
            parts.append(cel_in("phase", self.phase))
        if self.status:
            parts.append(f'status == "{self.status}"')
        if self.job_type is not None:
            if self.glob:
                parts.append(f'job_type.matches(r"{glob_regex(self.job_type)}")')
            else:
                parts.append(f'job_type == "{self.job_type}"')
        return " && ".join(parts) or "true"


def cel_in(field: str, values: tuple[str, ...]) -> str:
    """CEL for ``field`` equal to one of ``values`` (plain words: no quoting needed)."""
    if len(values) == 1:
        return f'{field} == "{values[0]}"'
    quoted = ", ".join(f'"{v}"' for v in values)
    return f"{field} in [{quoted}]"


def looks_like_oneliner(text: str) -> bool:
    """True when ``text`` is in the one-liner alphabet (so it is not a CEL expression)."""
    return bool(text.strip()) and text.strip() not in _CEL_LITERALS and _SHAPE.fullmatch(text) is not None


def parse(text: str) -> OneLiner | None:
    """Parse a one-liner; None if ``text`` is not one (then it is CEL). Bad one-liners raise."""
    if not looks_like_oneliner(text):
        return None
    tokens = [(m.group(), m.start() + 1) for m in _TOKEN.finditer(text)]
    source = None
    first, col = tokens[0]
    if ":" in first:
        name, _, rest = first.partition(":")
        source = _source(name, col)
        tokens = ([(rest, col + len(name) + 1)] if rest else []) + tokens[1:]
        if not tokens:
            raise RuleError(f"expected a status after '{name}:'; the form is {FORM}", col=len(text.rstrip()) + 1)
    elif len(tokens) > 1 and tokens[1][0].startswith(":"):  # "evs : FAIL"
        source = _source(first, col)
        rest, rcol = tokens[1][0][1:], tokens[1][1] + 1
        tokens = ([(rest, rcol)] if rest else []) + tokens[2:]
        if not tokens:
            raise RuleError(f"expected a status after '{first}:'; the form is {FORM}", col=len(text.rstrip()) + 1)
    if len(tokens) > 2:
        word, col = tokens[2]
        raise RuleError(f"unexpected {word!r}: a one-liner is {FORM}", col=col)
    status_word, status_col = tokens[0]
    line = _status(status_word, status_col, source)
    if len(tokens) == 2:
        glob, gcol = tokens[1]
        if glob != "*":
            _check_glob(glob, gcol)
            is_glob = any(c in glob for c in "*?[")
            line = OneLiner(source=line.source, phase=line.phase, status=line.status, job_type=glob, glob=is_glob)
    return line


def _source(name: str, col: int) -> str:
    if name not in SOURCES:
        raise RuleError(f"unknown source {name!r}; expected one of {', '.join(SOURCES)}", col=col)
    return name


def _status(word: str, col: int, source: str | None) -> OneLiner:
    if ":" in word:
        raise RuleError(f"unexpected ':' in {word!r}: a one-liner is {FORM}", col=col + word.index(":"))
    if word == "*":
        return OneLiner(source=source)
    if word in PHASES:
        return OneLiner(source=source, phase=(word,))
    if word == "terminal":
        return OneLiner(source=source, phase=TERMINAL)
    known = (*STATUSES[source], *COMMON_STATUSES) if source else ALL_STATUSES
    if _WORD.fullmatch(word) and word in known:
        return OneLiner(source=source, status=word)
    raise RuleError(unknown_status(word, source), col=col)


def unknown_status(word: str, source: str | None) -> str:
    """An error message for a word that is neither a phase nor a status, with a suggestion."""
    known = (*STATUSES[source], *COMMON_STATUSES) if source else ALL_STATUSES
    close = difflib.get_close_matches(word, [*PHASES, "terminal", *known], n=2, cutoff=0.6)
    close += [w for w in (word.lower(), word.upper()) if w != word and w in (*PHASES, *known) and w not in close]
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}" if close else ""
    where = f"{source} statuses are" if source else "API statuses are"
    return (
        f"unknown status {word!r}{hint}. Phases are {', '.join(PHASES)}, terminal; "
        f'{where} {", ".join(known)} (for any other word write CEL: status == "WORD")'
    )


def _check_glob(glob: str, col: int) -> None:
    if not _GLOB.fullmatch(glob):
        bad = next(i for i, c in enumerate(glob) if not _GLOB.fullmatch(c))
        raise RuleError(f"unexpected {glob[bad]!r} in job type glob {glob!r}", col=col + bad)
    try:
        re.compile(glob_regex(glob))
    except (re.error, ValueError) as e:
        raise RuleError(f"invalid job type glob {glob!r}: {e}", col=col) from None


def glob_regex(glob: str) -> str:
    """An anchored RE2-compatible regex for a glob; raises ValueError on a bad ``[...]``."""
    out, i = ["^"], 0
    while i < len(glob):
        c = glob[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            end = glob.find("]", i + 1)
            if end == -1:
                raise ValueError("'[' without a closing ']'")
            body = glob[i + 1 : end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            if not body or "[" in body or "!" in body:
                raise ValueError(f"bad character class {glob[i : end + 1]!r}")
            out.append(("[^" if negate else "[") + body.replace(".", r"\.") + "]")
            i = end
        elif c in "]!":
            raise ValueError(f"{c!r} outside a character class")
        else:
            out.append(re.escape(c))
        i += 1
    out.append("$")
    return "".join(out)
