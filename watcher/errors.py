"""Every exception watcher raises, in one tree.

    WatcherError
     ├── ConfigError            bad config file/key/value (names file, key, line)
     ├── RuleError              bad rule file (file:line:col: message)
     ├── CloudError             a Huawei API call failed (names API and project, never a secret)
     │    ├── AuthError         401/403, APIG.0301
     │    ├── ThrottledError    429 APIG.0308 after the retry budget
     │    ├── JobNotFound       EVS 400 Common.0011, 404 on by-id APIs
     │    │    └── InvalidId    an id no job can have: refused before a URL is built
     │    ├── ServerError       5xx after the retry budget
     │    ├── TransportError    connect/read timeouts, refused connections after the budget
     │    └── MalformedResponse a body that is not what the API documents
     ├── BrokerError            Kafka unreachable / embedded broker failed to start
     └── DeliveryError          a notification target failed (reason is a metric label)

Third-party exceptions are translated at the boundary with ``raise ... from``.
"""

from __future__ import annotations


class WatcherError(Exception):
    """Base of every watcher error."""


class ConfigError(WatcherError):
    def __init__(self, message: str, *, file: str | None = None, key: str | None = None, line: int | None = None):
        self.file, self.key, self.line = file, key, line
        where = file or "<config>"
        if line is not None:
            where += f":{line}"
        if key:
            where += f": {key}"
        super().__init__(f"{where}: {message}")


class RuleError(WatcherError):
    def __init__(self, message: str, *, file: str = "<rules>", line: int = 1, col: int = 1):
        self.file, self.line, self.col, self.reason = file, line, col, message
        super().__init__(f"{file}:{line}:{col}: {message}")


class CloudError(WatcherError):
    """A failed cloud API call. ``api`` and ``project_id`` say where; never any credential."""

    reason = "error"

    def __init__(
        self,
        message: str,
        *,
        api: str = "",
        project_id: str = "",
        status: int | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
    ):
        self.api, self.project_id, self.status = api, project_id, status
        self.error_code, self.request_id = error_code, request_id
        parts = [message]
        if api:
            parts.append(f"api={api}")
        if project_id:
            parts.append(f"project={project_id}")
        if status is not None:
            parts.append(f"http={status}")
        if error_code:
            parts.append(f"code={error_code}")
        if request_id:
            parts.append(f"request_id={request_id}")
        super().__init__(" ".join(parts))


class AuthError(CloudError):
    reason = "auth"


class ThrottledError(CloudError):
    reason = "throttled"


class JobNotFound(CloudError):
    reason = "not_found"


class InvalidId(JobNotFound):
    """An id that is not an id (too long, a slash, a space): no request is made for it, and a
    by-id source drops it like a job the API does not know."""

    reason = "invalid_id"


class ServerError(CloudError):
    reason = "server"


class TransportError(CloudError):
    reason = "transport"


class MalformedResponse(CloudError):
    reason = "malformed"


class BrokerError(WatcherError):
    pass


class DeliveryError(WatcherError):
    def __init__(self, message: str, *, reason: str = "failed"):
        self.reason = reason
        super().__init__(message)
