"""Kafka over SASL_SSL with SCRAM-SHA-512, against a real broker started by `recon broker start
--security sasl-ssl`, as a developer or on-call engineer starts it.

One broker for the module, with a SASL_SSL listener beside PLAINTEXT: topics are created over SASL_SSL,
and the real `recon publish` and `recon ingest` run over it with the SCRAM user the command made,
their settings taken from its `export` lines by the shell's `eval`.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer
from kafka.errors import KafkaError
from sqlalchemy import create_engine, text

from conftest import free_ports
from factories import NIK_KEY, enrolment_record, valid_nik
from recon.broker import LocalBroker
from recon.kafka.topics import ensure_topics
from recon.ledger import upgrade
from recon.settings import Settings
from support import RECON, REPO, run_recon, service_env, start_recon

USER = "recon-ingest"
BUDGET = 3  # seconds of retries for the failure tests: each must end with its line after about this long


@dataclass(frozen=True, slots=True)
class SecureKafka:
    home: Path
    start_command: list[str]  # the `recon broker start --security sasl-ssl ...` that started it
    exports: dict[str, str]  # what it printed: RECON_* name -> value
    stderr: str

    @property
    def bootstrap(self) -> str:
        return self.exports["RECON_KAFKA_BOOTSTRAP_SERVERS"]

    @property
    def password(self) -> str:
        return self.exports["RECON_KAFKA_SASL_PASSWORD"]

    def settings(self, **changes: Any) -> dict[str, Any]:
        """The printed settings (lower-case, for service_env), with ``changes``."""
        printed = {name.removeprefix("RECON_").lower(): value for name, value in self.exports.items()}
        return {**printed, "topic_partitions": 2, **changes}


def parse_exports(stdout: str) -> dict[str, str]:
    """`export NAME=VALUE` lines, as the shell would read them; anything else fails the test."""
    exports = {}
    for line in stdout.splitlines():
        words = shlex.split(line)
        assert len(words) == 2 and words[0] == "export", line
        name, _, value = words[1].partition("=")
        exports[name] = value
    return exports


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    port, controller_port, sasl_port = free_ports(3)
    home = tmp_path_factory.mktemp("kafka-sasl")
    command = [
        *RECON,
        "broker",
        "start",
        "--home",
        str(home),
        "--port",
        str(port),
        "--controller-port",
        str(controller_port),
        "--security",
        "sasl-ssl",
        "--sasl-port",
        str(sasl_port),
        "--user",
        USER,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECON_")}
    started = subprocess.run(
        [*command, "--no-topics"], env=env, capture_output=True, text=True, timeout=300, cwd=REPO
    )
    try:
        assert started.returncode == 0, started.stderr
        kafka = SecureKafka(home, command, parse_exports(started.stdout), started.stderr)
        ensure_topics(kafka.bootstrap, Settings(**kafka.settings()))  # created over SASL_SSL
        yield kafka
    finally:
        LocalBroker(home=home).stop()


def _enrolments_file(folder: Path, count: int) -> tuple[Path, list[str]]:
    """JSON Lines of enrolments valid against today's clock (publish validates with real time)."""
    records = [
        enrolment_record(
            nik=valid_nik(serial=500 + i), occurred_at=1_767_225_600_000, coverage_start=date(2026, 1, 1)
        )
        for i in range(count)
    ]
    path = folder / "enrolments.jsonl"
    default = lambda value: value.isoformat() if isinstance(value, date) else value  # noqa: E731
    path.write_text("".join(json.dumps(record, default=default) + "\n" for record in records))
    return path, [record["event_id"] for record in records]


