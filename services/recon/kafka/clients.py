"""kafka-python clients configured from Settings, in one place.

Nothing connects until a client is built; building one is the caller's explicit act.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from recon.errors import ConfigError, PermanentFault
from recon.settings import ENV_PREFIX, Settings

T = TypeVar("T")
# One bootstrap attempt's wait (kafka-python's bootstrap_timeout_ms), inside the retry budget.
_ATTEMPT_MS = 10_000
_MIN_ATTEMPT_MS = 1_000


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
        if not settings.kafka_sasl_username or settings.kafka_sasl_password is None:
            raise ConfigError(
                f"{ENV_PREFIX}KAFKA_SECURITY_PROTOCOL is {settings.kafka_security_protocol} but "
                f"{ENV_PREFIX}KAFKA_SASL_USERNAME or {ENV_PREFIX}KAFKA_SASL_PASSWORD is not set: set both"
            )
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
        config["sasl_plain_username"] = settings.kafka_sasl_username
        config["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_security_protocol.endswith("SSL"):
        config["ssl_check_hostname"] = True  # the certificate must name the host we dialled
        if settings.kafka_ssl_cafile is not None:
            if not settings.kafka_ssl_cafile.is_file():
                raise ConfigError(
                    f"{ENV_PREFIX}KAFKA_SSL_CAFILE {settings.kafka_ssl_cafile} is not a readable file: "
                    "point it at the PEM bundle of the CA that signed the brokers' certificates"
                )
            config["ssl_cafile"] = str(settings.kafka_ssl_cafile)
    return config


def make_consumer(settings: Settings, *, group_id: str | None, client_id: str, **extra: Any) -> Any:
    """A consumer that never commits on its own: the database holds the offsets that count."""
    from kafka import KafkaConsumer

    config = client_config(settings)
    return _connect(
        settings,
        "connect a consumer to Kafka",
        lambda bootstrap_timeout_ms: KafkaConsumer(
            **config,
            bootstrap_timeout_ms=bootstrap_timeout_ms,
            group_id=group_id,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            allow_auto_create_topics=False,
            max_partition_fetch_bytes=max(1_048_576, settings.max_message_bytes),
            **extra,
        ),
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
    config = client_config(settings)
    return _connect(
        settings,
        "connect a producer to Kafka",
        lambda bootstrap_timeout_ms: KafkaProducer(
            **config, bootstrap_timeout_ms=bootstrap_timeout_ms, client_id=client_id, **options
        ),
    )


def _connect(settings: Settings, what: str, build: Callable[[int], T]) -> T:
    """Build a client within the retry budget. A broker not reachable yet is retried, then one
    PermanentFault line names the address and the fix; a refused login or certificate is a
    PermanentFault at the end of the attempt that met it (retrying cannot cure it).

    kafka-python 3 bootstraps in the constructor (its broker version check needs a connection and a
    metadata answer) and keeps trying, a refused login included, for ``bootstrap_timeout_ms``: 30 s
    by default, however small the budget. So ``build`` gets the wait of each attempt: what is left of
    the budget, at most ``_ATTEMPT_MS`` (a refused login is then known after that long even under a
    long budget) and at least ``_MIN_ATTEMPT_MS`` (a budget of 0 still makes one real attempt).
    """
    from recon.retry import broker_call

    _keep_data_read_before_a_close()
    deadline = time.monotonic() + settings.retry_budget_seconds

    def attempt() -> T:
        left_ms = int((deadline - time.monotonic()) * 1000)
        with explain_refused_connections(settings):
            return build(min(_ATTEMPT_MS, max(_MIN_ATTEMPT_MS, left_ms)))

    return broker_call(what, attempt, budget_seconds=settings.retry_budget_seconds)


def _keep_data_read_before_a_close() -> None:
    """Make kafka-python 3.0.12 read the answer a broker sends just before it closes the connection.

    A broker refusing a SASL login sends its SaslAuthenticate error and closes the connection at once
    (after ``connection.failed.authentication.delay.ms``), so one read gets both. The library's
    transports then return the bytes together with a "socket disconnected" error, and the reader
    drops the bytes: the refusal is never seen, and a wrong password looks like a broker that is
    down. Here the bytes of such a read are handed on first; the closed socket is still readable,
    so the next read reports the close as before. Harmless where the library already does this.
    """
    from kafka.net import transport

    for cls in (transport.KafkaTCPTransport, transport.KafkaSSLTransport):
        read = cls.__dict__.get("_sock_recv")
        if read is None or getattr(read, "_recon_keeps_data", False):
            continue

        def sock_recv(self: Any, _read: Callable[[Any], tuple[bytes, Any]] = read) -> tuple[bytes, Any]:
            data, error = _read(self)
            return (data, None) if data and error is not None else (data, error)

        sock_recv._recon_keeps_data = True  # type: ignore[attr-defined]
        cls._sock_recv = sock_recv


class _Refusals(logging.Handler):
    """Remembers the first SASL login or TLS verification refusal kafka-python logs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.refusal: BaseException | None = None

    def emit(self, record: logging.LogRecord) -> None:
        from kafka.errors import SaslAuthenticationFailedError

        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            # a TLS failure arrives wrapped (KafkaConnectionError raised while handling the SSLError)
            for cause in (arg, getattr(arg, "__context__", None)):
                if self.refusal is None and isinstance(cause, SaslAuthenticationFailedError | ssl.SSLError):
                    self.refusal = cause


@contextlib.contextmanager
def explain_refused_connections(settings: Settings) -> Iterator[None]:
    """Turn a client's failed bootstrap into a one-line PermanentFault when the broker refused the login
    or the certificate. kafka-python retries those until its bootstrap timeout and then raises a bare
    KafkaTimeoutError, having only logged the cause: this watches its log for it. Retrying cannot cure
    a wrong password or CA, so no retry policy should see a transient fault. Other failures pass as they
    are (a broker that is merely down stays transient)."""
    from kafka.errors import KafkaError

    if settings.kafka_security_protocol == "PLAINTEXT":
        yield
        return
    watcher, logger = _Refusals(), logging.getLogger("kafka")
    logger.addHandler(watcher)
    try:
        yield
    except KafkaError as exc:
        if watcher.refusal is None:
            raise
        raise PermanentFault(_refusal_message(settings, watcher.refusal)) from exc
    finally:
        logger.removeHandler(watcher)


def _refusal_message(settings: Settings, refusal: BaseException) -> str:
    where = settings.kafka_bootstrap_servers
    if isinstance(refusal, ssl.SSLError):
        return (
            f"Kafka at {where} presented a certificate no trusted CA signed ({type(refusal).__name__}): "
            f"set {ENV_PREFIX}KAFKA_SSL_CAFILE to the CA bundle that signed the brokers' certificates"
        )
    return (
        f"Kafka at {where} refused the {settings.kafka_sasl_mechanism} login of user "
        f"{settings.kafka_sasl_username!r}: check {ENV_PREFIX}KAFKA_SASL_USERNAME and "
        f"{ENV_PREFIX}KAFKA_SASL_PASSWORD (and {ENV_PREFIX}KAFKA_SASL_MECHANISM) against the broker's users"
    )


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
