"""A local single-node Apache Kafka (KRaft, combined broker + controller) for development and tests.

The jars come from Maven Central through ``deploy/kafka/pom.xml`` into a per-version cache folder;
the broker runs detached from the caller (its own session), so it outlives ``recon broker start``.
Everything the broker writes lives in its home folder: ``server.properties``, ``log4j2.properties``,
``kafka.pid``, ``data/`` and ``logs/`` (``server.log`` from log4j, ``kafka.out`` for the JVM's own output).

Usage::

    broker = LocalBroker(home=Path(".recon/broker"), port=9092, controller_port=9093)
    bootstrap = broker.start()   # "127.0.0.1:9092"; a running broker is left alone
    broker.status()              # BrokerStatus(running=True, bootstrap="127.0.0.1:9092", pid=...)
    broker.stop()

With ``security=SaslSsl(port=9094, users={"recon": "pw"})`` the broker also serves SASL_SSL with
SCRAM-SHA-512 on that port: a throwaway CA and a certificate for 127.0.0.1/localhost are made with the
``openssl`` CLI in ``home/tls`` (clients trust ``broker.ca_file``), and the users are created when the
storage is formatted, so they are fixed for the life of the home folder: ``home/scram-users.json``
(mode 0600) keeps them, and :func:`sasl_ssl_in` gives back those of a home (or makes a user with a
random password for a new one), which is what ``recon broker start --security sasl-ssl`` uses.
PLAINTEXT stays for the controller, inter-broker traffic and local tools.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from recon.errors import ReconError

__all__ = [
    "KAFKA_POM",
    "BrokerError",
    "BrokerStatus",
    "LocalBroker",
    "SaslSsl",
    "fetch_jars",
    "kafka_version",
    "render_properties",
    "sasl_ssl_in",
    "server_properties",
]

KAFKA_POM = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "pom.xml"
HOST = "127.0.0.1"  # the local broker never listens beyond loopback
_INSTALL_HINT = "run scripts/bootstrap.sh (or apt-get install -y maven openjdk-17-jre-headless)"
_MARKER = "complete"
SASL_LISTENER = "SASL_SSL"
SCRAM_MECHANISM = "SCRAM-SHA-512"
SCRAM_USERS_FILE = "scram-users.json"
_CERT_DAYS = "365"
# StorageTool parses `--add-scram 'MECH=[name=U,password=P]'` itself: these would break its syntax.
_SCRAM_UNSAFE = re.compile(r'[\s,=\[\]"\\]')


class BrokerError(ReconError):
    """The local broker could not be fetched, started or stopped; the message names the fix or the log."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerStatus:
    running: bool
    bootstrap: str | None
    pid: int | None
    detail: str
    # listener name (PLAINTEXT, SASL_SSL) -> host:port, as the running broker was started
    listeners: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class SaslSsl:
    """An extra SASL_SSL listener on ``port`` authenticating ``users`` (name -> password) by SCRAM-SHA-512."""

    port: int
    users: Mapping[str, str] = field(repr=False)  # passwords: never in a repr or a log line

    def __post_init__(self) -> None:
        if not self.users:
            raise BrokerError("SaslSsl needs at least one user: pass users={'name': 'password'}")
        for name, password in self.users.items():
            if not name or not password or _SCRAM_UNSAFE.search(name + password):
                raise BrokerError(
                    f"SCRAM user {name!r}: name and password must be non-empty, without spaces, "
                    'commas, =, [, ], " or backslashes: choose another'
                )

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Tls:
    """Where the broker's PEM keystore (key + chain) and truststore (the CA) are."""

    keystore: Path
    truststore: Path


