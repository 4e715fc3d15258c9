"""Logging for every command: text or JSON lines on stderr, library noise capped.

During a broker outage aiokafka logs a connection error per attempt, hundreds a second,
which buries the one line that matters ("broker unreachable: holding N events"). So the
libraries' repeated WARNING/ERROR lines pass once per :data:`REPEAT_WINDOW` per logger and
message template; the next one that passes says how many were held back.

Secrets read at run time (the Kafka SASL password) are registered with :func:`redact`: any
log line that would contain one shows ``******`` instead, whichever library wrote it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable

#: Libraries whose INFO is noise and whose repeats are capped.
LIBRARIES = ("aiokafka", "faust", "mode", "apprise", "httpx", "httpcore", "aiohttp.access")
REPEAT_WINDOW = 30.0


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:  # already formatted (SecretFilter masked it)
            out["exc"] = record.exc_text
        return json.dumps(out)


class RepeatFilter(logging.Filter):
    """Lets a library's line through once per ``window`` per (logger, template); counts the rest."""

    def __init__(self, window: float = REPEAT_WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window, self.clock = window, clock
        self.last: dict[tuple[str, str], float] = {}
        self.held: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(LIBRARIES):
            return True
        key = (record.name, str(record.msg))
        now = self.clock()
        if now - self.last.get(key, -1e18) < self.window:
            self.held[key] = self.held.get(key, 0) + 1
            return False
        self.last[key] = now
        if held := self.held.pop(key, 0):
            record.msg = f"{record.msg} ({held} more like this in the last {self.window:.0f}s held back)"
        return True


_SECRETS: set[str] = set()


def redact(secret: str) -> None:
    """Never let ``secret`` reach a log line (only secrets of 4+ characters: shorter ones would
    mask ordinary text)."""
    if len(secret) >= 4:
        _SECRETS.add(secret)


class SecretFilter(logging.Filter):
    """Replaces every registered secret in a record's message (and traceback) with ``******``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _SECRETS:
            return True
        message = record.getMessage()
        if any(s in message for s in _SECRETS):
            for s in _SECRETS:
                message = message.replace(s, "******")
            record.msg, record.args = message, ()
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if any(s in text for s in _SECRETS):
                for s in _SECRETS:
                    text = text.replace(s, "******")
                record.exc_info, record.exc_text = None, text
        return True


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RepeatFilter())
    handler.addFilter(SecretFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in LIBRARIES:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
