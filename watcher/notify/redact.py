"""Keep notification secrets out of reprs, results and logs.

Apprise's own ``url(privacy=True)`` masks the tokens each plugin declares private
(passwords, Slack/Discord tokens), but it keeps the query string — where the generic
``json://``/``form://`` plugins put ``+Header=value`` (often ``Authorization``) and
``-param=value`` — and a webhook path, which is often the secret itself. So a masked
URL here is Apprise's privacy URL without its query and with every path segment masked
(``json://host:8080/****/****``): scheme, user and host say which target it is.

Apprise logs through the one ``apprise`` logger: at DEBUG the POST URL (path and all),
at INFO nothing secret today, but plugins change. :func:`guard_apprise_logging` keeps
that logger at WARNING and installs a filter that replaces every secret of every
configured target, so even a caller that turns it back to DEBUG sees no secrets.
Secrets are learned from each plugin's declared-private tokens plus token-like parts of
its URL; a secret shorter than 4 characters is not searched for (it would mangle text).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

REDACTED = "<redacted>"
_MASK = "****"

#: A path segment or query value that looks like a generated token, not a word or a name.
_TOKENISH = re.compile(r"^[A-Za-z0-9_\-+=.:~]{16,}$")
#: Shortest string worth redacting from logs; shorter ones would mangle ordinary words.
_MIN_SECRET = 4


def _looks_secret(segment: str) -> bool:
    text = unquote(segment)
    # Addresses and host names carry '@' or several dots; they identify, they don't unlock.
    return bool(_TOKENISH.match(text)) and "@" not in text and text.count(".") < 2


def mask_plugin(plugin: Any) -> str:
    """The safe display form of one Apprise plugin: privacy URL, no query, short tokens."""
    try:
        privacy = str(plugin.url(privacy=True))
    except Exception:  # a plugin's url() is third-party code; never let it leak or crash
        return REDACTED
    parts = urlsplit(privacy)
    # Every path segment, not only token-like ones: a webhook's path is often the secret
    # itself, and a short one (12 characters) looks like a word.
    path = "/".join(_MASK if seg else seg for seg in parts.path.split("/"))
    return f"{parts.scheme}://{parts.netloc}{path}"


@functools.lru_cache(maxsize=256)
def mask_url(url: str) -> str:
    """The safe display form of an Apprise URL string, or ``<redacted>`` if Apprise can't parse it."""
    # Here, not at module top: watcher.config imports this module for every command.
    import apprise

    from watcher.notify import console  # noqa: F401 (registers console://, so it masks too)

    guard_apprise_logging(secrets_of(None, url))  # parsing logs the URL at DEBUG
    try:
        with quiet_apprise():  # a URL that does not parse is reported by our caller, in one line
            plugin = apprise.Apprise.instantiate(url)
    except Exception:
        return REDACTED
    return REDACTED if plugin is None else mask_plugin(plugin)


