"""Incidents: what people are paged about, between the rules and the notifier.

Sits between ``rules/`` (alerts) and ``notify/`` (delivery): an alert opens or updates an
:class:`~watcher.events.Incident`; each change someone must hear about becomes a
:class:`~watcher.events.Notification`. People act on incidents (acknowledge, snooze,
silence) with :class:`~watcher.events.Action` records; rules may escalate an incident nobody
acknowledged. Pure: no I/O, the clock is passed in. Imports ``watcher.events`` and the standard
library; ``app/incidents.py`` keeps the state in a Kafka table and wires the topics.

Modules: ``model`` (alert and action → incident and what to tell whom), ``escalation`` (which
step is due), ``text`` (the one-line descriptions of changes).
"""
