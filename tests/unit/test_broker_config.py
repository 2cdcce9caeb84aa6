"""The local broker's generated configuration, and its bookkeeping, without starting anything."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import free_ports
from recon.broker import (
    KAFKA_POM,
    BrokerError,
    LocalBroker,
    SaslSsl,
    fetch_jars,
    kafka_version,
    render_properties,
    sasl_ssl_in,
    server_properties,
)


def parse(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_listeners_are_on_loopback_only_with_the_given_ports(tmp_path: Path) -> None:
    props = parse(
        render_properties(LocalBroker(home=tmp_path, port=19192, controller_port=19193).properties())
    )

    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19192,CONTROLLER://127.0.0.1:19193"
    assert props["advertised.listeners"] == props["listeners"]
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:19193"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert "0.0.0.0" not in render_properties(props)


def test_it_is_one_combined_kraft_node_with_single_replicas(tmp_path: Path) -> None:
    props = server_properties(port=9092, controller_port=9093, data_dir=tmp_path / "data")

    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["log.dirs"] == str(tmp_path / "data")
    assert props["auto.create.topics.enable"] == "false"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    replication = {k: v for k, v in props.items() if "replication.factor" in k or k.endswith("isr")}
    assert replication and set(replication.values()) == {"1"}
    assert "controller.quorum.voters" not in props  # --standalone formatting forbids it


def test_defaults_are_the_usual_ports_and_an_absolute_home() -> None:
    broker = LocalBroker()

    assert (broker.port, broker.controller_port, broker.bootstrap) == (9092, 9093, "127.0.0.1:9092")
    assert broker.home.is_absolute() and broker.home.parts[-2:] == (".recon", "broker")


def test_backslashes_in_values_are_escaped_for_java() -> None:
    assert render_properties({"log.dirs": r"C:\kafka"}).splitlines()[-1] == r"log.dirs=C:\\kafka"


def test_the_kafka_version_comes_from_the_pom(tmp_path: Path) -> None:
    assert kafka_version(KAFKA_POM) == "4.1.1"
    broken = tmp_path / "pom.xml"
    broken.write_text("<project/>")
    with pytest.raises(BrokerError, match=r"kafka\.version"):
        kafka_version(broken)


def test_a_stale_pid_file_means_not_running(tmp_path: Path) -> None:
    broker = LocalBroker(home=tmp_path)
    broker.pid_file.write_text(f"{os.getpid()}\n")  # alive, but not a Kafka of this home

    assert broker.status().running is False
    assert broker.stop() is False
    assert not broker.pid_file.exists()


def test_a_missing_tool_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no mvn, no java

    with pytest.raises(BrokerError, match=r"^java not found on PATH: run scripts/bootstrap\.sh"):
        port, controller_port = free_ports(2)
        LocalBroker(home=tmp_path / "home", port=port, controller_port=controller_port).start()
    with pytest.raises(BrokerError, match=r"^mvn not found on PATH: .*apt-get install -y maven"):
        fetch_jars(cache_root=tmp_path / "cache")


# --- the opt-in SASL_SSL/SCRAM listener ---


def _secured(tmp_path: Path) -> LocalBroker:
    users = {"recon": "pw-recon-123", "other": "pw-other-456"}
    return LocalBroker(
        home=tmp_path, port=19192, controller_port=19193, security=SaslSsl(port=19194, users=users)
    )


def test_sasl_ssl_is_an_extra_loopback_listener_and_plaintext_still_carries_the_cluster(
    tmp_path: Path,
) -> None:
    props = parse(render_properties(_secured(tmp_path).properties()))

    sasl = "SASL_SSL://127.0.0.1:19194"
    assert props["listeners"] == f"PLAINTEXT://127.0.0.1:19192,CONTROLLER://127.0.0.1:19193,{sasl}"
    assert props["advertised.listeners"].endswith(f",{sasl}")
    assert props["listener.security.protocol.map"].split(",")[-1] == "SASL_SSL:SASL_SSL"
    assert (props["inter.broker.listener.name"], props["controller.listener.names"]) == (
        "PLAINTEXT",
        "CONTROLLER",
    )
    assert "0.0.0.0" not in props["listeners"]


def test_sasl_ssl_listener_takes_scram_sha_512_and_pem_stores_in_the_home(tmp_path: Path) -> None:
    broker = _secured(tmp_path)
    props = broker.properties()

    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    jaas = props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    assert jaas == "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    assert props["listener.name.sasl_ssl.ssl.keystore.type"] == "PEM"
    assert props["listener.name.sasl_ssl.ssl.truststore.type"] == "PEM"
    assert props["listener.name.sasl_ssl.ssl.truststore.location"] == str(broker.ca_file)
    assert Path(props["listener.name.sasl_ssl.ssl.keystore.location"]).parent == broker.tls_dir
    assert broker.tls_dir.parent == broker.home


def test_without_security_there_is_no_sasl_or_tls_configuration(tmp_path: Path) -> None:
    props = LocalBroker(home=tmp_path).properties()

    assert not [key for key in props if "sasl" in key or "ssl" in key]


def test_scram_passwords_stay_out_of_reprs_and_the_properties(tmp_path: Path) -> None:
    broker = _secured(tmp_path)

    for text in (repr(broker), repr(broker.security), render_properties(broker.properties())):
        assert "pw-recon-123" not in text and "pw-other-456" not in text


@pytest.mark.parametrize("users", [{}, {"bad,name": "pw"}, {"recon": ""}, {"recon": "with]bracket"}])
def test_scram_users_that_storage_tool_cannot_parse_are_refused_with_the_fix(users: dict[str, str]) -> None:
    with pytest.raises(BrokerError) as raised:
        SaslSsl(port=19194, users=users)

    message = str(raised.value)
    assert "\n" not in message and ("choose another" in message or "at least one user" in message)
    assert "with]bracket" not in message


def test_a_sasl_ssl_listener_without_stores_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="needs a keystore and a truststore"):
        server_properties(port=1, controller_port=2, data_dir=tmp_path, sasl_ssl_port=3)


# --- the SCRAM users a home keeps (recon broker start --security sasl-ssl) ---


def test_a_new_home_gets_one_user_with_a_random_password_that_storage_tool_can_take(tmp_path: Path) -> None:
    first = sasl_ssl_in(tmp_path, port=19194, user="recon")
    second = sasl_ssl_in(tmp_path, port=19194, user="recon")

    assert list(first.users) == ["recon"] and first.bootstrap == "127.0.0.1:19194"
    assert len(first.users["recon"]) >= 24
    assert first.users != second.users  # nothing stored until the storage is formatted with it


def test_a_formatted_home_gives_back_its_users_and_refuses_another_name(tmp_path: Path) -> None:
    broker = LocalBroker(home=tmp_path)
    broker.scram_file.write_text(json.dumps({"users": {"recon": "pw-recon-123"}}))

    assert sasl_ssl_in(tmp_path, port=19194, user="recon").users == {"recon": "pw-recon-123"}
    with pytest.raises(BrokerError, match=r"has the SCRAM user\(s\) recon, .*pass --user recon") as raised:
        sasl_ssl_in(tmp_path, port=19194, user="someone")
    assert "pw-recon-123" not in str(raised.value)


def test_storage_formatted_without_scram_users_is_refused_before_anything_starts(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "meta.properties").write_text("node.id=1\n")  # a PLAINTEXT home, stopped

    with pytest.raises(BrokerError, match=r"formatted without SCRAM users.*use a new --home"):
        _secured(tmp_path).start()


def test_other_users_than_the_formatted_ones_are_refused_without_showing_either(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "meta.properties").write_text("node.id=1\n")
    LocalBroker(home=tmp_path).scram_file.write_text(json.dumps({"users": {"recon": "pw-formatted-9"}}))

    with pytest.raises(BrokerError, match=r"fixed when its storage was formatted") as raised:
        _secured(tmp_path).start()
    assert "pw-formatted-9" not in str(raised.value) and "pw-recon-123" not in str(raised.value)


def test_listeners_are_read_from_the_home_configuration(tmp_path: Path) -> None:
    broker = _secured(tmp_path)
    broker.properties_file.write_text(render_properties(broker.properties()))

    assert broker.listeners() == {"PLAINTEXT": "127.0.0.1:19192", "SASL_SSL": "127.0.0.1:19194"}
    assert LocalBroker(home=tmp_path / "none").listeners() == {}


def test_an_unreadable_scram_file_means_no_users(tmp_path: Path) -> None:
    broker = LocalBroker(home=tmp_path)
    assert broker.scram_users() is None
    broker.scram_file.write_text("{not json")
    assert broker.scram_users() is None


def test_the_printed_client_settings_are_settings_the_service_reads(tmp_path: Path) -> None:
    from recon.cli.broker import client_settings
    from recon.settings import Settings

    broker = _secured(tmp_path)
    printed = client_settings(broker, broker.security, "recon")  # type: ignore[arg-type]
    settings = Settings(**{name.removeprefix("RECON_").lower(): value for name, value in printed.items()})

    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_bootstrap_servers == "127.0.0.1:19194"  # the SASL_SSL port, not PLAINTEXT
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == "pw-recon-123"
    assert settings.kafka_ssl_cafile == broker.ca_file
