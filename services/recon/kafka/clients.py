"""kafka-python clients configured from Settings, in one place.

Nothing connects until a client is built; building one is the caller's explicit act.
"""

from __future__ import annotations

from typing import Any

from recon.settings import Settings


def client_config(settings: Settings) -> dict[str, Any]:
    """Connection and security options shared by consumers, producers and admin clients."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers.split(","),
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol.startswith("SASL"):
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
        config["sasl_plain_username"] = settings.kafka_sasl_username
        if settings.kafka_sasl_password is not None:
            config["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_security_protocol.endswith("SSL") and settings.kafka_ssl_cafile is not None:
        config["ssl_cafile"] = str(settings.kafka_ssl_cafile)
    return config


def make_consumer(settings: Settings, *, group_id: str | None, client_id: str, **extra: Any) -> Any:
    """A consumer that never commits on its own: the database holds the offsets that count."""
    from kafka import KafkaConsumer

    return KafkaConsumer(
        **client_config(settings),
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        allow_auto_create_topics=False,
        max_partition_fetch_bytes=max(1_048_576, settings.max_message_bytes),
        **extra,
    )


def make_producer(settings: Settings, *, client_id: str, **extra: Any) -> Any:
    """An idempotent producer that waits for all in-sync replicas: no duplicates, no reordering on retry."""
    from kafka import KafkaProducer

    options: dict[str, Any] = {
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "retries": 5,
        "max_in_flight_requests_per_connection": 5,  # idempotence keeps order with up to 5
        "max_block_ms": 10_000,
        "max_request_size": max(1_048_576, settings.max_message_bytes * 2),
    }
    options.update(extra)
    return KafkaProducer(**client_config(settings), client_id=client_id, **options)
