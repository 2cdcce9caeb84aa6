"""Reconciliation end to end on the real broker: events in, alerts out, through the real services."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
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


def sent_before_a_crash(bootstrap: str, topic: str, rows: Sequence[Any]) -> None:
    """What a relay did before it died: the rows on the topic with their outbox ids, never marked sent."""
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","))
    try:
        for row in rows:
            producer.send(
                topic,
                key=row.message.key,
                value=row.message.value,
                headers=[(OUTBOX_ID_HEADER, str(row.id).encode())],
            ).get(timeout=30)
    finally:
        producer.close()


def real_relay(ledger: Ledger, settings: Any, kind: str, topic: str, name: str) -> OutboxRelay:
    """A relay as a service builds one: its own producer, a group-less scanner for recovery."""
    return OutboxRelay(
        ledger=ledger,
        producer=make_producer(settings, client_id=name),
        make_scanner=lambda: make_consumer(settings, group_id=None, client_id=f"{name}-scan"),
        kind=kind,
        topic=topic,
        clock=SystemClock(),
    )


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
    sent_before_a_crash(topic_names.bootstrap, topic_names.alerts, pending[:2])  # published, never marked
    relay = real_relay(ledger, settings, "alert", topic_names.alerts, "t")

    assert relay.recover() == 2
    assert relay.flush() == 3
    assert relay.flush() == 0

    values = sorted(r.value for r in consume_all(topic_names.bootstrap, topic_names.alerts, expect=5))
    assert values == [f"v{i}".encode() for i in range(5)], "every row on the topic exactly once"
    assert ledger.pending_outbox("alert", 10) == []


def test_a_members_unmarked_dead_letter_below_anothers_marked_one_is_found_not_resent(
    topic_names: Any, sqlite_url: str
) -> None:
    """Two ingest members share the dead-letter topic. One sends its row and dies before marking it;
    the other sends and marks its own after it, at a higher offset. The dead member's partitions'
    new owner must still find the copy (a scan from the highest marked offset would not)."""
    upgrade(sqlite_url)
    settings = load_settings(overrides={**topic_names.overrides(), "nik_hash_key": NIK_KEY.decode()})
    ledger = Ledger(create_engine_for(sqlite_url))

    def letter(partition: int) -> OutboxMessage:  # one key: both land in one dead-letter partition
        return OutboxMessage(
            kind="dead_letter",
            topic=topic_names.dead_letters,
            key=b"same-key",
            value=f"from enrolments[{partition}]".encode(),
            headers=(),
            source=(topic_names.enrolments, partition, 7),
        )

    def member(name: str) -> OutboxRelay:
        return real_relay(ledger, settings, "dead_letter", topic_names.dead_letters, name)

    ledger.write_batch("g", Batch(outbox=[letter(1)]))
    ledger.write_batch("g", Batch(outbox=[letter(0)]))
    (dying,) = ledger.pending_outbox("dead_letter", 10, sources=[(topic_names.enrolments, 1)])
    sent_before_a_crash(topic_names.bootstrap, topic_names.dead_letters, [dying])  # by enrolments[1]'s owner
    alive = member("alive")
    assert alive.flush(sources=[(topic_names.enrolments, 0)]) == 1  # sent after it, and marked
    heir = member("heir")  # given enrolments[1] by the rebalance

    assert heir.recover(sources=[(topic_names.enrolments, 1)]) == 1
    assert heir.flush(sources=[(topic_names.enrolments, 1)]) == 0
    alive.close()
    heir.close()

    values = sorted(r.value for r in consume_all(topic_names.bootstrap, topic_names.dead_letters, expect=2))
    assert values == [b"from enrolments[0]", b"from enrolments[1]"], "each dead letter exactly once"
    assert ledger.pending_outbox("dead_letter", 10) == []


# --- the reconciler's memory: row counts grouped by the database, kept current at fold time --------


def _events(round_: int) -> list[Any]:
    """Enrolments, payments and terminations of 40 workers under two agreements (a province and a
    city in it), some funded by both; each round adds payments and changes a few workers."""
    from recon.domain.events import EnrolmentEvent, EnrolmentType, Lineage, Programme
    from reconcile.domain.dates import month_label

    year_start = date(TODAY.year, 1, 1)
    out = []
    for w in range(40):
        for aid in ("PKS-CITY", "PKS-PROV") if w % 5 == 0 else ("PKS-CITY" if w % 2 else "PKS-PROV",):
            start = date(TODAY.year - 1, 1 + w % 12, 1 + w % 27) if w % 3 else year_start
            kind = EnrolmentType.ENROLLED
            paid: tuple[str, ...] = ()
            if round_ and w % (round_ + 1) == 0:
                kind = EnrolmentType.TERMINATED if w % 7 == 0 else EnrolmentType.CONTRIBUTION_PAID
                first = start.year * 12 + start.month - 1
                paid = tuple(month_label(first + m) for m in range(round_ * 3 + w % 4))
            out.append(
                EnrolmentEvent(
                    event_id=f"ev-{round_}-{w}-{aid}",
                    event_type=kind,
                    occurred_at_ms=NOW_MS - (40 - w) * 60_000 - (3 - round_) * 3_600_000,
                    branch_code="PALU",
                    agreement_id=aid,
                    worker_key=f"wk-{w:04d}",
                    nik_region=("7271", "7206", "7371")[w % 3],
                    programmes=(Programme.JKK, Programme.JKM),
                    declared_income=1_000_000,
                    coverage_start=start,
                    coverage_end=None,
                    paid_months=paid,
                    amount=16_800 * len(paid),
                    termination_reason="moved" if kind is EnrolmentType.TERMINATED else None,
                    source_system=None,
                    lineage=Lineage("enrolments", 0, round_ * 1000 + w, "0" * 16, 1),
                )
            )
    return out


def _two_agreements() -> list[Any]:
    from recon.domain.events import Agreement, BudgetSource, FunderLevel, Programme

    return [
        Agreement(
            agreement_id=aid,
            version=1,
            funder_name=name,
            funder_level=level,
            region_code=region,
            branch_code="PALU",
            budget_source=BudgetSource.APBD,
            programmes=(Programme.JKK, Programme.JKM),
            quota_workers=30,
            budget_rupiah=30 * 16_800 * 12,
            monthly_premium_rupiah=16_800,
            period_start=date(TODAY.year, 1, 1),
            period_end=date(TODAY.year, 12, 31),
            ramp=(),
            target_population=None,
            lineage=None,
        )
        for aid, name, level, region in (
            ("PKS-CITY", "Pemerintah Kota Palu", FunderLevel.CITY, "7271"),
            ("PKS-PROV", "Pemerintah Provinsi Sulawesi Tengah", FunderLevel.PROVINCE, "72"),
        )
    ]


def _report(agreement_id: str, as_of: date) -> Any:
    from recon.domain.events import BranchTotals, Lineage

    return BranchTotals(
        event_id=f"bt-{agreement_id}-{as_of}",
        occurred_at_ms=NOW_MS - 3_600_000,
        branch_code="PALU",
        agreement_id=agreement_id,
        as_of=as_of,
        active_workers=10,
        contributions_paid_rupiah=16_800 * 10,
        lineage=Lineage("branch-totals", 0, 1, "0" * 16, 1),
    )


def _service(url: str, holder: str) -> Any:
    from reconcile.domain import ThresholdPolicy
    from reconcile.service import ReconcileService
    from reconcile.store import ReconcileStore

    engine = create_engine_for(url)
    return ReconcileService(
        settings=load_settings(overrides={"database_url": url}),
        store=ReconcileStore(engine, holder=holder),
        ledger=Ledger(engine),
        relay=None,
        encode_alert=None,
        clock=SystemClock(),
        policy=ThresholdPolicy(),
    )


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_row_counts_kept_at_fold_time_equal_a_new_leaders_load_and_the_per_worker_figures(
    store: str, request: pytest.FixtureRequest
) -> None:
    """The reconciler keeps per agreement only how many workers have each compacted row: folded batch
    by batch (agreements arriving after some workers), its counts, double-funding rows and figures
    equal what a new leader loads from the database's GROUP BY, and the figures equal the per-worker
    figures over every stored row."""
    from reconcile.domain import compute_figures, rows_by_agreement
    from reconcile.domain.dates import local_date
    from reconcile.domain.row_counts import count_rows

    url = request.getfixturevalue("sqlite_url" if store == "sqlite" else "fresh_postgres_url")
    upgrade(url)
    ledger = Ledger(create_engine_for(url))
    leader = _service(url, "leader")
    assert leader._store.acquire_lease(NOW_MS)
    leader._load_state(NOW_MS)
    for round_ in range(3):
        ledger.write_batch("g", Batch(enrolments=_events(round_)))
        if round_ == 1:
            ledger.upsert_agreements(_two_agreements())
            ledger.write_batch("g", Batch(branch_totals=[_report("PKS-CITY", TODAY - timedelta(days=75))]))
        leader._drain()
        leader.evaluate(NOW_MS)
    fresh = _service(url, "successor")
    n = fresh._load_state(NOW_MS)
    assert n == leader._counts.workers() == 40 + 8  # every enrolled coverage: 8 workers funded twice
    assert fresh._counts.floor == leader._counts.floor
    # The branch report's date is before today: its agreement is compacted for that date.
    assert fresh._counts.floors == leader._counts.floors == {"PKS-CITY": TODAY - timedelta(days=75)}
    assert {a: r for a, r in leader._counts.rows.items() if r} == fresh._counts.rows
    assert leader._funding == fresh._funding and len(fresh._funding) == 8
    # The database's grouping equals compacting every stored row in Python.
    by_agreement: dict[str, list[Any]] = {}
    for aid, _, row in fresh._store.iter_rows():
        by_agreement.setdefault(aid, []).append(row)
    regions = {"PKS-CITY": "7271", "PKS-PROV": "72"}
    assert fresh._counts.rows == {
        aid: count_rows(rows, regions[aid], fresh._counts.floor_of(aid)) for aid, rows in by_agreement.items()
    }
    assert sum(len(r) for r in fresh._counts.rows.values()) < n  # workers share rows
    as_of = local_date(NOW_MS, fresh._s.utc_offset_minutes)
    agreements = ledger.agreements()
    reports = fresh._store.latest_branch_totals()
    figures = fresh.evaluate(NOW_MS).figures
    assert figures == leader.evaluate(NOW_MS).figures
    assert figures == compute_figures(agreements, by_agreement, as_of, fresh._config, branch_totals=reports)
    assert figures["PKS-CITY"].branch_ledger_active is not None
    assert (
        compute_figures(agreements, rows_by_agreement([]), as_of, fresh._config)
        != fresh.evaluate(NOW_MS).figures
    )
