"""Per-target delivery results, the one "retry?" decision, and backoff math. Pure.

Apprise plugins report only success or failure; the *why* is in the warning they log
(``Failed to send JSON POST notification: Internal Server Error, error=500.``), which
Apprise 2.x captures per attempt in its result. :func:`classify` reads that text (already
redacted) and returns a short reason that doubles as a metric label:

=============  ==========  ==============================================
reason         retryable   when
=============  ==========  ==============================================
``ok``         no          delivered
``timeout``    yes         Apprise stopped waiting (call or service deadline)
``http_5xx``   yes         the service answered 5xx
``http_429``   yes         throttled (also ``http_408``, ``http_425``)
``http_4xx``   no          any other 4xx: bad token, gone webhook — retry won't fix it
``connection`` yes         refused, reset, DNS, TLS, SMTP connect/submit errors
``error``      no          Apprise or the plugin raised; a bug or bad config
``failed``     yes         failed without saying why; bounded by the budget anyway
=============  ==========  ==============================================
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

import msgspec

from watcher.notify.config import RetryBudget

_HTTP_CODE = re.compile(r"\berror=(\d{3})\b")
_RETRYABLE_4XX = frozenset({408, 425, 429})
_CONNECTION_WORDS = ("connection", "connect", "socket", "refused", "reset", "timed out", "ssl", "tls", "dns", "resolve")


class TargetResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one target did with one send: masked target, ok, Apprise's status and warnings.

    ``target`` is the target's id — its masked URL — never the URL itself; ``detail`` is
    the redacted, truncated warning text Apprise captured for it.
    """

    target: str
    ok: bool
    status: str = "SUCCESS"  # AppriseResultStatus name, or "ERROR" if the call raised
    detail: str = ""
    elapsed: float = 0.0

    @property
    def retryable(self) -> bool:
        return classify(self)[0]

    @property
    def reason(self) -> str:
        return classify(self)[1]


class DeliveryResult(msgspec.Struct, frozen=True, kw_only=True):
    """One send of one alert to its routed targets (no retries)."""

    results: tuple[TargetResult, ...] = ()

    @property
    def ok(self) -> bool:
        """True if at least one target was routed and every routed target accepted."""
        return bool(self.results) and all(r.ok for r in self.results)


class DeliveryOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """The end of :meth:`Notifier.deliver_with_retry`: delivered, dead and why, or to retry ``later``.

    ``reason`` is a metric label (``delivered``, ``no_route`` or a :func:`classify` reason
    of the first target that failed); ``failed_targets`` are masked target ids.
    """

    delivered: bool
    reason: str
    attempts: int
    failed_targets: tuple[str, ...] = ()
    sent: tuple[str, ...] = ()  # targets that accepted during this call
    results: tuple[TargetResult, ...] = ()  # the last result of every target tried
    later: float | None = None  # not done: retry in this many seconds (``deliver_with_retry(hold=…)``)

    @property
    def dead(self) -> bool:
        return not self.delivered


def classify(result: TargetResult) -> tuple[bool, str]:
    """Whether a failed delivery is worth retrying, and a short reason (a metric label)."""
    if result.ok:
        return False, "ok"
    if result.status == "TIMEOUT":
        return True, "timeout"
    if result.status == "ERROR":
        return False, "error"
    match = _HTTP_CODE.search(result.detail)
    if match:
        code = int(match.group(1))
        if code in _RETRYABLE_4XX:
            return True, f"http_{code}"
        if 500 <= code <= 599:
            return True, "http_5xx"
        if 400 <= code <= 499:
            return False, "http_4xx"
        return True, "failed"
    text = result.detail.lower()
    if any(word in text for word in _CONNECTION_WORDS):
        return True, "connection"
    return True, "failed"


def backoff_delay(attempt: int, budget: RetryBudget, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Exponential from ``base_delay``, capped at ``max_delay``, with "equal jitter": at least
    half the step, so retries of many alerts spread out but never hammer a sick service.
    """
    step = min(budget.max_delay, budget.base_delay * 2 ** max(0, attempt - 1))
    return step / 2 + rand() * step / 2


def format_results(results: list[TargetResult] | tuple[TargetResult, ...]) -> str:
    """One line per target: ``OK``/``FAILED``, masked URL, and for failures the reason and detail."""
    if not results:
        return "no notification targets matched"
    lines = []
    for r in results:
        line = f"{'OK' if r.ok else 'FAILED':<7} {r.target}"
        if not r.ok:
            line += f"  [{r.reason}]" + (f" {r.detail}" if r.detail else "")
        lines.append(line)
    return "\n".join(lines)
