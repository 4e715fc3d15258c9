"""Threaded mail: every mail about one incident lands in one thread, in every mail client.

Sits at the end of notify, called by the delivery stage through the
:class:`~watcher.notify.channel.Channel` contract for SMTP targets (``mailto://``,
``mailtos://``). What threads where:

* **Message-ID / In-Reply-To / References** (RFC 5322; Thunderbird, Apple Mail, mutt, Gmail):
  the incident's first message (its ``open``) has the Message-ID :func:`thread_ids` derives from
  the incident id and episode; every later one has its own (the same derivation plus its
  ``seq``) and points In-Reply-To and References at the first. Any worker computes the same ids,
  and a notification sent twice (a retry after a lost answer) has the same Message-ID, so a
  mailbox that deduplicates shows it once;
* **the subject** (Gmail and Outlook also need it to match): the incident's title, ``Re: `` after
  the first (:func:`watcher.notify.summary.mail_subject`), and ``Thread-Topic`` for Outlook.

Apprise's email plugin takes extra headers (``NotifyEmail(headers=…)``, and subclasses add their
own through ``_protocol_headers``), but it sets ``Message-ID`` itself, after the extra headers,
with ``make_msgid()``: a Message-ID of ours would make a message with two (RFC 5322 allows one),
and its own is random, so no later mail could point at it. Hence :class:`ThreadedEmail`, a
subclass whose ``send`` is the base class's loop built from Apprise's own parts
(``AppriseSMTPController`` for the connection, TLS and login; ``NotifyEmail.prepare_emails`` for
the MIME message, PGP included), which swaps Apprise's Message-ID line for ours before the
message goes out. Per-send header injection alone could not replace it; a mail library of our own
would re-do Apprise's URL forms, provider templates and TLS modes. A fresh plugin is made per
notification (its headers are that message's), so concurrent sends share no state; Apprise's own
5.5 s pace per plugin is off and the target's ``pace`` applies (:class:`~watcher.notify.channel.Pacer`).

Imports Apprise (its email plugin), and notify's channel/config/redact/render/retry/summary.
"""

from __future__ import annotations

import hashlib
import logging
import re
import smtplib
import time
from collections.abc import Mapping
from typing import Any

import apprise
import msgspec
from apprise.exception import AppriseException
from apprise.plugins.email.base import NotifyEmail
from apprise.plugins.email.smtp import AppriseSMTPController

from watcher.errors import ConfigError
from watcher.events import Notification
from watcher.notify import summary
from watcher.notify.channel import Pacer, SendResult
from watcher.notify.config import NotifyTarget
from watcher.notify.redact import guard_apprise_logging, known_secrets, redact, secrets_of
from watcher.notify.render import sanitize
from watcher.notify.retry import TargetResult, classify

log = logging.getLogger(__name__)

_MESSAGE_ID = re.compile(r"^Message-ID:[^\n]*\n(?:[ \t][^\n]*\n)*", re.IGNORECASE | re.MULTILINE)


class MailThread(msgspec.Struct, frozen=True):
    """The threading headers of one mail."""

    message_id: str
    root: str  # the incident's first message (its open) in this episode
    topic: str = ""

    def headers(self) -> dict[str, str]:
        out = {"In-Reply-To": self.root, "References": self.root} if self.message_id != self.root else {}
        return out | ({"Thread-Topic": self.topic} if self.topic else {})


def thread_ids(incident: str, episode: int, seq: int, kind: str, domain: str, topic: str = "") -> MailThread:
    """Deterministic ids: ``<watcher.<hash>@domain>`` for the episode's open, ``<watcher.<hash>.<seq>@domain>``
    for each later notification. ``hash`` is of the incident id and episode."""
    digest = hashlib.sha256(f"{incident}\x00{episode}".encode()).hexdigest()[:32]
    root = f"<watcher.{digest}@{domain}>"
    return MailThread(message_id=root if kind == "open" else f"<watcher.{digest}.{seq}@{domain}>", root=root,
                      topic=topic)  # fmt: skip


