"""Small field normalizers every source applies the same way (pure)."""

from __future__ import annotations

from collections.abc import Mapping

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
