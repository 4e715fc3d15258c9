"""Delivery of alerts: routing by tag, rendering (pure), sending through Apprise, retries.

Sits at the end of the flow: rules → alerts → **notify** → targets (or the dead-letter topic).
This is the only package that imports Apprise. Modules: ``config`` (the ``[notify]`` structs),
``render`` (default message, sanitizing untrusted text), ``retry`` (results, ``classify``,
backoff), ``redact`` (masked URLs, secret-free logs), ``deliver`` (``Notifier``, ``send_test``).
"""
