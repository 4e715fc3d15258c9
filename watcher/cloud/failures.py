"""What a failed answer means: parse the error body, pick the error class, say if it is retryable.

Error bodies are read the way the SDK's ``DefaultExceptionHandler`` reads them: the first
of ``error_code``+``error_msg``, ``errorCode``+``errorMsg``, ``code``+``message`` present at
the top level, else the same search inside nested objects (EVS answers
``{"error": {"code": …, "message": …}}``), else the status number and the raw text.

One function, :func:`classify`, decides the class and whether to retry; the class's
``reason`` doubles as a metric label.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from watcher.errors import AuthError, CloudError, JobNotFound, ServerError, ThrottledError

MAX_ECHO = 300  # chars of server text an error message may quote

#: API Gateway "the API does not exist": a wrong endpoint or path, not a missing job.
ROUTE_NOT_FOUND = frozenset({"APIG.0101", "APIGW.0101"})
#: EVS "query job fail." / "No jobs found.": an unknown job id answers 400, not 404.
EVS_JOB_NOT_FOUND = "Common.0011"
THROTTLED = "APIG.0308"

_PAIRS = (("error_code", "error_msg"), ("errorCode", "errorMsg"), ("code", "message"))


class ErrorBody(NamedTuple):
    code: str
    message: str


def clip(text: str, limit: int = MAX_ECHO) -> str:
    """One line of at most ``limit`` chars (plus an ellipsis)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _search(body: dict[str, Any], found: list[Any]) -> None:
    for code_key, msg_key in _PAIRS:
        if code_key in body and msg_key in body:
            found[:] = [body[code_key], body[msg_key]]
            return
    # Like the SDK: every nested dict is searched and a later match overwrites an earlier one.
    for value in body.values():
        if isinstance(value, dict):
            _search(value, found)


def parse_error_body(status: int, text: str) -> ErrorBody:
    """The (error code, message) of an error answer; falls back to (status, raw text)."""
    found: list[Any] = []
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        _search(body, found)
    code = str(found[0]) if found and found[0] not in (None, "") else str(status)
    message = str(found[1]) if found and found[1] not in (None, "") else text
    return ErrorBody(code, message)


def classify(status: int, service: str, code: str) -> tuple[type[CloudError], bool]:
    """The error class for an HTTP error answer, and whether the call is worth retrying."""
    if status in (401, 403):
        return AuthError, False
    if status == 429 or code == THROTTLED:
        return ThrottledError, True
    if status >= 500:
        return ServerError, True
    if status == 404 and code not in ROUTE_NOT_FOUND:
        return JobNotFound, False
    if status == 400 and service == "evs" and code == EVS_JOB_NOT_FOUND:
        return JobNotFound, False
    return CloudError, False


_LEADS: dict[type[CloudError], str] = {
    AuthError: "authentication failed: check HUAWEICLOUD_SDK_AK/SK or the token (HUAWEICLOUD_SDK_TOKEN)",
    ThrottledError: "throttled by the API gateway",
    ServerError: "server error",
    JobNotFound: "job not found",
    CloudError: "request rejected",
}


def describe(cls: type[CloudError], server_message: str) -> str:
    """The human half of an error message; the caller has already redacted ``server_message``."""
    lead = _LEADS.get(cls, "request failed")
    said = clip(server_message)
    return f"{lead}; server said: {said}" if said else lead
