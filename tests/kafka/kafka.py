"""A real single-node Apache Kafka (KRaft, broker + controller in one JVM) for integration tests.

The jars come from Maven Central through the machine's Maven (``tests/kafka/pom.xml``) into a
cache outside the repo, reused by later runs::

    $WATCHER_KAFKA_CACHE            (default: $XDG_CACHE_HOME/watcher-kafka or ~/.cache/watcher-kafka)
      <version>/libs/*.jar          the broker's classpath; .complete marks a finished fetch
      m2/                           Maven's local repository for these fetches

``KafkaBroker`` formats a log dir in a temp dir, runs ``java -cp 'libs/*' kafka.Kafka``, waits
for a Metadata answer, and stops by PID. ``restart()`` keeps ports and log dir, so a test can
take the broker away and bring it back with its data.

``KafkaBroker(secure=SecureListener(...))`` adds what a production cluster looks like from a
client: a SASL_SSL listener (SCRAM-SHA-512, a certificate from a CA made at test time by
:mod:`tests.kafka.pki`), SCRAM users written into the log dir at format time
(``StorageTool format --add-scram``), and the StandardAuthorizer with no ACLs, so a
principal may do only what a test grants it (``User:ANONYMOUS``, the PLAINTEXT and controller
listeners, and the listener's ``super_users`` may do everything).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from tests.kafka.pki import Pki, make_pki
from watcher.app.broker import free_port, wait_until_ready
from watcher.errors import BrokerError

KAFKA_VERSION = os.environ.get("WATCHER_KAFKA_VERSION", "4.4.0")  # default also in pom.xml
POM = Path(__file__).with_name("pom.xml")
MIN_JAVA = 17  # Kafka 4.x brokers need Java 17+
DEFAULT_HEAP = "512m"
STARTUP_TIMEOUT = 90.0
STOP_GRACE = 30.0


class KafkaUnavailable(Exception):
    """This machine cannot run the Kafka leg; ``reason`` says why in one line or the mvn error."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


# -- the jars ------------------------------------------------------------------------------------


