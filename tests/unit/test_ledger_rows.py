"""The ledger stores the ingest hot path's rows (EnrolmentRow, ClaimRow) exactly as it stores the
events they stand for, on SQLite, whatever the batch size (many rows per INSERT, in fixed sizes)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from recon.domain.events import claim_row, enrolment_row
from recon.ledger import Batch, Ledger, create_engine_for, upgrade
from recon.ledger import samples as s
from recon.ledger.tables import claim_events, enrolment_events

NOW = 1_750_000_000_000


def open_ledger(url: str) -> Ledger:
    upgrade(url)
    return Ledger(create_engine_for(url), clock=lambda: NOW)


@pytest.fixture
def ledgers(tmp_path: Any) -> Iterator[tuple[Ledger, Ledger]]:
    pair = (open_ledger(f"sqlite:///{tmp_path}/events.db"), open_ledger(f"sqlite:///{tmp_path}/rows.db"))
    yield pair
    for ledger in pair:
        ledger.engine.dispose()


def stored(ledger: Ledger) -> dict[str, list[tuple[Any, ...]]]:
    with ledger.engine.connect() as conn:
        return {
            t.name: sorted(tuple(r) for r in conn.execute(sa.select(t).order_by(t.c.event_id)))
            for t in (enrolment_events, claim_events)
        }


@pytest.mark.parametrize("count", [1, 17, 1024 + 128 + 16 + 3])
def test_rows_are_stored_as_their_events_are(ledgers: tuple[Ledger, Ledger], count: int) -> None:
    events, rows = ledgers
    enrolments = [s.enrolment(n) for n in range(count)]
    claims = [s.claim(n) for n in range(min(count, 40))]
    offsets = {("enrolments", 0): count}

    by_event = events.write_batch("g", Batch(enrolments=enrolments, claims=claims, offsets=offsets))
    by_row = rows.write_batch(
        "g",
        Batch(
            enrolments=[enrolment_row(e) for e in enrolments],
            claims=[claim_row(c) for c in claims],
            offsets=offsets,
        ),
    )

    assert by_row == by_event and by_row.stored["enrolment"] == count
    assert stored(rows) == stored(events)


def test_a_repeated_row_counts_as_a_duplicate_within_a_batch_and_across_batches(
    ledgers: tuple[Ledger, Ledger],
) -> None:
    _, ledger = ledgers
    rows = [enrolment_row(s.enrolment(n)) for n in range(1200)]
    batch = Batch(enrolments=[*rows, rows[0], rows[1199]], offsets={("enrolments", 0): 1202})

    first = ledger.write_batch("g", batch)
    again = ledger.write_batch("g", batch)

    assert (first.stored["enrolment"], first.duplicates["enrolment"]) == (1200, 2)
    assert (again.stored["enrolment"], again.duplicates["enrolment"]) == (0, 1202)
