"""The Ledger port on SQLite: atomic batches, idempotent events, agreement versions, the outbox.

tests/integration/test_ledger_postgres.py holds the same contract against PostgreSQL's COPY path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, ProgrammingError

from recon.ledger import Batch, Ledger, OutboxMessage, create_engine_for, upgrade
from recon.ledger import samples as s
from recon.ledger.tables import metadata


class Clock:
    def __init__(self, now_ms: int = 1_750_000_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(sqlite_url: str, clock: Clock) -> Iterator[Ledger]:
    upgrade(sqlite_url)
    engine = create_engine_for(sqlite_url)
    try:
        yield Ledger(engine, clock=clock)
    finally:
        engine.dispose()


def dump(ledger: Ledger) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every ledger table, in a stable order."""
    with ledger.engine.connect() as conn:
        return {
            table.name: sorted(map(tuple, conn.execute(sa.select(table))), key=repr)
            for table in metadata.sorted_tables
        }


def a_batch(start: int = 0, count: int = 50) -> Batch:
    return Batch(
        enrolments=[s.enrolment(n) for n in range(start, start + count)],
        claims=[s.claim(n) for n in range(start, start + 5)],
        agreements=[s.agreement(1)],
        branch_totals=[s.branch_totals(start)],
        outbox=[s.dead_letter(start + count)],
        offsets={("enrolments", 0): start + count + 1, ("claims", 0): start + 5},
    )


def test_a_batch_stores_its_events_and_offsets_together(ledger: Ledger) -> None:
    outcome = ledger.write_batch("g", a_batch())

    assert outcome.stored == {"enrolment": 50, "claim": 5, "agreement": 1, "branch_totals": 1}
    assert outcome.duplicates == {"enrolment": 0, "claim": 0, "agreement": 0, "branch_totals": 0}
    assert ledger.count_events() == {"enrolment": 50, "claim": 5, "agreement": 1, "branch_totals": 1}
    assert ledger.stored_offsets("g", [("enrolments", 0), ("claims", 0), ("claims", 1)]) == {
        ("enrolments", 0): 51,
        ("claims", 0): 5,
    }
    assert ledger.stored_offsets("other-group", [("enrolments", 0)]) == {}
    assert ledger.stored_offsets("g", []) == {}


def test_events_are_stored_field_by_field(ledger: Ledger, clock: Clock) -> None:
    event = s.enrolment(3)  # ENROLLED, no paid months, coverage_end set, no source system
    ledger.write_batch("g", Batch(enrolments=[event, s.enrolment(4)], claims=[s.claim(4)]))

    with ledger.engine.connect() as conn:
        row = (
            conn.execute(sa.text("SELECT * FROM enrolment_events WHERE event_id = 'enr-3'")).mappings().one()
        )
        claim = conn.execute(sa.text("SELECT * FROM claim_events")).mappings().one()
    assert dict(row) == {
        "event_id": "enr-3",
        "event_type": "ENROLLED",
        "occurred_at_ms": event.occurred_at_ms,
        "branch_code": "PALU",
        "agreement_id": s.AGREEMENT_ID,
        "worker_key": event.worker_key,
        "nik_region": "7271",
        "programmes": "JKK,JKM",
        "declared_income": 1_000_000,
        "coverage_start": "2025-01-01",
        "coverage_end": None,
        "paid_months": "",
        "amount": 0,
        "source_system": "smile",
        "src_topic": "enrolments",
        "src_partition": 0,
        "src_offset": 3,
        "schema_fingerprint": s.FINGERPRINT,
        "schema_version": 1,
        "ingested_at_ms": clock.now_ms,
        "batch_id": 1,
    }
    assert claim["batch_id"] == 1, "one batch id stamps every event the batch brought"
    assert claim["agreement_id"] is None and claim["amount_paid"] is None and claim["programme"] == "JKK"


def test_writing_the_same_batch_twice_changes_nothing_and_counts_duplicates(
    ledger: Ledger, clock: Clock
) -> None:
    batch = a_batch()
    ledger.write_batch("g", batch)
    before = dump(ledger)

    clock.now_ms += 60_000  # a replay after a crash, a minute later
    again = ledger.write_batch("g", batch)

    assert again.stored == {"enrolment": 0, "claim": 0, "agreement": 0, "branch_totals": 0}
    assert again.duplicates == {"enrolment": 50, "claim": 5, "agreement": 1, "branch_totals": 1}
    after = dump(ledger)
    # Only the offsets' bookkeeping time moves; no event, agreement or dead letter is written twice.
    before.pop("consumer_offsets")
    after.pop("consumer_offsets")
    assert after == before


