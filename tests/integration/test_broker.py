"""`recon broker start|stop|status` against a real Kafka of its own (not the session's shared broker).

The tests run in file order on one broker: start, use, stop.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from click.testing import Result
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType
from typer.testing import CliRunner

import recon.cli.broker  # noqa: F401  (registers `broker` on the app)
from conftest import TopicNames, free_ports
from recon.broker import BrokerError, LocalBroker
from recon.cli._app import app
from recon.kafka.topics import ensure_topics
from recon.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    port, controller_port = free_ports(2)
    local = LocalBroker(home=tmp_path_factory.mktemp("broker"), port=port, controller_port=controller_port)
    local.start()
    yield local
    local.stop()


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout


def cli_result(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_start_is_idempotent(broker: LocalBroker) -> None:
    first = broker.status()
    began = time.monotonic()

    code, out = cli("broker", "start", "--home", str(broker.home), "--port", str(broker.port))

    assert code == 0, out
    assert out.strip() == broker.bootstrap
    assert time.monotonic() - began < 5
    assert broker.status().pid == first.pid
    assert broker.pid_file.read_text().strip() == str(first.pid)


def test_status_prints_the_address_and_names_the_listeners(broker: LocalBroker) -> None:
    result = cli_result("broker", "status", "--home", str(broker.home))

    assert (result.exit_code, result.stdout.strip()) == (0, broker.bootstrap)
    assert result.stderr.splitlines() == [f"PLAINTEXT {broker.bootstrap}"]  # no SASL_SSL listener


def test_a_sasl_ssl_start_of_a_running_plaintext_broker_says_what_to_do_and_leaves_it_alone(
    broker: LocalBroker,
) -> None:
    pid = broker.status().pid
    home = str(broker.home)

    result = cli_result("broker", "start", "--home", home, "--security", "sasl-ssl", "--no-topics")

    assert result.exit_code != 0 and result.stdout == ""  # nothing an eval could take for settings
    assert isinstance(result.exception, BrokerError)
    assert str(result.exception) == (
        f"Kafka already runs in {broker.home} (pid {pid}) without a SASL_SSL listener: stop it "
        f"(recon broker stop --home {broker.home}) and start it again with --security sasl-ssl"
    )
    assert broker.status().pid == pid and broker.listeners() == {"PLAINTEXT": broker.bootstrap}


def test_start_created_the_service_topics(broker: LocalBroker) -> None:
    # the CLI start above created them with the settings' names and partition count
    settings = Settings()
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(settings.data_topics())}
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings.topic_agreements, ["cleanup.policy"])]
        )
        existing = set(admin.list_topics())
    finally:
        admin.close()

    assert described == dict.fromkeys(settings.data_topics(), settings.topic_partitions)
    assert {settings.topic_alerts, settings.topic_dead_letters} <= existing
    assert _config_value(configs, settings.topic_agreements, "cleanup.policy") == "compact"
    assert ensure_topics(broker.bootstrap, settings) == []  # idempotent


def test_a_record_round_trips(broker: LocalBroker) -> None:
    topic, payload = "roundtrip", uuid.uuid4().bytes
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}}, wait_for_metadata=True)
    admin.close()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    producer.send(topic, key=b"k", value=payload).get(timeout=30)
    producer.close()

    consumer = KafkaConsumer(
        topic, bootstrap_servers=broker.bootstrap, group_id="roundtrip", auto_offset_reset="earliest"
    )
    values: list[bytes] = []
    deadline = time.monotonic() + 30
    try:
        while not values and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                values += [record.value for record in records]
    finally:
        consumer.close()

    assert values[:1] == [payload]


def test_stop_then_status_says_not_running(broker: LocalBroker) -> None:
    code, _ = cli("broker", "stop", "--home", str(broker.home))
    assert code == 0

    code, out = cli("broker", "status", "--home", str(broker.home))

    assert code == 1
    assert "not running" in out
    assert not broker.pid_file.exists()
    assert broker.stop() is False  # a second stop is a no-op


def _config_value(described: object, topic: str, key: str) -> str:
    """Find one config value in describe_configs' nested answer (resource type -> name -> key -> data)."""
    assert isinstance(described, dict)
    for by_name in described.values():
        if topic in by_name:
            entry = by_name[topic][key]
            return str(entry["value"] if isinstance(entry, dict) else entry)
    raise AssertionError(f"{topic} not in {described}")


@pytest.mark.parametrize("topic_names", [2], indirect=True)
def test_each_test_gets_topics_of_its_own(topic_names: TopicNames, kafka_bootstrap: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(topic_names.all)}
    finally:
        admin.close()

    assert described == dict.fromkeys(topic_names.all, 2)
    assert all(name.startswith(topic_names.prefix) for name in topic_names.all)
    assert topic_names.overrides()["topic_agreements"] == topic_names.agreements
