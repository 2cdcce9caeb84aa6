"""Composition root of the reconcile service: real adapters wired once, nothing built at import time."""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
from importlib.metadata import version
from typing import Any

from recon import metrics
from recon.avro import SchemaCatalogue
from recon.clock import Clock, SystemClock
from recon.errors import ConfigError
from recon.http import serve_if_enabled
from recon.kafka.clients import make_consumer, make_producer
from recon.kafka.outbox import OutboxRelay
from recon.ledger import Ledger, create_engine_for
from recon.runtime import settle_after_start
from recon.settings import Settings
from reconcile import status_page
from reconcile.domain import ThresholdPolicy, Thresholds
from reconcile.service import ALERT, ReconcileService
from reconcile.store import ReconcileStore


def threshold_policy(settings: Settings) -> ThresholdPolicy:
    """``alert_thresholds`` from the settings: a ``default`` table and one table per agreement id."""
    raw: dict[str, dict[str, Any]] = dict(settings.alert_thresholds)
    try:
        defaults = Thresholds(**raw.pop("default", {}))
        per_agreement = {aid: dataclasses.replace(defaults, **values) for aid, values in raw.items()}
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"alert_thresholds: {exc}: fix the [alert_thresholds] tables in the config file "
            "(threshold names and meanings are in docs/reconciliation.md)"
        ) from None
    return ThresholdPolicy(defaults=defaults, per_agreement=per_agreement)


def build_store(settings: Settings) -> tuple[Ledger, ReconcileStore]:
    engine = create_engine_for(settings.database_url_with_password())
    holder = f"{socket.gethostname()}-{os.getpid()}"
    return Ledger(engine), ReconcileStore(engine, holder=holder)


def run(settings: Settings, *, stop: threading.Event, idle_exit: float | None, rebuild: bool = False) -> None:
    """Build the service, serve /metrics, /healthz, /readyz and the status page at /, run it.

    ``rebuild`` first forgets every folded state, so the events are folded again from the ledger
    (after a change to how coverage is derived, or to fill rows a migration added)."""
    service = build(settings)
    if rebuild:
        service.rebuild()
    settle_after_start()
    metrics.BUILD_INFO.info({"version": version("rentan-recon"), "service": "reconcile"})

    def page() -> tuple[str, bytes]:
        last = service.last
        figures, agreements, alerts = (
            (last.figures, last.agreements, list(last.alerts.values())) if last else ({}, {}, [])
        )
        html = status_page.render(
            figures,
            agreements,
            alerts,
            generated_at_ms=SystemClock().now_ms(),
            utc_offset_minutes=settings.utc_offset_minutes,
        )
        return status_page.CONTENT_TYPE, html.encode()

    server = serve_if_enabled(
        settings.http_host,
        settings.reconcile_http_port,
        readiness=service.health.readiness,
        routes={"/": page},
    )
    try:
        service.run(stop=stop, idle_exit=idle_exit)
    finally:
        if server is not None:
            server.close()


def build(settings: Settings, *, clock: Clock | None = None) -> ReconcileService:
    clock = clock or SystemClock()
    ledger, store = build_store(settings)
    catalogue = SchemaCatalogue.load(settings.schemas_dir, max_message_bytes=settings.max_message_bytes)
    client_id = f"recon-reconcile-{store.holder}"
    relay = OutboxRelay(
        ledger=ledger,
        producer=make_producer(settings, client_id=client_id),
        make_scanner=lambda: make_consumer(settings, group_id=None, client_id=f"{client_id}-scan"),
        kind=ALERT,
        topic=settings.topic_alerts,
        clock=clock,
    )

    def encode_alert(record: dict[str, Any]) -> bytes:
        return catalogue.encode("alert", record)

    return ReconcileService(
        settings=settings,
        store=store,
        ledger=ledger,
        relay=relay,
        encode_alert=encode_alert,
        clock=clock,
        policy=threshold_policy(settings),
    )
