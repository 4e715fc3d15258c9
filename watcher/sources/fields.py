"""Small field normalizers every source applies the same way (pure)."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from watcher.events import Phase


def text(value: str | None) -> str | None:
    """An optional string field: ``""`` and whitespace-only mean absent (APIs send both)."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def phase_of(phases: Mapping[str, Phase], status: str) -> Phase:
    """The normalized phase of ``status``; a word the table does not know is ``"other"``."""
    found = phases.get(status)
    if found is None:  # the Workspace App SDK upper-cases enum words; accept "running" too
        found = phases.get(status.strip().upper(), "other")
    return found


def is_final(finals: Collection[str], status: str) -> bool:
    """``status`` is one the API documents as final (``finals``); a word it does not know is not.

    Finality decides polling (a final job changes no more, so it is no longer asked for);
    the phase decides alerting. They differ on purpose: Workspace App's ABNORMAL is phase
    ``failed`` (it alerts) but not final (it is polled on until a documented end).
    """
    return status in finals or status.strip().upper() in finals
