"""Kafka over SASL_SSL with SCRAM-SHA-512, against a real broker the project's launcher configures.

One broker for the module, with a SASL_SSL listener beside PLAINTEXT: topics are created over SASL_SSL,
and the real `recon publish` and `recon ingest` run over it with a SCRAM user, as a deployment would.
"""

from __future__ import annotations

import json
import secrets
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
from factories import enrolment_record, valid_nik
from recon.broker import LocalBroker, SaslSsl
from recon.kafka.topics import ensure_topics
from recon.ledger import upgrade
from recon.settings import Settings
from support import run_recon, service_env, start_recon

USER = "recon-ingest"


@dataclass(frozen=True, slots=True)
class SecureKafka:
    bootstrap: str  # the SASL_SSL listener
    ca_file: Path
    password: str

    def settings(self, password: str | None = None) -> dict[str, Any]:
        """The RECON_* settings a deployment sets for SASL_SSL/SCRAM (lower-case, for service_env)."""
        return {
            "kafka_bootstrap_servers": self.bootstrap,
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": USER,
            "kafka_sasl_password": password or self.password,
            "kafka_ssl_cafile": self.ca_file,
            "topic_partitions": 2,
        }


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    port, controller_port, sasl_port = free_ports(3)
    password = secrets.token_urlsafe(18)
    broker = LocalBroker(
        home=tmp_path_factory.mktemp("kafka-sasl"),
        port=port,
        controller_port=controller_port,
        security=SaslSsl(port=sasl_port, users={USER: password}),
    )
    broker.start()  # returns once a SCRAM login over TLS is served
    try:
        kafka = SecureKafka(bootstrap=f"127.0.0.1:{sasl_port}", ca_file=broker.ca_file, password=password)
        ensure_topics(kafka.bootstrap, Settings(**kafka.settings()))  # created over SASL_SSL
        yield kafka
    finally:
        broker.stop()


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


def test_publish_and_ingest_over_sasl_ssl_with_a_scram_user_fill_the_ledger(
    secure_kafka: SecureKafka, tmp_path: Path, sqlite_url: str
) -> None:
    upgrade(sqlite_url)
    path, event_ids = _enrolments_file(tmp_path, 4)
    env = service_env(secure_kafka.settings(), sqlite_url)

    published = run_recon(env, "publish", "--subject", "enrolment", str(path))
    ingested = run_recon(env, "ingest", "--idle-exit", "3")

    assert published.returncode == 0, published.stderr
    assert "4 records sent to enrolments" in published.stdout
    assert ingested.returncode == 0, ingested.stderr
    with create_engine(sqlite_url).connect() as conn:
        stored = [row[0] for row in conn.execute(text("select event_id from enrolment_events"))]
    assert sorted(stored) == sorted(event_ids)


def test_a_wrong_scram_password_is_one_recon_line_naming_the_fix_and_never_the_password(
    secure_kafka: SecureKafka, tmp_path: Path, sqlite_url: str
) -> None:
    upgrade(sqlite_url)
    path, _ = _enrolments_file(tmp_path, 1)
    wrong = "Wr0ng-" + secrets.token_hex(8)
    env = service_env(secure_kafka.settings(password=wrong), sqlite_url)

    # Both at once: each waits out the client's bootstrap timeout before it gives up.
    commands = {
        "publish": ["publish", "--subject", "enrolment", str(path)],
        "ingest": ["ingest", "--idle-exit", "3"],
    }
    running = {name: start_recon(env, *args) for name, args in commands.items()}
    results = {
        name: (process.communicate(timeout=180), process.returncode) for name, process in running.items()
    }

    for name, ((stdout, stderr), returncode) in results.items():
        assert returncode != 0, name
        recon_lines = [line for line in stderr.splitlines() if line.startswith("recon:")]
        assert len(recon_lines) == 1, (name, stderr)
        assert f"user '{USER}'" in recon_lines[0] and "RECON_KAFKA_SASL_PASSWORD" in recon_lines[0]
        assert wrong not in stdout + stderr and secure_kafka.password not in stdout + stderr
    publish_err = results["publish"][0][1]
    assert publish_err.strip().count("\n") == 0, publish_err  # the CLI itself: that line and nothing else


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
