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
        # kafka-python backs off reconnecting up to 30 s by default: after a broker restart the
        # service would sit idle that long. 2 s keeps recovery prompt at a negligible cost.
        "reconnect_backoff_max_ms": 2000,
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


def close_producer(producer: Any, *, timeout: float) -> bool:
    """Close a producer within ``timeout`` seconds even when the broker is gone. True if every record
    it held was delivered or failed in time; False if some were abandoned.

    kafka-python 3.0's ``close`` gives up at its flush when the broker is away, leaving the sender
    thread running and the producer open, so ``__del__`` (or its atexit hook) tries again at exit and
    prints a traceback after the service's one-line error. Here the sender is then closed without
    sending, and the producer marked closed so nothing retries. Callers only abandon what they can
    send again: outbox rows stay pending until acknowledged.
    """
    from kafka.errors import KafkaError

    try:
        producer.close(timeout=timeout)
        return True
    except KafkaError:
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()
        producer._closed = True  # see above: else kafka-python retries, and prints, at exit
        return False
