"""Escalation: which step of a rule's ``escalate`` list is due for an incident. Pure.

::

    - name: desktop-creation-failed
      when: FAILED createDesktops
      escalate:
        - {after: 15m, notify: [oncall-lead]}
        - {after: 45m, notify: [manager-sms]}

Each step fires once per episode, ``after`` past the incident's opening, while the incident
is still firing: an acknowledgement or a resolution stops it; a snooze delays it to the end of
the snooze (a step that fell due meanwhile fires then); a re-opened incident starts over
(a new episode has ``escalated = 0``). Steps fire in order, one per timer round.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from watcher.events import Incident
from watcher.rules.options import Step


def due_at(incident: Incident, steps: Sequence[Step]) -> datetime | None:
    """When the incident's next step is due (None: no step left, or nothing may escalate it)."""
    if incident.state != "firing" or incident.escalated >= len(steps):
        return None
    due = incident.opened_at + timedelta(seconds=steps[incident.escalated].after)
    if incident.snoozed_until is not None and incident.snoozed_until > due:
        due = incident.snoozed_until
    return due


def due_step(incident: Incident, steps: Sequence[Step], now: datetime) -> int | None:
    """The index of the step to fire now, or None."""
    at = due_at(incident, steps)
    return incident.escalated if at is not None and now >= at else None
