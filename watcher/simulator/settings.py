"""How one simulator instance runs: credentials, accepted projects, clock speed, epoch.

Separate from the scenario on purpose: the scenario says *what happens* (and is shared by
tests that assert transitions), the settings say *how this process serves it*.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from watcher.simulator import DEFAULT_AK, DEFAULT_PROJECTS, DEFAULT_SK, DEFAULT_TOKEN


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Defaults: AK :data:`DEFAULT_AK`, SK :data:`DEFAULT_SK`, token :data:`DEFAULT_TOKEN`.

    ``projects``: project ids accepted in paths, in addition to the scenario's own.
    ``speed``: virtual seconds per real second (0 freezes the clock; tests then step it with
    ``Simulator.advance``). ``epoch``: the wall time of virtual second 0; ``None`` takes the
    scenario's ``epoch``, else the real start time (whole seconds, UTC).
    """

    ak: str = DEFAULT_AK
    sk: str = DEFAULT_SK
    token: str = DEFAULT_TOKEN
    projects: tuple[str, ...] = DEFAULT_PROJECTS
    speed: float = 1.0
    epoch: datetime | None = None

    def __repr__(self) -> str:  # the SK and token never appear in a repr or a log line
        return f"Settings(ak={self.ak!r}, projects={self.projects!r}, speed={self.speed!r}, epoch={self.epoch!r})"
