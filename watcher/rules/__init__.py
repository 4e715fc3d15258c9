"""Rules: rule files → compiled rules → evaluation. Sits between events and notify.

A rule file (YAML, :mod:`~watcher.rules.schema`) names rules with a ``when`` condition (a
one-liner, :mod:`~watcher.rules.oneliner`, or CEL, :mod:`~watcher.rules.expr`), optional
``from``/``to`` transitions, Apprise tags and title/body templates
(:mod:`~watcher.rules.templates`). :mod:`~watcher.rules.compile` turns each into one CEL
program plus index keys (:mod:`~watcher.rules.index`); :class:`~watcher.rules.engine.RuleSet`
maps a :class:`~watcher.events.JobEvent` to :class:`~watcher.events.Alert` values, and
:mod:`~watcher.rules.check` lists every error for ``watcher rules check``.

Beyond "match and fire once" (:mod:`~watcher.rules.options` says which keys make which
kind): :mod:`~watcher.rules.stuck` (``for``), :mod:`~watcher.rules.burst`,
:mod:`~watcher.rules.share`, :mod:`~watcher.rules.dedup` (``repeat``),
:mod:`~watcher.rules.grouping` (``group_by``), :mod:`~watcher.rules.silence`,
:mod:`~watcher.rules.inhibit`; each a pure stage over explicit msgspec state.
:class:`~watcher.rules.pipeline.DryRun` runs them in order (``watcher rules test``,
``watcher explain``, :mod:`~watcher.rules.report`) and is the reference for the Faust agents.

Pure: imports the event contract, errors, msgspec, PyYAML, Jinja2 and the CEL library;
no Kafka, Faust, HTTP or Apprise. Every problem in a rule file is a RuleError with
``file:line:col``.
"""