def test_the_printed_settings_eval_into_publish_and_ingest_over_sasl_ssl(
    secure_kafka: SecureKafka, tmp_path: Path, sqlite_url: str
) -> None:
    upgrade(sqlite_url)
    path, event_ids = _enrolments_file(tmp_path, 4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECON_")}
    env.update(
        RECON_DATABASE_URL=sqlite_url,
        RECON_NIK_HASH_KEY=NIK_KEY.decode(),
        RECON_INGEST_HTTP_PORT="0",
        RECON_CONSUMER_GROUP=f"g-{secrets.token_hex(4)}",
    )
    recon = shlex.join(RECON)
    # The same start again: the running broker is left alone and the same settings come out.
    script = (
        f'eval "$({shlex.join(secure_kafka.start_command)})" && '
        'test "$RECON_KAFKA_SECURITY_PROTOCOL" = SASL_SSL && '
        f"{recon} publish --subject enrolment {shlex.quote(str(path))} && "
        f"{recon} ingest --idle-exit 3"
    )

    done = subprocess.run(
        ["/bin/bash", "-c", script], env=env, capture_output=True, text=True, timeout=300, cwd=REPO
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert "4 records sent to enrolments" in done.stdout
    assert "Kafka already running" in done.stderr
    with create_engine(sqlite_url).connect() as conn:
        stored = [row[0] for row in conn.execute(text("select event_id from enrolment_events"))]
    assert sorted(stored) == sorted(event_ids)
    assert secure_kafka.password not in done.stderr + done.stdout


def test_start_prints_the_sasl_ssl_listener_user_and_ca_and_keeps_the_password_in_the_home(
    secure_kafka: SecureKafka,
) -> None:
    broker = LocalBroker(home=secure_kafka.home)

    assert secure_kafka.exports == {
        "RECON_KAFKA_BOOTSTRAP_SERVERS": broker.listeners()["SASL_SSL"],
        "RECON_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "RECON_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "RECON_KAFKA_SASL_USERNAME": USER,
        "RECON_KAFKA_SASL_PASSWORD": secure_kafka.password,
        "RECON_KAFKA_SSL_CAFILE": str(broker.ca_file),
    }
    assert broker.scram_users() == {USER: secure_kafka.password}
    assert stat.S_IMODE(broker.scram_file.stat().st_mode) == 0o600
    assert str(broker.scram_file) in secure_kafka.stderr
    logged = secure_kafka.stderr + "".join(p.read_text(errors="replace") for p in broker.log_dir.iterdir())
    assert secure_kafka.password not in logged


def test_status_names_both_listeners(secure_kafka: SecureKafka) -> None:
    broker = LocalBroker(home=secure_kafka.home)

    status = run_recon({}, "broker", "status", "--home", str(secure_kafka.home))

    assert (status.returncode, status.stdout.strip()) == (0, broker.listeners()["PLAINTEXT"])
    assert f"SASL_SSL {secure_kafka.bootstrap} (SCRAM-SHA-512 users: {USER};" in status.stderr
    assert secure_kafka.password not in status.stdout + status.stderr


def _run_both(env: dict[str, str], folder: Path) -> dict[str, tuple[str, str, int]]:
    """`recon publish` and `recon ingest` at once with ``env``: name -> (stdout, stderr, exit code)."""
    path, _ = _enrolments_file(folder, 1)
    commands = {
        "publish": ["publish", "--subject", "enrolment", str(path)],
        "ingest": ["ingest", "--idle-exit", "3"],
    }
    running = {name: start_recon(env, *args) for name, args in commands.items()}
    results = {}
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=120)  # a bound on hanging, not a speed
        results[name] = (stdout, stderr, process.returncode)
    return results


def test_a_wrong_scram_password_ends_both_commands_with_one_line_naming_the_fix_never_the_password(
    secure_kafka: SecureKafka, tmp_path: Path, sqlite_url: str
) -> None:
    upgrade(sqlite_url)
    wrong = "Wr0ng-" + secrets.token_hex(8)
    env = service_env(
        secure_kafka.settings(kafka_sasl_password=wrong, retry_budget_seconds=BUDGET), sqlite_url
    )

    for name, (stdout, stderr, code) in _run_both(env, tmp_path).items():
        recon_lines = [line for line in stderr.splitlines() if line.startswith("recon:")]
        assert code == 3, (name, stderr[-2000:])
        assert len(recon_lines) == 1 and stderr.strip().splitlines()[-1] == recon_lines[0], (name, stderr)
        assert recon_lines[0] == (
            f"recon: Kafka at {secure_kafka.bootstrap} refused the SCRAM-SHA-512 login of user '{USER}': "
            "check RECON_KAFKA_SASL_USERNAME and RECON_KAFKA_SASL_PASSWORD (and RECON_KAFKA_SASL_MECHANISM) "
            "against the broker's users"
        )
        assert wrong not in stdout + stderr and secure_kafka.password not in stdout + stderr
        if name == "publish":
            assert stderr.strip().count("\n") == 0, stderr  # the CLI itself: that line and nothing else


def test_a_closed_port_ends_both_commands_with_one_line_naming_the_address(
    secure_kafka: SecureKafka, tmp_path: Path, sqlite_url: str
) -> None:
    upgrade(sqlite_url)
    (closed,) = free_ports(1)  # nothing listens there
    address = f"127.0.0.1:{closed}"
    env = service_env(
        secure_kafka.settings(kafka_bootstrap_servers=address, retry_budget_seconds=BUDGET), sqlite_url
    )

    for name, (stdout, stderr, code) in _run_both(env, tmp_path).items():
        last = stderr.strip().splitlines()[-1]
        assert code == 3, (name, stderr[-2000:])
        assert last.startswith(f"recon: connect a {'producer' if name == 'publish' else 'consumer'} to Kafka")
        assert address in last and "check RECON_KAFKA_BOOTSTRAP_SERVERS and that the broker is up" in last
        assert [line for line in stderr.splitlines() if line.startswith("recon:")] == [last]
        assert "Traceback" not in stderr and secure_kafka.password not in stdout + stderr


def test_a_plaintext_client_cannot_read_through_the_sasl_ssl_port(secure_kafka: SecureKafka) -> None:
    with pytest.raises(KafkaError):
        consumer = KafkaConsumer(
            "enrolments",
            bootstrap_servers=secure_kafka.bootstrap,
            security_protocol="PLAINTEXT",
            bootstrap_timeout_ms=5000,
            auto_offset_reset="earliest",
        )
        try:
            consumer.poll(timeout_ms=3000)
        finally:
            consumer.close()