def server_properties(
    *,
    port: int,
    controller_port: int,
    data_dir: Path,
    node_id: int = 1,
    sasl_ssl_port: int | None = None,
    keystore: Path | None = None,
    truststore: Path | None = None,
) -> dict[str, str]:
    """The broker's configuration; with ``sasl_ssl_port`` and the PEM stores, a SASL_SSL listener too."""
    plain, controller = f"PLAINTEXT://{HOST}:{port}", f"CONTROLLER://{HOST}:{controller_port}"
    single_node = {  # one replica of everything, or the internal topics never become available
        key: "1"
        for key in (
            "default.replication.factor",
            "min.insync.replicas",
            "offsets.topic.replication.factor",
            "transaction.state.log.replication.factor",
            "transaction.state.log.min.isr",
            "share.coordinator.state.topic.replication.factor",
            "share.coordinator.state.topic.min.isr",
            # a few partitions instead of 50 keep the first consumer group and transaction fast
            "offsets.topic.num.partitions",
            "transaction.state.log.num.partitions",
            "num.partitions",
        )
    }
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.bootstrap.servers": f"{HOST}:{controller_port}",
        "listeners": f"{plain},{controller}",
        "advertised.listeners": f"{plain},{controller}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        "metadata.log.dir": str(data_dir),
        "auto.create.topics.enable": "false",  # a typo in a topic name fails instead of inventing a topic
        "group.initial.rebalance.delay.ms": "0",
        **single_node,
    }
    if sasl_ssl_port is not None:
        if keystore is None or truststore is None:
            raise BrokerError("a SASL_SSL listener needs a keystore and a truststore: pass both PEM files")
        props.update(_sasl_ssl_properties(props, sasl_ssl_port, keystore, truststore))
    return props


def _sasl_ssl_properties(
    base: Mapping[str, str], port: int, keystore: Path, truststore: Path
) -> dict[str, str]:
    """The SASL_SSL listener beside PLAINTEXT: clients only; the controller and replication stay plain."""
    listener = f"{SASL_LISTENER}://{HOST}:{port}"
    prefix = f"listener.name.{SASL_LISTENER.lower()}."
    return {
        "listeners": f"{base['listeners']},{listener}",
        "advertised.listeners": f"{base['advertised.listeners']},{listener}",
        "listener.security.protocol.map": (
            f"{base['listener.security.protocol.map']},{SASL_LISTENER}:SASL_SSL"
        ),
        "sasl.enabled.mechanisms": SCRAM_MECHANISM,
        f"{prefix}sasl.enabled.mechanisms": SCRAM_MECHANISM,
        # Credentials live in the cluster metadata (StorageTool --add-scram); the module only checks them.
        f"{prefix}{SCRAM_MECHANISM.lower()}.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        # PEM stores: the key (PKCS#8, unencrypted, the file is 0600) with its chain, and the CA.
        f"{prefix}ssl.keystore.type": "PEM",
        f"{prefix}ssl.keystore.location": str(keystore),
        f"{prefix}ssl.truststore.type": "PEM",
        f"{prefix}ssl.truststore.location": str(truststore),
        f"{prefix}ssl.client.auth": "none",  # clients prove who they are by SCRAM, not by certificate
    }


def render_properties(props: Mapping[str, str]) -> str:
    escaped = (f"{key}={value.replace(chr(92), chr(92) * 2)}" for key, value in props.items())
    return "# Written by recon broker start; edits are overwritten.\n" + "\n".join(escaped) + "\n"


def _log4j_config(log_file: Path) -> str:
    return "\n".join(
        [
            "appender.file.type = File",
            "appender.file.name = FILE",
            f"appender.file.fileName = {log_file}",
            "appender.file.layout.type = PatternLayout",
            "appender.file.layout.pattern = [%d] %p %m (%c)%n",
            "rootLogger.level = WARN",
            "rootLogger.appenderRef.file.ref = FILE",
            "logger.kafka.name = kafka",
            "logger.kafka.level = WARN",
            "logger.apache.name = org.apache.kafka",
            "logger.apache.level = WARN",
            # keeps "Kafka Server started" and shutdown lines in the log, which is what one looks for
            "logger.server.name = kafka.server.KafkaRaftServer",
            "logger.server.level = INFO",
            "",
        ]
    )


