"""What the simulator says back: an :class:`Answer`, and each API family's error body.

Three error shapes exist (huawei-job-apis.md §4):

* API Gateway: ``{"error_msg", "error_code", "request_id"}`` (APIG.0101 / 0301 / 0308);
* Workspace and Workspace App: ``{"error_code", "error_msg"}`` (WKS.…);
* EVS: ``{"error": {"message", "code"}}`` (Common.0011 for an unknown job, a 400).

Codes marked *(invented)* below are not in any source; they only have to look like the
family they belong to, because pollers classify errors by HTTP status and a few known codes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

APIG_NOT_FOUND = ("APIG.0101", "The API does not exist or has not been published in the environment")
APIG_AUTH = "APIG.0301"
APIG_FORBIDDEN = ("APIG.0302", "The IAM user is not authorized to access the API")
APIG_THROTTLED = "APIG.0308"
THROTTLE_MESSAGE = "The throttling threshold has been reached: policy user over ratelimit,limit:20,time:1 second"
AUTH_PREFIX = "Incorrect IAM authentication information: "

WKS_UNAVAILABLE = ("WKS.00129901", "The service is now unavailable to process the request.")
WKS_BAD_PARAM = "WKS.00010001"  # (invented) a query parameter is missing or out of range
WKS_JOB_NOT_FOUND = "WKS.00010404"  # (invented) App job id unknown
EVS_QUERY_FAIL = ("Common.0011", "query job fail.")
EVS_UNAVAILABLE = ("EVS.5400", "Internal server error.")  # (invented)


@dataclass
class Answer:
    """An HTTP answer before serialization: ``body`` is JSON-able, or ``bytes`` sent as is."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def apig_error(status: int, code: str, message: str, request_id: str, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, {"error_msg": message, "error_code": code, "request_id": request_id}, headers or {})


def auth_failed(reason: str, request_id: str) -> Answer:
    """401 APIG.0301 with the gateway's wording, e.g. ``verify aksk signature fail``."""
    return apig_error(401, APIG_AUTH, AUTH_PREFIX + reason, request_id)


def not_found_route(request_id: str) -> Answer:
    return apig_error(404, *APIG_NOT_FOUND, request_id)


def throttled(request_id: str, retry_after: float | None = None) -> Answer:
    headers = {"Retry-After": _seconds(retry_after)} if retry_after is not None else {}
    return apig_error(429, APIG_THROTTLED, THROTTLE_MESSAGE, request_id, headers)


def service_error(source: str, status: int, code: str, message: str) -> Answer:
    """The error shape of the API behind ``source``."""
    if source == "evs":
        return Answer(status, {"error": {"message": message, "code": code}})
    return Answer(status, {"error_code": code, "error_msg": message})


def unavailable(source: str, status: int, retry_after: float | None = None) -> Answer:
    """500/503 as the service says it (WKS.00129901; EVS in its own shape)."""
    code, message = EVS_UNAVAILABLE if source == "evs" else WKS_UNAVAILABLE
    answer = service_error(source, status, code, message)
    if retry_after is not None:
        answer.headers["Retry-After"] = _seconds(retry_after)
    return answer


def bad_param(source: str, message: str) -> Answer:
    if source == "evs":
        return service_error(source, 400, *EVS_QUERY_FAIL)
    return service_error(source, 400, WKS_BAD_PARAM, message)


def _seconds(value: float) -> str:
    # Retry-After is whole seconds (RFC 9110); urllib3 rejects fractions.
    return str(max(0, math.ceil(value)))