def test_overlapping_batches_store_only_the_new_events(ledger: Ledger) -> None:
    ledger.write_batch("g", a_batch(0, 50))
    outcome = ledger.write_batch("g", a_batch(25, 50))

    assert outcome.stored["enrolment"] == 25
    assert outcome.duplicates["enrolment"] == 25
    assert ledger.count_events()["enrolment"] == 75
    assert ledger.stored_offsets("g", [("enrolments", 0)]) == {("enrolments", 0): 76}


def test_an_event_repeated_within_one_batch_is_stored_once(ledger: Ledger) -> None:
    outcome = ledger.write_batch("g", Batch(enrolments=[s.enrolment(1), s.enrolment(2), s.enrolment(1)]))

    assert outcome.stored["enrolment"] == 2
    assert outcome.duplicates["enrolment"] == 1


def test_an_empty_batch_only_moves_offsets(ledger: Ledger) -> None:
    outcome = ledger.write_batch("g", Batch(offsets={("enrolments", 3): 10}))

    assert sum(outcome.stored.values()) == 0
    assert ledger.stored_offsets("g", [("enrolments", 3)]) == {("enrolments", 3): 10}
    ledger.write_batch("g", Batch(offsets={("enrolments", 3): 4}))  # the database is the source of truth
    assert ledger.stored_offsets("g", [("enrolments", 3)]) == {("enrolments", 3): 4}


@pytest.mark.parametrize(
    ("spoil", "error"),
    [
        # A value the database cannot bind, after the events of the batch were already inserted.
        (lambda b: dataclasses.replace(b, branch_totals=[_bad_totals()]), ProgrammingError),
        # A constraint the database enforces: the outbox's kind, written after all the events.
        (lambda b: dataclasses.replace(b, outbox=[_bad_kind()]), IntegrityError),
    ],
    ids=["bad-value-type", "constraint-violation"],
)
def test_a_batch_that_fails_midway_leaves_neither_events_nor_offsets(
    ledger: Ledger, spoil: Any, error: type[Exception]
) -> None:
    ledger.write_batch("g", a_batch(0, 10))
    before = dump(ledger)

    with pytest.raises(error):
        ledger.write_batch("g", spoil(a_batch(10, 50)))

    assert dump(ledger) == before
    assert ledger.stored_offsets("g", [("enrolments", 0)]) == {("enrolments", 0): 11}
    # The connection went back to the pool usable: the next good batch goes through.
    assert ledger.write_batch("g", a_batch(10, 50)).stored["enrolment"] == 50


def test_a_failure_while_saving_offsets_rolls_back_the_events(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*_: Any) -> None:
        raise RuntimeError("crash between the events and the offsets")

    monkeypatch.setattr(Ledger, "_save_offsets", crash)
    with pytest.raises(RuntimeError):
        ledger.write_batch("g", a_batch())
    monkeypatch.undo()

    assert ledger.count_events() == {"enrolment": 0, "claim": 0, "agreement": 0, "branch_totals": 0}
    assert ledger.pending_outbox("dead_letter", 10) == []
    assert ledger.stored_offsets("g", [("enrolments", 0)]) == {}


def _bad_totals() -> Any:
    return dataclasses.replace(s.branch_totals(1), active_workers=object())


def _bad_kind() -> OutboxMessage:
    return dataclasses.replace(s.dead_letter(1), kind="postcard")


# --- agreements ---


def test_a_higher_agreement_version_replaces_the_stored_one(ledger: Ledger) -> None:
    ledger.write_batch("g", Batch(agreements=[s.agreement(2)]))
    outcome = ledger.write_batch("g", Batch(agreements=[s.agreement(5)]))

    assert outcome.stored["agreement"] == 1
    assert ledger.agreements() == {s.AGREEMENT_ID: s.agreement(5)}


@pytest.mark.parametrize("version", [1, 2], ids=["lower", "equal"])
def test_a_lower_or_equal_agreement_version_changes_nothing(ledger: Ledger, version: int) -> None:
    ledger.write_batch("g", Batch(agreements=[s.agreement(2)]))
    before = dump(ledger)

    changed = dataclasses.replace(s.agreement(version), funder_name="changed without a new version")
    outcome = ledger.write_batch("g", Batch(agreements=[changed]))

    assert outcome.stored["agreement"] == 0
    assert outcome.duplicates["agreement"] == 1
    assert dump(ledger) == before


def test_within_one_batch_the_highest_agreement_version_wins_in_any_order(ledger: Ledger) -> None:
    outcome = ledger.write_batch(
        "g",
        Batch(agreements=[s.agreement(3), s.agreement(7), s.agreement(1), s.agreement(1, agreement_id="B")]),
    )

    assert outcome.stored["agreement"] == 2
    assert outcome.duplicates["agreement"] == 2
    assert {a.agreement_id: a.version for a in ledger.agreements().values()} == {s.AGREEMENT_ID: 7, "B": 1}


