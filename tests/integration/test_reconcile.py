"""Reconciliation end to end on the real broker: events in, alerts out, through the real services."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from kafka import KafkaProducer

from factories import NIK_KEY, agreement_record, enrolment_record, valid_nik
from recon.avro import SchemaCatalogue
from recon.clock import SystemClock
from recon.kafka.clients import make_consumer, make_producer
from recon.kafka.outbox import OUTBOX_ID_HEADER, OutboxRelay
from recon.ledger import Batch, Ledger, OutboxMessage, create_engine_for, upgrade
from recon.settings import load_settings
from support import consume_all, produce, run_recon, service_env

TODAY = datetime.now(UTC).date()
MONTH_START = TODAY.replace(day=1)
NOW_MS = int(datetime.now(UTC).timestamp() * 1000)


@pytest.fixture(scope="module")
def catalogue() -> SchemaCatalogue:
    return SchemaCatalogue.load(load_settings().schemas_dir)


def _agreement(catalogue: SchemaCatalogue, quota: int) -> tuple[bytes, bytes]:
    record = agreement_record(
        agreement_id="PKS-TEST",
        quota_workers=quota,
        budget_rupiah=10**12,
        ramp=[],
        period_start=date(TODAY.year, 1, 1),
        period_end=date(TODAY.year, 12, 31),
    )
    return b"PKS-TEST", catalogue.encode("agreement", record)


def _enrol(catalogue: SchemaCatalogue, serial: int, event_type: str = "ENROLLED") -> tuple[bytes, bytes]:
    nik = valid_nik(serial=serial)
    record = enrolment_record(
        event_id=f"{event_type}-{serial}",
        event_type=event_type,
        nik=nik,
        agreement_id="PKS-TEST",
        occurred_at=NOW_MS - 60_000,
        coverage_start=MONTH_START,
    )
    return nik.encode(), catalogue.encode("enrolment", record)


def _alerts(topic_names: Any, catalogue: SchemaCatalogue, expect: int) -> list[dict[str, Any]]:
    records = consume_all(topic_names.bootstrap, topic_names.alerts, expect=expect, timeout=30)
    return [catalogue.decode(r.value, "alert").record for r in records]


def _run_both(env: dict[str, str]) -> None:
    for command in ("ingest", "reconcile"):
        result = run_recon(env, command, "--idle-exit", "2")
        assert result.returncode == 0, result.stderr[-2000:]


def test_over_quota_fires_then_resolves_on_the_alerts_topic_and_restarts_resend_nothing(
    topic_names: Any, sqlite_url: str, catalogue: SchemaCatalogue
) -> None:
    upgrade(sqlite_url)
    thresholds = {"default": {"resolve_after_ms": 0}}
    env = service_env(
        topic_names.overrides(),
        sqlite_url,
        alert_thresholds=json.dumps(thresholds),
        reconcile_full_pass_seconds=1,
    )
    produce(topic_names.bootstrap, topic_names.agreements, [_agreement(catalogue, quota=3)])
    produce(topic_names.bootstrap, topic_names.enrolments, [_enrol(catalogue, i) for i in range(1, 5)])

    _run_both(env)

    fired = [a for a in _alerts(topic_names, catalogue, expect=1) if a["rule"] == "over_quota"]
    assert len(fired) == 1
    alert = fired[0]
    assert alert["state"] == "FIRING" and alert["agreement_id"] == "PKS-TEST"
    assert alert["observed"] == 4 and alert["expected"] == 3
    assert "PKS-TEST" in alert["message"] and valid_nik(serial=1) not in alert["message"]

    # A restarted reconciler with nothing new neither loses nor re-sends the alert.
    assert run_recon(env, "reconcile", "--idle-exit", "2").returncode == 0
    again = [a for a in _alerts(topic_names, catalogue, expect=1) if a["rule"] == "over_quota"]
    assert again == fired

    produce(
        topic_names.bootstrap, topic_names.enrolments, [_enrol(catalogue, i, "TERMINATED") for i in (1, 2)]
    )
    _run_both(env)

    over_quota = [a for a in _alerts(topic_names, catalogue, expect=2) if a["rule"] == "over_quota"]
    assert [a["state"] for a in over_quota] == ["FIRING", "RESOLVED"]
    assert over_quota[1]["alert_id"] == over_quota[0]["alert_id"] and over_quota[1]["resolved_at"] is not None
    status = run_recon(env, "status", "--format", "json")
    (row,) = json.loads(status.stdout)
    assert row["agreement_id"] == "PKS-TEST" and row["active"] == 2 and row["quota"] == 3

    # Folding everything again from the stored events gives the same figures and re-sends nothing.
    assert run_recon(env, "reconcile", "--rebuild", "--idle-exit", "2").returncode == 0
    assert json.loads(run_recon(env, "status", "--format", "json").stdout) == [row]
    assert [a for a in _alerts(topic_names, catalogue, expect=2) if a["rule"] == "over_quota"] == over_quota


def test_outbox_relay_recovers_rows_sent_before_a_crash_and_sends_each_row_once(
    topic_names: Any, sqlite_url: str
) -> None:
    upgrade(sqlite_url)
    settings = load_settings(overrides={**topic_names.overrides(), "nik_hash_key": NIK_KEY.decode()})
    ledger = Ledger(create_engine_for(sqlite_url))
    messages = [
        OutboxMessage(
            kind="alert",
            topic=topic_names.alerts,
            key=f"k{i}".encode(),
            value=f"v{i}".encode(),
            headers=(),
            source=None,
        )
        for i in range(5)
    ]
    ledger.write_batch("g", Batch(outbox=messages))
    pending = ledger.pending_outbox("alert", 10)
    # A crash after the first two were published but before they were marked sent:
    producer = KafkaProducer(bootstrap_servers=topic_names.bootstrap.split(","))
    for row in pending[:2]:
        producer.send(
            topic_names.alerts,
            key=row.message.key,
            value=row.message.value,
            headers=[(OUTBOX_ID_HEADER, str(row.id).encode())],
        ).get(timeout=30)
    producer.close()
    relay = OutboxRelay(
        ledger=ledger,
        producer=make_producer(settings, client_id="t"),
        make_scanner=lambda: make_consumer(settings, group_id=None, client_id="t-scan"),
        kind="alert",
        topic=topic_names.alerts,
        clock=SystemClock(),
    )

    assert relay.recover() == 2
    assert relay.flush() == 3
    assert relay.flush() == 0

    values = sorted(r.value for r in consume_all(topic_names.bootstrap, topic_names.alerts, expect=5))
    assert values == [f"v{i}".encode() for i in range(5)], "every row on the topic exactly once"
    assert ledger.pending_outbox("alert", 10) == []