def cache_root() -> Path:
    explicit = os.environ.get("WATCHER_KAFKA_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "watcher-kafka"
    home = os.environ.get("HOME")
    if home and os.access(home, os.W_OK):
        return Path(home) / ".cache" / "watcher-kafka"
    # No usable HOME (some CI sandboxes): still outside the repo, still reused between runs.
    return Path(tempfile.gettempdir()) / f"watcher-kafka-{os.getuid()}"


def require_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise KafkaUnavailable("java is not on PATH (Apache Kafka needs a Java 17+ runtime)")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if m:
        major = int(m.group(1)) if m.group(1) != "1" else int(m.group(2) or 0)
        if major < MIN_JAVA:
            raise KafkaUnavailable(f"{java} is Java {major}; Apache Kafka {KAFKA_VERSION} needs Java {MIN_JAVA}+")
    return java


def fetch_jars(version: str = KAFKA_VERSION) -> Path:
    """The directory of the broker's jars, fetched with Maven on first use and cached after."""
    root = cache_root()
    vdir = root / version
    libs = vdir / "libs"
    stamp = vdir / ".complete"
    want = _pom_digest(version)
    if stamp.exists() and stamp.read_text() == want:
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaUnavailable(f"mvn is not on PATH (needed once to fetch Apache Kafka {version} into {root})")
    vdir.mkdir(parents=True, exist_ok=True)
    with open(vdir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two pytest processes may fetch at once
        if stamp.exists() and stamp.read_text() == want:
            return libs
        shutil.copyfile(POM, vdir / "pom.xml")  # mvn runs on a copy: nothing is written to the repo
        staging = vdir / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            mvn,
            "-q",
            "-B",
            "-U",  # retry artifacts a failed earlier attempt left marked "not found" in m2/
            "-f",
            str(vdir / "pom.xml"),
            f"-Dmaven.repo.local={root / 'm2'}",
            f"-Dkafka.version={version}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
        ]
        proc = subprocess.run(cmd, cwd=vdir, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise KafkaUnavailable(f"mvn could not fetch Apache Kafka {version} ({' '.join(cmd)}):\n{_mvn_error(proc)}")
        shutil.rmtree(libs, ignore_errors=True)
        os.replace(staging, libs)
        stamp.write_text(want)
    return libs


def _pom_digest(version: str) -> str:
    return hashlib.sha256(POM.read_bytes() + version.encode()).hexdigest()


def _mvn_error(proc: subprocess.CompletedProcess[str]) -> str:
    text = (proc.stdout or "") + (proc.stderr or "")
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # Maven colours even with -B on some terminals
    errors = [line for line in text.splitlines() if line.startswith("[ERROR]")]
    return "\n".join(errors[:20]) if errors else text.strip()[-3000:]


# -- the broker ----------------------------------------------------------------------------------


def stable_port() -> int:
    """A free 127.0.0.1 port *below* the kernel's ephemeral range, so it stays free while a
    stopped broker is away: a port picked by binding 0 is ephemeral, and any client's outgoing
    connection may take it meanwhile (the restart then fails with "Address already in use")."""
    import random
    import socket

    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return free_port()
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    return free_port()


@dataclass
class SecureListener:
    """A SASL_SSL listener with SCRAM-SHA-512 users; ``pki`` is made in the work dir at first start."""

    users: dict[str, str]  # SCRAM user name -> password
    super_users: tuple[str, ...] = ("admin",)
    mechanism: str = "SCRAM-SHA-512"
    pki: Pki | None = field(default=None, repr=False)


class KafkaBroker:
    """One KRaft broker+controller JVM on 127.0.0.1, with its log dir in a temp dir."""

    def __init__(
        self,
        *,
        version: str = KAFKA_VERSION,
        workdir: str | os.PathLike[str] | None = None,
        heap: str = DEFAULT_HEAP,
        startup_timeout: float = STARTUP_TIMEOUT,
        secure: SecureListener | None = None,
    ) -> None:
        self.version = version
        self.secure = secure
        self.secure_port = 0
        self.heap = heap
        self.startup_timeout = startup_timeout
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="watcher-kafka-"))
        self.host = "127.0.0.1"
        self.port = 0
        self.controller_port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._java: str | None = None
        self._libs: Path | None = None
        self.startup_seconds: float | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.host}:{self.port}"

    @property
    def secure_bootstrap(self) -> str:
        """host:port of the SASL_SSL listener (``secure`` brokers only)."""
        return f"{self.host}:{self.secure_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def log_path(self) -> Path:
        return self.workdir / "kafka.log"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.is_running() else "stopped"
        return f"<KafkaBroker {self.version} {self.bootstrap} {state}>"

    def prepare(self) -> None:
        """Find Java and fetch the jars (KafkaUnavailable if this machine can't), without starting."""
        if self._java is None:
            self._java = require_java()
        if self._libs is None:
            self._libs = fetch_jars(self.version)

    def start(self) -> KafkaBroker:
        """Start the JVM (formatting the log dir the first time) and wait until it serves requests."""
        if self.is_running():
            return self
        self.prepare()
        t0 = time.monotonic()
        if not self.port:  # first start; a restart keeps its ports so clients find it again
            self.port, self.controller_port = stable_port(), stable_port()
            if self.secure is not None:
                self.secure_port = stable_port()
                self.secure.pki = make_pki(self.workdir / "pki", (self.host,))
        props = self._write_properties()
        if not (self.data_dir / "meta.properties").exists():
            self._format(props)
        self._spawn(props)
        try:
            wait_until_ready(self.host, self.port, self.startup_timeout, alive=self.is_running)
        except BrokerError as e:
            self._terminate()
            raise BrokerError(f"Apache Kafka on {self.bootstrap} did not start: {e}\n{self._tail()}") from e
        self.startup_seconds = time.monotonic() - t0
        return self

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM the JVM (a clean shutdown flushes the log), SIGKILL it after ``grace`` seconds."""
        self._terminate(grace)

    def kill(self) -> None:
        """SIGKILL the JVM: a crash, for chaos tests (the log dir recovers on the next start)."""
        self._terminate(0)

    def restart(self, downtime: float = 0.0) -> KafkaBroker:
        """Stop, stay down ``downtime`` seconds, start again on the same ports and data."""
        self.stop()
        if downtime:
            time.sleep(downtime)
        return self.start()

    def close(self) -> None:
        """Stop, and delete the work dir if this broker made it."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------

    def _write_properties(self) -> Path:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"{self.host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": "1",
            # one partition instead of 50: __consumer_offsets is created on the first
            # FindCoordinator, and 50 partitions cost a second or two per fresh broker
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # after a SIGKILL the restarted broker waits out its old registration's session
            # before it is unfenced: 9 s by default (start took 12 s), 2 s here (4 s)
            "broker.session.timeout.ms": "2000",
            "broker.heartbeat.interval.ms": "500",
        }
        if self.secure is not None:
            props.update(self._secure_properties(self.secure))
        path = self.workdir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def _secure_properties(self, secure: SecureListener) -> dict[str, str]:
        assert secure.pki is not None
        name = "sasl_ssl"  # listener.name.<lower-case listener name>.* configure that listener only
        mech = secure.mechanism.lower()
        return {
            "listeners": f"PLAINTEXT://{self.host}:{self.port},SASL_SSL://{self.host}:{self.secure_port},"
            f"CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port},SASL_SSL://{self.host}:{self.secure_port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms": secure.mechanism,
            f"listener.name.{name}.sasl.enabled.mechanisms": secure.mechanism,
            f"listener.name.{name}.{mech}.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            f"listener.name.{name}.ssl.keystore.type": "PEM",
            f"listener.name.{name}.ssl.keystore.location": str(secure.pki.broker_keystore),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": ";".join(f"User:{u}" for u in ("ANONYMOUS", *secure.super_users)),
        }

    def _java_cmd(self, *args: str) -> list[str]:
        assert self._java is not None and self._libs is not None
        return [
            self._java,
            f"-Xmx{self.heap}",
            "-Xms64m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",  # C1 only: faster start, plenty for a test broker
            "-Djava.awt.headless=true",
            "-cp",
            f"{self._libs}/*",
            *args,
        ]

    def _format(self, props: Path) -> None:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # "=": a random id may start with "-", which the tool would read as an option
        cmd = self._java_cmd("kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(props),
                             "--standalone")
        if self.secure is not None:  # SCRAM credentials live in the metadata log: written at format time
            for user, password in self.secure.users.items():
                cmd += ["--add-scram", f"{self.secure.mechanism}=[name={user},password={password}]"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip()[-3000:]
            raise BrokerError(f"formatting the Kafka log dir failed ({' '.join(cmd)}):\n{tail}")

    def _spawn(self, props: Path) -> None:
        with open(self.log_path, "ab") as log:  # a file, never a pipe nobody drains
            self._proc = subprocess.Popen(
                self._java_cmd("kafka.Kafka", str(props)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,  # Ctrl-C on pytest must not kill it behind the fixture's back
            )

    def _terminate(self, grace: float = STOP_GRACE) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM if grace > 0 else signal.SIGKILL)
            try:
                proc.wait(grace if grace > 0 else None)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _tail(self, limit: int = 3000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        return f"--- tail of {self.log_path} ---\n{text[-limit:]}"