def mask_http_url(url: str) -> str:
    """The safe display form of a plain http(s) URL (a ``kind = "webhook"`` target): scheme,
    host and port, every path segment masked (as :func:`mask_plugin`); no user info, no query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return REDACTED
    if parts.scheme not in ("http", "https") or not host:
        return REDACTED
    path = "/".join(_MASK if seg else seg for seg in parts.path.split("/"))
    return f"{parts.scheme}://{host}{port}{path}"


def _words(value: str) -> list[str]:
    """The long words of a header value ("Bearer abc…" → the token, not the scheme)."""
    return [word for word in value.split() if len(word) >= 8]


def secrets_of(plugin: Any, raw_url: str | None = None) -> set[str]:
    """Every value of ``plugin`` that must not be printed: declared-private tokens, headers,
    the password, and token-like parts of the raw URL (path segments, query values).

    ``plugin`` may be None to learn what the URL alone reveals, before Apprise parses it.
    """
    found: set[str] = set()

    def add(value: Any) -> None:
        if isinstance(value, str):
            if len(value) >= _MIN_SECRET:
                found.add(value)
        elif isinstance(value, Iterable) and not isinstance(value, bytes | dict):
            for item in value:
                add(item)

    for name, meta in getattr(plugin, "template_tokens", {}).items():
        if isinstance(meta, dict) and meta.get("private"):
            add(getattr(plugin, meta.get("map_to", name), None))
    add(getattr(plugin, "password", None))
    headers = getattr(plugin, "headers", None)
    if isinstance(headers, dict):
        for value in headers.values():
            add(value)
            add(_words(str(value)))  # "Bearer <token>": the token alone may be logged too
    if raw_url:
        add(raw_url)  # Apprise logs an unparseable URL whole ("Unparseable URL nosuch://TOKEN@h")
        parts = urlsplit(raw_url)
        add(unquote(parts.password or ""))
        # Every path segment and query value, not only token-like ones: a short webhook token
        # looks like a word, and urllib3 logs the request path at DEBUG.
        add([unquote(s) for s in parts.path.split("/")])
        add([unquote(parts.netloc)] if _looks_secret(parts.netloc) else [])
        # Apprise's own options (method=POST, overflow=upstream…) say nothing secret.
        options = {k for k, meta in getattr(plugin, "template_args", {}).items()
                   if not (isinstance(meta, dict) and meta.get("private"))}
        for key, value in parse_qsl(parts.query.replace("+", "%2B")):  # "+" marks a header, not a space
            if key not in options:
                add(value)
                add(_words(value))
    return found


class _Redactor(logging.Filter):
    """Replaces known secrets in every record of a guarded logger (and Apprise's captures)."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets = frozenset(self._secrets | set(secrets))

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(_quiet, "on", False):
            return False
        secrets = self._secrets
        if not secrets:
            return True
        try:
            text = record.getMessage()
        except Exception:  # a malformed record; let logging report it as usual
            return True
        clean = redact(text, secrets)
        if clean != text:
            record.msg, record.args = clean, ()
        return True


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``****``."""
    # Longest first, so a secret that contains another one is replaced whole.
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, _MASK)
    return text


#: Set in a thread while :func:`mask_url` parses: Apprise's complaints about a URL it cannot
#: parse are dropped there (thread-local, so another thread's sends still log).
_quiet = threading.local()
_redactor = _Redactor()
#: Loggers that see our request URLs: Apprise's own, and urllib3's (under requests), which
#: logs ``"POST /services/T…/B…/token HTTP/1.1" 200`` at DEBUG. urllib3 keeps its level —
#: other libraries log through it too — but gets the redacting filter; so do httpx (webhook
#: targets' URLs). A logger filter does not apply to child loggers: slack-sdk's clients are
#: given a logger of ours instead (:func:`guarded_logger`).
_GUARDED = ("apprise", "urllib3.connectionpool", "httpx")
_installed = False


def guard_apprise_logging(secrets: Iterable[str] = ()) -> None:
    """Cap the ``apprise`` logger at WARNING (once) and redact ``secrets`` from it from now on.

    A level set explicitly above WARNING is kept; a lower or unset one is raised, because at
    DEBUG Apprise prints request URLs and payloads.
    """
    global _installed
    if not _installed:
        log = logging.getLogger("apprise")
        if log.level < logging.WARNING:
            log.setLevel(logging.WARNING)
        for name in _GUARDED:
            logging.getLogger(name).addFilter(_redactor)
        _installed = True
    _redactor.add(secrets)


def guarded_logger(name: str, secrets: Iterable[str] = ()) -> logging.Logger:
    """The logger ``name`` with the redacting filter on it, and ``secrets`` learned: hand it to
    third-party clients that take a logger (slack-sdk) so nothing they log shows a token."""
    guard_apprise_logging(secrets)
    log = logging.getLogger(name)
    if _redactor not in log.filters:
        log.addFilter(_redactor)
    return log
@contextlib.contextmanager
def quiet_apprise() -> Iterator[None]:
    """Drop Apprise's log lines in this thread meanwhile (parsing a URL or an Apprise config
    whose problem the caller reports itself)."""
    guard_apprise_logging()
    before = getattr(_quiet, "on", False)
    _quiet.on = True
    try:
        yield
    finally:
        _quiet.on = before


def known_secrets() -> frozenset[str]:
    """The secrets registered so far (for scrubbing text Apprise hands back, e.g. result logs)."""
    return _redactor._secrets
