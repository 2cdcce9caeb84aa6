"""Composition root of the ingest service: real adapters wired once, nothing built at import time."""

from __future__ import annotations

import os
import socket
import threading
from importlib.metadata import version

from ingest.pipeline import Processor
from ingest.service import IngestService
from ingest.writer_process import InProcessWrites, LedgerWriterProcess
from recon import metrics
from recon.avro import SchemaCatalogue
from recon.clock import Clock, SystemClock
from recon.http import serve_if_enabled
from recon.kafka.clients import make_consumer, make_producer
from recon.kafka.outbox import OutboxRelay
from recon.ledger import Ledger, create_engine_for
from recon.runtime import settle_after_start
from recon.settings import Settings

DEAD_LETTER = "dead_letter"


def subjects_by_topic(settings: Settings) -> dict[str, str]:
    return {
        settings.topic_enrolments: "enrolment",
        settings.topic_claims: "claim",
        settings.topic_agreements: "agreement",
        settings.topic_branch_totals: "branch-totals",
    }


def run(settings: Settings, *, stop: threading.Event, idle_exit: float | None) -> None:
    """Build the service, serve its /metrics, /healthz and /readyz, and run it until it stops."""
    service = build(settings)
    metrics.BUILD_INFO.info({"version": version("rentan-recon"), "service": "ingest"})
    settle_after_start()
    server = serve_if_enabled(
        settings.http_host, settings.ingest_http_port, readiness=service.health.readiness
    )
    try:
        service.run(stop=stop, idle_exit=idle_exit)
    finally:
        if server is not None:
            server.close()


def build(settings: Settings, *, clock: Clock | None = None) -> IngestService:
    clock = clock or SystemClock()
    client_id = f"recon-ingest-{socket.gethostname()}-{os.getpid()}"
    url = settings.database_url_with_password()
    ledger = Ledger(create_engine_for(url))
    catalogue = SchemaCatalogue.load(settings.schemas_dir, max_message_bytes=settings.max_message_bytes)
    consumer = make_consumer(
        settings,
        group_id=settings.consumer_group,
        client_id=client_id,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,  # a rebalance reaches every member within a second
        max_poll_interval_ms=300_000,
    )
    relay = OutboxRelay(
        ledger=ledger,
        producer=make_producer(settings, client_id=f"{client_id}-dlq"),
        make_scanner=lambda: make_consumer(settings, group_id=None, client_id=f"{client_id}-dlq-scan"),
        kind=DEAD_LETTER,
        topic=settings.topic_dead_letters,
        clock=clock,
    )
    processor = Processor(
        catalogue=catalogue,
        subjects_by_topic=subjects_by_topic(settings),
        dead_letter_topic=settings.topic_dead_letters,
        max_message_bytes=settings.max_message_bytes,
    )
    return IngestService(
        settings=settings,
        ledger=ledger,
        consumer=consumer,
        processor=processor,
        relay=relay,
        clock=clock,
        writes=LedgerWriterProcess(url) if settings.ingest_writer == "process" else InProcessWrites(ledger),
    )
