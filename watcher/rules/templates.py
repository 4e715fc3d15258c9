"""Alert text: rule title/body templates in a sandboxed Jinja2 environment.

Templates see three variables: ``event`` (the flat field dict of
:func:`watcher.rules.fields.event_context`: ``event.job_type``, ``event.entities.desktop_name``…),
``rule`` (name, severity, tags, description) and ``alert`` (:func:`alert_vars`: kind, count,
held/since/limit for stuck alerts, window for bursts, share/seen for shares, group). The environment is sandboxed (a rule
file cannot reach Python internals), ``StrictUndefined`` (a misspelt variable is a load-time
RuleError, found by rendering once against a sample event), autoescape is off because the
output is plain text, and ``None`` renders as an empty string. Filters added: ``utc``
(``2024-01-02 03:04:05 UTC``). Job-supplied text has control characters removed; output is
truncated to :data:`TITLE_MAX`/:data:`BODY_MAX`. Escaping for a channel's markup (HTML
mail, Markdown chats) is the notifier's job: it knows the channel, this module does not.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from watcher import wording
from watcher.errors import RuleError
from watcher.events import TaskCounts
from watcher.rules.fields import event_context, sample_event

TITLE_MAX = 250
BODY_MAX = 4000
ELLIPSIS = "…"

#: "[FAILED] createDesktops in 0bec… (cn-north-4)"; the raw status when the phase is "other".
DEFAULT_TITLE = (
    "[{{ event.status if event.phase == 'other' else event.phase | upper }}] "
    "{{ job_type_name(event.source, event.job_type) }} in {{ event.project }} ({{ event.region }})"
)

DEFAULT_BODY = """\
Job type: {{ job_type_name(event.source, event.job_type) }} ({{ event.source }})
Status: {{ status_text(event, alert) }}
Project: {{ event.project }}
Region: {{ event.region }}
Job: {{ event.job_id }}{% if event.parent_job_id %} (parent {{ event.parent_job_id }}){% endif %}
{% if event.begin_time %}Began: {{ event.begin_time | utc }}
{% endif %}{% if event.end_time %}Ended: {{ event.end_time | utc }}
{% endif %}{% if event.error_code or event.message %}Error: \
{{ [event.error_code, event.message] | select | join(': ') }}
{% endif %}{% set e = event.entities %}{% if e.desktop_name or e.desktop_id %}Desktop: \
{{ e.desktop_name or e.desktop_id }}{% if e.desktop_name and e.desktop_id %} ({{ e.desktop_id }}){% endif %}
{% endif %}{% if e.user_name %}User: {{ e.user_name }}
{% endif %}{% if e.desktop_pool_name or e.desktop_pool_id %}Desktop pool: {{ e.desktop_pool_name or e.desktop_pool_id }}
{% endif %}{% if e.volume_name or e.volume_id %}Volume: {{ e.volume_name or e.volume_id }}\
{% if e.volume_name and e.volume_id %} ({{ e.volume_id }}){% endif %}
{% endif %}{% if e.resource_name or e.resource_id %}Resource: {{ e.resource_name or e.resource_id }}\
{% if e.resource_name and e.resource_id %} ({{ e.resource_id }}){% endif %}
{% endif %}{% if event.source == 'script' %}Desktops: {{ event.counts.success }} succeeded, \
{{ event.counts.failed }} failed, {{ event.counts.skipped }} skipped
{% endif %}"""

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _utc(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return "" if value is None else str(value)


def _status_text(event: dict[str, Any], alert: dict[str, Any] | None = None) -> str:
    """The Status line (:func:`watcher.wording.status_text`) from template variables."""
    alert = alert or {}
    counts = event.get("counts") or {}
    held = alert.get("held") if alert.get("kind", "firing") == "firing" else None
    return wording.status_text(
        event["source"], event["status"], event["prev_status"],
        TaskCounts(**counts) if counts else None, held=held, since=alert.get("since"),
    )  # fmt: skip


def _finalize(value: Any) -> Any:
    return "" if value is None else value


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        finalize=_finalize,
        keep_trailing_newline=False,
    )
    env.filters["utc"] = _utc
    env.globals["job_type_name"] = wording.job_type_name
    env.globals["status_text"] = _status_text
    return env


ENV = _environment()


def compile_template(text: str) -> jinja2.Template:
    """Compile ``text`` and render it once against a sample event; errors are RuleErrors.

    A RuleError's ``line`` is the line within ``text`` (1-based); ``col`` is 1.
    """
    try:
        template = ENV.from_string(text)
    except jinja2.TemplateSyntaxError as e:
        raise RuleError(f"template syntax error: {e.message}", line=e.lineno or 1) from None
    sample = {
        "event": event_context(sample_event()),
        "rule": rule_vars("sample", "error", (), None),
        "alert": alert_vars(held="35m", since=sample_event().observed_at, limit="30m", window="10m", share=0.5),
    }
    try:
        template.render(sample)
    except jinja2.UndefinedError as e:
        raise RuleError(f"template error: {e.message}") from None
    except jinja2.TemplateError as e:
        raise RuleError(f"template error: {e}") from None
    except Exception:
        pass  # data-dependent (e.g. arithmetic on a field); render() falls back per event
    return template


def rule_vars(name: str, severity: str, tags: tuple[str, ...], description: str | None) -> dict[str, Any]:
    """The ``rule`` variable of a template."""
    return {"name": name, "severity": severity, "tags": list(tags), "description": description}


def alert_vars(kind: str = "firing", count: int = 1, **extra: Any) -> dict[str, Any]:
    """The ``alert`` variable of a template: what kind of alert this is, beyond the event."""
    out: dict[str, Any] = {
        "kind": kind, "count": count, "held": None, "since": None, "limit": None,
        "window": None, "share": None, "seen": None, "group": {},
    }  # fmt: skip
    out.update(extra)
    return out


def event_body(event: Any, **extra: Any) -> str:
    """The default body for ``event`` (a JobEvent): stages put their own first line above it.
    ``extra``: the ``alert`` variables (a stuck alert's ``held`` and ``since``)."""
    variables = {"event": event_context(event), "rule": rule_vars("", "error", (), None),
                 "alert": alert_vars(**extra)}
    return render(DEFAULT_BODY_TEMPLATE, variables, BODY_MAX, DEFAULT_BODY_TEMPLATE)


def utc(value: datetime | None) -> str:
    """``2024-01-02 03:04:05 UTC`` (the ``utc`` filter, for Python callers)."""
    return _utc(value)


def clean(text: str, limit: int) -> str:
    """Drop control characters (keeping newline and tab), trim, and truncate to ``limit``."""
    text = _CONTROL.sub("", text).strip()
    if len(text) <= limit:
        return text
    return text[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS


def render(template: jinja2.Template, variables: dict[str, Any], limit: int, fallback: jinja2.Template) -> str:
    """Render for one event; a template that fails on this event's data falls back to the default."""
    try:
        text = template.render(variables)
    except Exception as e:  # data-dependent failures must not lose the alert
        text = fallback.render(variables) + f"\n(template error: {type(e).__name__}: {e})"
    return clean(text, limit)


DEFAULT_TITLE_TEMPLATE = compile_template(DEFAULT_TITLE)
DEFAULT_BODY_TEMPLATE = compile_template(DEFAULT_BODY)