def kafka_version(pom: Path = KAFKA_POM) -> str:
    """The Kafka version the pom pins (its ``kafka.version`` property)."""
    try:
        text = pom.read_text()
    except OSError as exc:
        raise BrokerError(
            f"cannot read {pom} ({exc.strerror}): run recon from a checkout of the repository"
        ) from None
    found = re.search(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", text)
    if found is None:
        raise BrokerError(f"{pom} has no <kafka.version> property: restore it from the repository")
    return found.group(1)


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rentan-recon"


def fetch_jars(*, pom: Path = KAFKA_POM, cache_root: Path | None = None) -> Path:
    """The folder of Kafka's jars, fetched by Maven once per pom content; a partial copy is redone."""
    base = (cache_root or _cache_root()) / f"kafka-{kafka_version(pom)}"
    lib, marker = base / "lib", base / _MARKER
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if _complete(marker, digest, lib):
        return lib
    mvn = _require("mvn")
    base.mkdir(parents=True, exist_ok=True)
    with _locked(base / ".lock"):
        if _complete(marker, digest, lib):  # another process fetched while we waited
            return lib
        marker.unlink(missing_ok=True)
        partial = base / "lib.partial"
        shutil.rmtree(partial, ignore_errors=True)
        goal = ["dependency:copy-dependencies", f"-DoutputDirectory={partial}"]
        _run(
            [mvn, "-q", "-B", "-f", str(pom), *goal],
            "Maven could not fetch the Kafka jars (is Maven Central reachable?)",
        )
        shutil.rmtree(lib, ignore_errors=True)
        partial.rename(lib)
        marker.write_text(digest)
    return lib


def _complete(marker: Path, digest: str, lib: Path) -> bool:
    return marker.is_file() and marker.read_text() == digest and lib.is_dir()


def free_ports(count: int = 1) -> list[int]:
    """Ports free on 127.0.0.1 right now (all held open together, so they differ): for a throwaway
    broker, PostgreSQL or HTTP server in tests and benchmarks."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in socks]


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalBroker:
    """A single-node KRaft broker living in ``home``, listening on 127.0.0.1 only."""

    home: Path = Path(".recon/broker")
    port: int = 9092
    controller_port: int = 9093
    heap: str = "512m"
    pom: Path = KAFKA_POM
    cache_root: Path | None = None
    start_timeout: float = 90.0
    stop_timeout: float = 30.0
    security: SaslSsl | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", self.home.expanduser().resolve())

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def version(self) -> str:
        """The Kafka version the pom pins."""
        return kafka_version(self.pom)

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def properties_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "server.log"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def _log4j_file(self) -> Path:
        return self.home / "log4j2.properties"

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    @property
    def ca_file(self) -> Path:
        """The throwaway CA that signed the SASL_SSL listener's certificate: what clients trust."""
        return self.tls_dir / "ca.pem"

    @property
    def _keystore(self) -> Path:
        return self.tls_dir / "broker-keystore.pem"

    @property
    def scram_file(self) -> Path:
        """The SCRAM users (name -> password) the storage was formatted with; mode 0600."""
        return self.home / SCRAM_USERS_FILE

    def scram_users(self) -> dict[str, str] | None:
        """The SCRAM users this home's storage was formatted with; None if it has none (or no storage)."""
        try:
            users = json.loads(self.scram_file.read_text())["users"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return {str(name): str(password) for name, password in users.items()} if users else None

    def properties(self) -> dict[str, str]:
        return server_properties(
            port=self.port,
            controller_port=self.controller_port,
            data_dir=self.data_dir,
            sasl_ssl_port=None if self.security is None else self.security.port,
            keystore=self._keystore,  # used only with the SASL_SSL listener
            truststore=self.ca_file,
        )

    def start(self) -> str:
        """Start the broker unless it already runs; return its bootstrap address once it serves."""
        self.home.mkdir(parents=True, exist_ok=True)
        with _locked(self.home / ".lock"):
            pid = self._live_pid()
            if pid is not None:
                self._check_running_listeners(pid)
                bootstrap = self._running_bootstrap()
                self._wait_serving(pid, bootstrap)  # returns at once when it already serves
                return bootstrap
            self.pid_file.unlink(missing_ok=True)
            self._check_formatted_users()
            extra = () if self.security is None else (self.security.port,)
            for port in (self.port, self.controller_port, *extra):
                if _port_open(port):
                    raise BrokerError(
                        f"port {port} on {HOST} is already in use: stop that process or pass other ports"
                    )
            java, lib = _require("java"), fetch_jars(pom=self.pom, cache_root=self.cache_root)
            if self.security is not None:
                _make_certificates(self.tls_dir, self.ca_file, self._keystore)
            self._write_config()
            self._format_storage(java, lib)
            pid = self._launch(java, lib)
            self.pid_file.write_text(f"{pid}\n")
            self._wait_serving(pid, self.bootstrap)
        return self.bootstrap

    def stop(self) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL after ``stop_timeout``); False when none was running."""
        if not self.home.is_dir():
            return False
        with _locked(self.home / ".lock"):  # a start in progress finishes first
            pid = self._live_pid()
            self.pid_file.unlink(missing_ok=True)
            if pid is None:
                return False
            with contextlib.suppress(ProcessLookupError):  # it may have exited on its own meanwhile
                os.kill(pid, signal.SIGTERM)
                if not _wait_exit(pid, self.stop_timeout):
                    os.kill(pid, signal.SIGKILL)
                    _wait_exit(pid, 10.0)
            return True

    def status(self) -> BrokerStatus:
        pid = self._live_pid()
        if pid is None:
            return BrokerStatus(
                running=False, bootstrap=None, pid=None, detail=f"not running (home {self.home})"
            )
        bootstrap, listeners = self._running_bootstrap(), self.listeners()
        if not _port_open(int(bootstrap.rpartition(":")[2])):
            detail = f"process {pid} is alive but {bootstrap} does not answer yet: see {self.log_file}"
            return BrokerStatus(running=False, bootstrap=None, pid=pid, detail=detail, listeners=listeners)
        return BrokerStatus(
            running=True, bootstrap=bootstrap, pid=pid, detail=f"running (pid {pid})", listeners=listeners
        )

    def listeners(self) -> dict[str, str]:
        """The client listeners in the home's configuration (PLAINTEXT, and SASL_SSL when it has one):
        name -> host:port. For a running broker these are what it was started with."""
        found: dict[str, str] = {}
        with contextlib.suppress(OSError):
            for line in self.properties_file.read_text().splitlines():
                if line.startswith("listeners="):
                    for listener in line.removeprefix("listeners=").split(","):
                        name, _, address = listener.partition("://")
                        if name != "CONTROLLER" and address:
                            found[name] = address
        return found

    # --- internals ---

    def _live_pid(self) -> int | None:
        """The pid in the pid file when that process is alive and is this home's Kafka (not a reused pid)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) and _runs(pid, str(self.properties_file)) else None

    def _running_bootstrap(self) -> str:
        """The address the running broker was started with, which may differ from this object's port."""
        return self.listeners().get("PLAINTEXT", self.bootstrap)

    def _check_running_listeners(self, pid: int) -> None:
        """A SASL_SSL start must not hand back a running broker that has no SASL_SSL listener."""
        if self.security is not None and SASL_LISTENER not in self.listeners():
            raise BrokerError(
                f"Kafka already runs in {self.home} (pid {pid}) without a {SASL_LISTENER} listener: stop it "
                f"(recon broker stop --home {self.home}) and start it again with --security sasl-ssl"
            )

    def _check_formatted_users(self) -> None:
        """SCRAM users are written into the storage when it is formatted: a formatted home keeps its own."""
        if self.security is None or not (self.data_dir / "meta.properties").is_file():
            return
        stored = self.scram_users()
        if stored is None:
            raise BrokerError(
                f"the Kafka storage in {self.data_dir} was formatted without SCRAM users, so a "
                f"{SASL_LISTENER} listener could log nobody in: use a new --home for a {SASL_LISTENER} "
                f"broker (or stop this one and delete {self.home})"
            )
        if stored != dict(self.security.users):
            raise BrokerError(
                f"the SCRAM users of {self.home} were fixed when its storage was formatted and differ from "
                f"the ones given: use those in {self.scram_file}, or a new --home"
            )

    def _write_config(self) -> None:
        self.log_dir.mkdir(exist_ok=True)
        self.properties_file.write_text(render_properties(self.properties()))
        self._log4j_file.write_text(_log4j_config(self.log_file))

    def _format_storage(self, java: str, lib: Path) -> None:
        if (self.data_dir / "meta.properties").is_file():
            return
        tool = [
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "-t",
            _cluster_id(),
            "-c",
            str(self.properties_file),
        ]
        if self.security is not None:
            _write_private(self.scram_file, json.dumps({"users": dict(self.security.users)}, indent=2))
            # On the command line for a moment: fine for a loopback broker with throwaway users.
            for name, password in self.security.users.items():
                tool += ["--add-scram", f"{SCRAM_MECHANISM}=[name={name},password={password}]"]
        log4j = f"-Dlog4j2.configurationFile={self._log4j_file}"
        _run(
            [java, "-Xmx256m", log4j, "-cp", f"{lib}/*", *tool],
            f"formatting Kafka storage in {self.data_dir} failed",
        )

    def _launch(self, java: str, lib: Path) -> int:
        out = self.log_dir / "kafka.out"
        command = [
            java,
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self._log4j_file}",
            f"-Dkafka.logs.dir={self.log_dir}",
            "-cp",
            f"{lib}/*",
            "kafka.Kafka",
            str(self.properties_file),
        ]
        # sh backgrounds the JVM and exits, so the broker is nobody's child here: it outlives the CLI, and
        # a test process never holds it as a zombie. The new session keeps Ctrl-C of the caller away from it.
        detach = 'out=$1; shift; "$@" </dev/null >>"$out" 2>&1 & echo $!'
        output = _run(
            ["/bin/sh", "-c", detach, "sh", str(out), *command], "launching Kafka failed", cwd=self.home
        )
        return int(output.strip())

    def _wait_serving(self, pid: int, bootstrap: str) -> None:
        port = int(bootstrap.rpartition(":")[2])
        deadline = time.monotonic() + self.start_timeout
        while not (_port_open(port) and _admin_answers(bootstrap) and self._sasl_ssl_answers()):
            if not _alive(pid):
                self.pid_file.unlink(missing_ok=True)
                raise BrokerError(
                    f"Kafka exited while starting: see {self.log_file} and logs/kafka.out. "
                    + self._log_tail()
                )
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"Kafka (pid {pid}) did not serve on {bootstrap} within {self.start_timeout:.0f}s: "
                    f"see {self.log_file}. " + self._log_tail()
                )
            time.sleep(0.25)

    def _sasl_ssl_answers(self) -> bool:
        """True without a SASL_SSL listener; else once a SCRAM user is served over TLS there."""
        if self.security is None:
            return True
        address = self.listeners().get(SASL_LISTENER, self.security.bootstrap)  # a running one's port wins
        if not _port_open(int(address.rpartition(":")[2])):
            return False
        name, password = next(iter(self.security.users.items()))
        return _admin_answers(
            address,
            security_protocol="SASL_SSL",
            sasl_mechanism=SCRAM_MECHANISM,
            sasl_plain_username=name,
            sasl_plain_password=password,
            ssl_cafile=str(self.ca_file),
        )

    def _log_tail(self) -> str:
        texts = []
        for path in (self.log_file, self.log_dir / "kafka.out"):
            with contextlib.suppress(OSError):
                texts.append(path.read_text(errors="replace"))
        return _last_lines("\n".join(texts))


