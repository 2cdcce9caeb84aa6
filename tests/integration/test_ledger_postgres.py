"""The Ledger contract on PostgreSQL, where event tables go through COPY into a staging table."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import DataError, IntegrityError

from recon.errors import ConfigError
from recon.ledger import Batch, Ledger, create_engine_for, current_revision, redact_url, upgrade
from recon.ledger import samples as s
from recon.ledger.tables import metadata

pytestmark = pytest.mark.integration

NOW_MS = 1_750_000_000_000


@pytest.fixture
def ledger(fresh_postgres_url: str) -> Iterator[Ledger]:
    upgrade(fresh_postgres_url)
    engine = create_engine_for(fresh_postgres_url)
    try:
        yield Ledger(engine, clock=lambda: NOW_MS)
    finally:
        engine.dispose()


def dump(ledger: Ledger) -> dict[str, list[tuple[Any, ...]]]:
    with ledger.engine.connect() as conn:
        return {
            table.name: sorted(map(tuple, conn.execute(sa.select(table))), key=repr)
            for table in metadata.sorted_tables
        }


def a_batch(start: int = 0, count: int = 500) -> Batch:
    return Batch(
        enrolments=[s.enrolment(n, partition=n % 3) for n in range(start, start + count)],
        claims=[s.claim(n) for n in range(start, start + 20)],
        agreements=[s.agreement(1)],
        branch_totals=[s.branch_totals(start)],
        outbox=[s.dead_letter(start + count)],
        offsets={("enrolments", p): start + count + p for p in range(3)},
    )


def test_migrations_build_exactly_the_declared_tables(fresh_postgres_url: str) -> None:
    assert current_revision(fresh_postgres_url) is None
    upgrade(fresh_postgres_url)
    upgrade(fresh_postgres_url)
    assert current_revision(fresh_postgres_url) == "0008"

    engine = create_engine_for(fresh_postgres_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
        inspector = sa.inspect(engine)
        for table in metadata.tables.values():
            reflected = {inspector.get_pk_constraint(table.name)["name"]}
            reflected |= {c["name"] for c in inspector.get_unique_constraints(table.name)}
            reflected |= {c["name"] for c in inspector.get_check_constraints(table.name)}
            reflected |= {i["name"] for i in inspector.get_indexes(table.name)}
            declared = {c.name for c in table.constraints} | {i.name for i in table.indexes}
            assert reflected == declared, table.name
    finally:
        engine.dispose()


def test_concurrent_upgrades_do_not_collide(fresh_postgres_url: str) -> None:
    # Separate processes, as separate pods would run `recon db upgrade`: the advisory lock serialises them.
    code = "import sys; from recon.ledger import upgrade; upgrade(sys.argv[1])"
    runs = [
        subprocess.Popen([sys.executable, "-c", code, fresh_postgres_url], stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    failures = [run.communicate(timeout=120)[1] for run in runs if run.wait(timeout=120) != 0]

    assert failures == []
    assert current_revision(fresh_postgres_url) == "0008"


def test_an_old_schema_is_refused_without_showing_the_password(fresh_postgres_url: str) -> None:
    engine = create_engine_for(fresh_postgres_url)
    try:
        with pytest.raises(ConfigError) as raised:
            Ledger(engine).check_schema_current()
    finally:
        engine.dispose()
    message = str(raised.value)
    assert message.startswith(f"database at {redact_url(fresh_postgres_url)} is at revision none (empty)")
    assert message.endswith("run `recon db upgrade`")
    password = sa.make_url(fresh_postgres_url).password
    assert not password or str(password) not in message


def test_a_batch_stores_events_and_offsets_through_copy(ledger: Ledger) -> None:
    outcome = ledger.write_batch("g", a_batch())

    assert outcome.stored == {"enrolment": 500, "claim": 20, "agreement": 1, "branch_totals": 1}
    assert outcome.duplicates == {"enrolment": 0, "claim": 0, "agreement": 0, "branch_totals": 0}
    assert ledger.count_events() == {"enrolment": 500, "claim": 20, "agreement": 1, "branch_totals": 1}
    assert ledger.stored_offsets("g", [("enrolments", p) for p in range(4)]) == {
        ("enrolments", 0): 500,
        ("enrolments", 1): 501,
        ("enrolments", 2): 502,
    }
    with ledger.engine.connect() as conn:
        row = (
            conn.execute(sa.text("SELECT * FROM enrolment_events WHERE event_id = 'enr-3'")).mappings().one()
        )
        claim = conn.execute(sa.text("SELECT * FROM claim_events WHERE event_id = 'clm-0'")).mappings().one()
    assert row["coverage_start"] == date(2025, 1, 1) and row["coverage_end"] is None
    assert row["paid_months"] == "" and row["programmes"] == "JKK,JKM" and row["event_type"] == "ENROLLED"
    assert row["src_offset"] == 3 and row["ingested_at_ms"] == NOW_MS
    assert claim["agreement_id"] is None and claim["amount_paid"] is None


def test_the_same_batch_twice_changes_nothing(ledger: Ledger) -> None:
    batch = a_batch()
    ledger.write_batch("g", batch)
    before = dump(ledger)

    again = ledger.write_batch("g", batch)

    assert again.stored == {"enrolment": 0, "claim": 0, "agreement": 0, "branch_totals": 0}
    assert again.duplicates == {"enrolment": 500, "claim": 20, "agreement": 1, "branch_totals": 1}
    assert dump(ledger) == before


def test_overlapping_batches_and_repeats_within_a_batch(ledger: Ledger) -> None:
    ledger.write_batch("g", a_batch(0, 300))
    overlapping = a_batch(200, 300)
    batch = dataclasses.replace(
        overlapping, enrolments=[*overlapping.enrolments, s.enrolment(450), s.enrolment(450)]
    )

    outcome = ledger.write_batch("g", batch)

    assert outcome.stored["enrolment"] == 200
    assert outcome.duplicates["enrolment"] == 102
    assert ledger.count_events()["enrolment"] == 500


@pytest.mark.parametrize(
    ("spoil", "error"),
    [
        # A Python value the binary COPY cannot encode, after the enrolments went in.
        (
            lambda b: dataclasses.replace(
                b, branch_totals=[_bad(s.branch_totals(1), active_workers=object())]
            ),
            DataError,
        ),
        # A NULL the staging table's NOT NULL refuses, inside the COPY.
        (
            lambda b: dataclasses.replace(b, claims=[*b.claims, _bad(s.claim(999), branch_code=None)]),
            IntegrityError,
        ),
        # A constraint checked after every event table was written.
        (lambda b: dataclasses.replace(b, outbox=[_bad(s.dead_letter(1), kind="postcard")]), IntegrityError),
    ],
    ids=["bad-value-type", "null-in-copy", "constraint-violation"],
)
def test_a_batch_that_fails_midway_writes_nothing(ledger: Ledger, spoil: Any, error: type[Exception]) -> None:
    ledger.write_batch("g", a_batch(0, 100))
    before = dump(ledger)

    for _ in range(2):  # twice: the failed transaction must not leave the pooled connection broken
        with pytest.raises(error):
            ledger.write_batch("g", spoil(a_batch(100, 400)))
        assert dump(ledger) == before

    assert ledger.write_batch("g", a_batch(100, 400)).stored["enrolment"] == 400
    assert ledger.stored_offsets("g", [("enrolments", 0)]) == {("enrolments", 0): 500}


def test_a_crash_before_the_offsets_rolls_back_the_copied_events(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*_: Any) -> None:
        raise RuntimeError("crash between the events and the offsets")

    monkeypatch.setattr(Ledger, "_save_offsets", crash)
    with pytest.raises(RuntimeError):
        ledger.write_batch("g", a_batch())
    monkeypatch.undo()

    assert ledger.count_events() == {"enrolment": 0, "claim": 0, "agreement": 0, "branch_totals": 0}
    assert ledger.stored_offsets("g", [("enrolments", 0)]) == {}
    assert ledger.write_batch("g", a_batch()).stored["enrolment"] == 500


def test_a_database_restart_between_batches_is_survived(ledger: Ledger) -> None:
    ledger.write_batch("g", a_batch(0, 100))
    admin = sa.create_engine(ledger.engine.url, poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:  # what a restart does to the pooled connections
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
    finally:
        admin.dispose()

    assert ledger.write_batch("g", a_batch(100, 100)).stored["enrolment"] == 100  # pool_pre_ping reconnects


def test_agreement_versions(ledger: Ledger) -> None:
    ledger.write_batch(
        "g", Batch(agreements=[s.agreement(3), s.agreement(2), s.agreement(1, agreement_id="B")])
    )
    lower = ledger.write_batch("g", Batch(agreements=[dataclasses.replace(s.agreement(3), funder_name="x")]))
    higher = ledger.write_batch("g", Batch(agreements=[s.agreement(4)]))

    assert lower.stored["agreement"] == 0 and lower.duplicates["agreement"] == 1
    assert higher.stored["agreement"] == 1
    assert ledger.agreements() == {s.AGREEMENT_ID: s.agreement(4), "B": s.agreement(1, agreement_id="B")}
    assert ledger.upsert_agreements([s.agreement(9, from_file=True)]) == 1
    assert ledger.agreements()[s.AGREEMENT_ID] == s.agreement(9, from_file=True)


def test_outbox(ledger: Ledger) -> None:
    ledger.write_batch("g", Batch(outbox=[s.dead_letter(2), s.dead_letter(1, partition=1), s.alert(1)]))
    ledger.write_batch("g", Batch(outbox=[s.dead_letter(2)]))

    pending = ledger.pending_outbox("dead_letter", 10)
    assert [p.message for p in pending] == [s.dead_letter(2), s.dead_letter(1, partition=1)]
    assert [p.message for p in ledger.pending_outbox("dead_letter", 10, sources=[("enrolments", 1)])] == [
        s.dead_letter(1, partition=1)
    ]
    ledger.mark_sent([(pending[0].id, 4, 40), (pending[1].id, 4, 41)], sent_at_ms=NOW_MS)
    assert ledger.pending_outbox("dead_letter", 10) == []
    assert ledger.pending_outbox_created("dead_letter") == {}
    assert list(ledger.pending_outbox_created("alert").values()) == [NOW_MS]
    assert [p.message for p in ledger.pending_outbox("alert", 10)] == [s.alert(1)]


def _bad(event: Any, **changes: Any) -> Any:
    return dataclasses.replace(event, **changes)
