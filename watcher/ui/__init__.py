"""The status page: what is watched, what is firing, what was sent to whom and why not — and acting on it.

Where it sits: beside the pipeline, not in it. It reads what the pipeline writes — the status
records, the incidents table, notifications and their delivered marks, decisions, dead
letters, silences, actions, alerts and job events — into an in-memory view (:mod:`.view`, kept
current by :mod:`.follow`), and its buttons write what the CLI writes (an ``Action`` on
``P.actions``, a silence on ``P.silences``, a DLQ replay onto ``P.notifications``:
:mod:`.actions`). Any worker's page shows the whole deployment. Every Kafka client it opens is
made by the worker's :class:`~watcher.app.kafka.KafkaConnection`.

Modules: ``view`` (pure state), ``follow`` (the topic reader), ``present`` (what each page
shows, as data), ``pages`` (routes and forms), ``security`` (token, CSRF, headers), ``server``
(the aiohttp app, live updates, the ``mode.Service``). Templates are Jinja2 with autoescape on;
``static/ui.js`` is ours (no build step, no CDN).

May import: aiohttp, Jinja2, aiokafka, mode, and watcher's events, config, rules, ``app.kafka``,
``app.topics``, ``app.silences``, ``app.dlq`` and ``app.explain``; never Faust or Apprise. Nothing in the pipeline
imports it except :func:`watcher.app.runner.side_services` and the demo, which start it.
"""

from watcher.ui.server import StatusPage, UiService

__all__ = ["StatusPage", "UiService"]