def with_message_id(message: str, message_id: str) -> str:
    """``message`` (RFC 5322 text) with its Message-ID header replaced by ``message_id``."""
    head, sep, body = message.partition("\n\n")
    head += "\n"
    if _MESSAGE_ID.search(head):
        head = _MESSAGE_ID.sub(lambda _: f"Message-ID: {message_id}\n", head, count=1)
    else:
        head += f"Message-ID: {message_id}\n"
    return head[:-1] + sep + body


class ThreadedEmail(NotifyEmail):
    """Apprise's SMTP email with our Message-ID and threading headers (see the module docstring)."""

    def __init__(self, *, thread: MailThread | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.thread = thread

    def send(self, body: str, title: str = "", notify_type: Any = apprise.NotifyType.INFO, attach: Any = None,
             body_format: Any = None, **kwargs: Any) -> bool:  # fmt: skip
        if not self.targets:
            self.logger.warning("There are no Email recipients to notify")
            return False
        self.throttle()
        has_error = False
        headers = {"X-Application": self.app_id, **self.headers, **self._protocol_headers(body)}
        if self.thread is not None:
            headers.update(self.thread.headers())
        try:
            with AppriseSMTPController(host=self.smtp_host, port=self.port, secure_mode=self.secure_mode,
                                       user=self.user, password=self.password,
                                       verify_certificate=self.verify_certificate,
                                       socket_connect_timeout=self.socket_connect_timeout) as smtp:  # fmt: skip
                for message in NotifyEmail.prepare_emails(
                    subject=title, body=body, notify_format=self.resolve_format(body_format),
                    from_addr=self.from_addr, to=self.targets, cc=self.cc, bcc=self.bcc, reply_to=self.reply_to,
                    smtp_host=self.smtp_host, attach=attach, headers=headers, names=self.names, pgp=self.pgp,
                    pgp_mode=self.pgp_mode, inline=self.inline, tzinfo=self.tzinfo,
                ):  # fmt: skip
                    if self.is_delivered(message.recipient):
                        continue
                    text = message.body if self.thread is None else with_message_id(message.body,
                                                                                     self.thread.message_id)
                    if smtp.sendmail(self.from_addr[1], message.to_addrs, text):
                        self.logger.info("Sent Email to %s", message.recipient)
                        self.mark_delivered(message.recipient)
                    else:
                        self.logger.warning('Sending email to "%s" failed.', message.recipient)
                        has_error = True
        except (OSError, smtplib.SMTPException, RuntimeError, AppriseException) as e:
            self.logger.warning('Connection error while submitting email to "%s"', self.smtp_host)
            self.logger.debug(f"Socket Exception: {e}")
            has_error = True
        self.pgp.prune()
        return not has_error


def mail_domain(plugin: NotifyEmail) -> str:
    """The domain of the sender address, for Message-IDs (``watcher.invalid`` if there is none)."""
    sender = str(plugin.from_addr[1] or "")
    domain = sender.rpartition("@")[2].strip().lower()
    return domain if re.fullmatch(r"[a-z0-9.-]+", domain or "-") else "watcher.invalid"


class MailChannel:
    """One SMTP mail target, threaded per incident."""

    editable = False

    def __init__(self, target: NotifyTarget, *, target_id: str = "", tags: frozenset[str] | None = None,
                 links: Mapping[str, str] | None = None, body_limit: int = 4000, title_limit: int = 250,
                 jobs: int = 25) -> None:  # fmt: skip
        if not target.is_mail:
            raise ConfigError("threaded mail needs a mailto:// or mailtos:// URL", key="notify.targets.url")
        guard_apprise_logging(secrets_of(None, target.url))  # parsing logs the URL at DEBUG
        self.asset = apprise.AppriseAsset(app_id="watcher", app_desc="Huawei Cloud job watcher")
        parsed = NotifyEmail.parse_url(target.url)
        if not parsed:
            raise ConfigError("not a usable mail URL", key="notify.targets.url")
        self._kwargs = {**parsed, "asset": self.asset}
        probe = ThreadedEmail(**self._kwargs)
        guard_apprise_logging(secrets_of(probe, target.url))
        self.domain = mail_domain(probe)
        self.id = target_id or target.display()
        self.tags = tags if tags is not None else frozenset(target.tags)
        self.links = dict(links or {})
        self.body_limit, self.title_limit, self.jobs = body_limit, title_limit, jobs
        self.pacer = Pacer(target.pace_seconds())

    def __repr__(self) -> str:
        return f"MailChannel({self.id!r}, tags={sorted(self.tags)!r})"

    def thread_of(self, notification: Notification) -> MailThread:
        inc = notification.incident
        return thread_ids(inc.id, inc.episode, inc.seq, notification.kind, self.domain, summary.title(inc))

    async def send(self, notification: Notification, ref: str | None) -> SendResult:
        subject, body = summary.mail_subject(notification), mail_body(notification, self.body_limit)
        plugin = ThreadedEmail(thread=self.thread_of(notification), **self._kwargs)
        plugin.request_rate_per_sec = 0  # the Pacer paces; a fresh plugin has no memory of the last send
        await self.pacer.wait()
        started = time.monotonic()
        try:
            result = await apprise.Apprise(plugin, asset=self.asset).async_notify(
                body=body, title=sanitize(subject, self.title_limit), notify_type=_notify_type(notification),
                body_format=apprise.NotifyFormat.TEXT)  # fmt: skip
        except Exception as e:  # Apprise contains plugin errors; anything here is a bug, ours or its
            log.warning("mail to %s raised %s", self.id, type(e).__name__)
            return SendResult(target=self.id, ok=False, status="ERROR", detail=type(e).__name__, reason="error")
        with result:
            services = result.results
            status = services[0].status.name if services else result.status.name
            warnings = [entry.message for entry in result.logs()]
        detail = sanitize(redact("; ".join(warnings), known_secrets()), 300)
        outcome = TargetResult(target=self.id, ok=status == "SUCCESS", status=status, detail=detail,
                               elapsed=time.monotonic() - started)  # fmt: skip
        retryable, reason = classify(outcome)
        return SendResult(target=self.id, ok=outcome.ok, status=status, detail=detail, retryable=retryable,
                          reason="error" if reason == "failed" else reason)  # fmt: skip

    async def close(self) -> None:
        """Nothing held between sends."""


def mail_body(notification: Notification, limit: int = 4000) -> str:
    """The body of a mail about ``notification``: the alert's own text as every mail target gets it
    (:func:`watcher.notify.render.render`, the mail layout: the full body and the alert key),
    the incident's other jobs, what changed (after the first mail), and the incident footer."""
    from watcher.notify.render import incident_section, notification_alert, render

    inc = notification.incident
    _, text = render(notification_alert(notification), title_limit=1 << 30, body_limit=1 << 30, kind="mail")
    parts = [] if notification.kind == "open" else [summary.change_line(notification)]
    parts.append(text)
    if section := incident_section(notification):
        parts.append(sanitize(section, 1 << 30))
    footer = f"\nIncident {summary.clean(inc.id, 500)}, episode {inc.episode}, notification {inc.seq} ({notification.kind})."
    return sanitize("\n\n".join(parts), max(1, limit - len(footer))) + footer


def _notify_type(notification: Notification) -> apprise.NotifyType:
    if notification.kind == "resolve" or notification.incident.state == "resolved":
        return apprise.NotifyType.SUCCESS
    severity = notification.incident.severity
    return {"warning": apprise.NotifyType.WARNING, "info": apprise.NotifyType.INFO}.get(severity,
                                                                                      apprise.NotifyType.FAILURE)