def test_upsert_agreements_from_a_file_has_no_lineage_and_follows_the_version_rule(ledger: Ledger) -> None:
    assert ledger.upsert_agreements([s.agreement(1, from_file=True), s.agreement(1, agreement_id="B")]) == 2
    assert ledger.upsert_agreements([s.agreement(1, from_file=True)]) == 0
    assert ledger.upsert_agreements([]) == 0

    stored = ledger.agreements()
    assert stored[s.AGREEMENT_ID] == s.agreement(1, from_file=True)
    assert stored[s.AGREEMENT_ID].lineage is None
    assert stored["B"] == s.agreement(1, agreement_id="B")
    assert ledger.stored_offsets("g", [("agreements", 0)]) == {}


# --- outbox ---


def test_one_dead_letter_per_source_offset(ledger: Ledger) -> None:
    ledger.write_batch("g", Batch(outbox=[s.dead_letter(7)]))
    ledger.write_batch("g", Batch(outbox=[s.dead_letter(7), s.dead_letter(7)]))

    pending = ledger.pending_outbox("dead_letter", 10)
    assert [p.message for p in pending] == [s.dead_letter(7)]


def test_alerts_have_no_source_and_are_each_kept(ledger: Ledger) -> None:
    ledger.write_batch("g", Batch(outbox=[s.alert(1), s.alert(2)]))

    assert [p.message for p in ledger.pending_outbox("alert", 10)] == [s.alert(1), s.alert(2)]
    assert ledger.pending_outbox("dead_letter", 10) == []


def test_pending_outbox_is_oldest_first_limited_and_filtered_by_source(ledger: Ledger) -> None:
    ledger.write_batch("g", Batch(outbox=[s.dead_letter(5, partition=1), s.dead_letter(3, partition=0)]))
    ledger.write_batch(
        "g", Batch(outbox=[s.dead_letter(1, partition=0), s.dead_letter(2, source_topic="claims")])
    )

    offsets = [p.message.source for p in ledger.pending_outbox("dead_letter", 10)]
    assert offsets == [("enrolments", 1, 5), ("enrolments", 0, 3), ("enrolments", 0, 1), ("claims", 0, 2)]
    assert len(ledger.pending_outbox("dead_letter", 2)) == 2
    only_p0 = ledger.pending_outbox("dead_letter", 10, sources=[("enrolments", 0)])
    assert [p.message.source for p in only_p0] == [("enrolments", 0, 3), ("enrolments", 0, 1)]
    assert ledger.pending_outbox("dead_letter", 10, sources=[]) == []
    assert ledger.pending_outbox("alert", 10, sources=[("enrolments", 0)]) == []


def test_mark_sent_and_when_each_pending_message_was_committed(ledger: Ledger) -> None:
    assert ledger.pending_outbox_created("dead_letter") == {}
    ledger.write_batch("g", Batch(outbox=[s.dead_letter(n) for n in range(4)] + [s.alert(1)]))
    first, second, third, fourth = ledger.pending_outbox("dead_letter", 10)
    (alert,) = ledger.pending_outbox("alert", 10)
    created = ledger.pending_outbox_created("dead_letter")

    ledger.mark_sent([(first.id, 0, 10), (second.id, 0, 11), (third.id, 2, 4)], sent_at_ms=123)
    ledger.mark_sent([(alert.id, 0, 99)], sent_at_ms=124)
    ledger.mark_sent([], sent_at_ms=125)

    assert [p.message.source for p in ledger.pending_outbox("dead_letter", 10)] == [("enrolments", 0, 3)]
    assert sorted(created) == sorted(p.id for p in (first, second, third, fourth))
    assert ledger.pending_outbox_created("dead_letter") == {fourth.id: created[fourth.id]}
    assert ledger.pending_outbox_created("alert") == {}
    # A dead letter already sent is not written again when its source offset is re-processed.
    ledger.write_batch("g", Batch(outbox=[s.dead_letter(0)]))
    assert len(ledger.pending_outbox("dead_letter", 10)) == 1


def test_outbox_headers_keep_any_bytes(ledger: Ledger) -> None:
    headers = (("text", b"alasan: NIK tidak valid"), ("binary", bytes(range(256))), ("empty", b""))
    message = OutboxMessage("dead_letter", "dead-letters", None, None, headers, ("enrolments", 0, 1))
    ledger.write_batch("g", Batch(outbox=[message]))

    assert ledger.pending_outbox("dead_letter", 1)[0].message == message
