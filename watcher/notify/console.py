"""``console://``: an Apprise target that prints the alert to standard output.

Apprise has no such service; the demo and local runs want one (``watcher demo`` routes
its ``console`` tag here), so it is registered through Apprise's own custom-plugin
decorator. Importing this module registers it, once per process.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from apprise.decorators import notify

_lock = threading.Lock()  # Apprise sends from worker threads; keep each alert in one piece


@notify(on="console", name="Console (watcher)")
def print_to_console(body: str, title: str, notify_type: Any, *args: Any, **kwargs: Any) -> bool:
    """Write ``[type] title`` and the indented body to stdout."""
    kind = getattr(notify_type, "value", notify_type)
    text = "\n".join("    " + line for line in body.splitlines())
    with _lock:
        sys.stdout.write(f"[{kind}] {title}\n{text}\n")
        sys.stdout.flush()
    return True