def sasl_ssl_in(home: Path, *, port: int, user: str) -> SaslSsl:
    """The SASL_SSL listener for the broker in ``home``: its SCRAM users when its storage has them
    (``user`` must be one), else ``user`` with a new random password, stored when the storage is
    formatted."""
    stored = LocalBroker(home=home).scram_users()
    if stored is None:
        return SaslSsl(port=port, users={user: secrets.token_urlsafe(24)})
    if user not in stored:
        names = ", ".join(sorted(stored))
        raise BrokerError(
            f"the broker in {home} has the SCRAM user(s) {names}, fixed when its storage was formatted: "
            f"pass --user {sorted(stored)[0]}, or use a new --home"
        )
    return SaslSsl(port=port, users=stored)


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, whatever mode an earlier copy had."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text + "\n")


def _admin_answers(bootstrap: str, **security: str) -> bool:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="recon-broker-probe",
            bootstrap_timeout_ms=3000,
            request_timeout_ms=5000,
            **security,
        )
    except (KafkaError, OSError):
        return False
    try:
        admin.list_topics()
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()
    return True


def _make_certificates(folder: Path, ca_file: Path, keystore: Path) -> None:
    """A throwaway CA and a broker certificate for 127.0.0.1/localhost, once per home (kept on restart,
    so clients' copies of the CA stay valid). The CA's key is deleted: nothing else is ever signed."""
    if ca_file.is_file() and keystore.is_file():
        return
    openssl = _require("openssl")
    folder.mkdir(mode=0o700, exist_ok=True)
    ca_key, key, csr, cert = (folder / name for name in ("ca.key", "broker.key", "broker.csr", "broker.pem"))
    extensions = folder / "broker.ext"
    extensions.write_text(
        "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
        "extendedKeyUsage = serverAuth\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "basicConstraints = critical, CA:FALSE\n"
    )
    failure = f"openssl could not make the local broker's certificates in {folder}"
    # -nodes: unencrypted PKCS#8 keys, which is what a PEM keystore without ssl.key.password wants.
    new_key = ["-newkey", "rsa:2048", "-nodes"]
    ca_usage = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"]
    make_ca = [
        openssl,
        "req",
        "-x509",
        *new_key,
        "-days",
        _CERT_DAYS,
        "-subj",
        "/CN=recon local CA",
        *ca_usage,
    ]
    _run([*make_ca, "-keyout", str(ca_key), "-out", str(ca_file)], failure)
    _run([openssl, "req", *new_key, "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(csr)], failure)
    signer = ["-CA", str(ca_file), "-CAkey", str(ca_key), "-CAcreateserial", "-extfile", str(extensions)]
    _run([openssl, "x509", "-req", "-days", _CERT_DAYS, *signer, "-in", str(csr), "-out", str(cert)], failure)
    keystore.touch(mode=0o600)
    keystore.write_text(key.read_text() + cert.read_text() + ca_file.read_text())
    for leftover in (ca_key, key, csr, extensions, folder / "ca.srl"):
        leftover.unlink(missing_ok=True)


def _cluster_id() -> str:
    """A random Kafka cluster id: 16 random bytes in URL-safe base64, as `StorageTool random-uuid` makes."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):  # Kafka avoids these too: they read as a command-line flag
            return cluster_id


def _run(command: list[str], failure: str, cwd: Path | None = None) -> str:
    """Run one of our own commands (tools from PATH, our paths); a failure carries its last output."""
    # start_new_session: a launched broker must not share the caller's session (Ctrl-C, hang-ups).
    done = subprocess.run(  # noqa: S603
        command, capture_output=True, text=True, check=False, cwd=cwd, start_new_session=True
    )
    if done.returncode != 0:
        raise BrokerError(f"{failure} (exit {done.returncode}): " + _last_lines(done.stdout + done.stderr))
    return done.stdout


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise BrokerError(f"{tool} not found on PATH: {_INSTALL_HINT}")
    return path


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((HOST, port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie still answers kill(0); where nobody reaps it (a container's pid 1) it stays one
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _runs(pid: int, needle: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return sys.platform != "linux"  # no /proc to check: trust the pid file
    return "kafka.Kafka" in cmdline and needle in cmdline


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _last_lines(text: str, count: int = 8) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:]) if lines else "(no output)"


# `python -m recon.broker fetch`: what scripts/bootstrap.sh runs; it needs no other part of the CLI.
if __name__ == "__main__":
    if sys.argv[1:] != ["fetch"]:
        sys.exit("usage: python -m recon.broker fetch")
    try:
        print(fetch_jars())
    except BrokerError as exc:
        sys.exit(f"recon: {exc}")
