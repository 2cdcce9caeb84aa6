"""Fault campaign: duplicate deliveries and events out of order for one worker.

A producer that retries sends every event twice, the copies interleaved (some in the same ingest
batch, some batches apart). Two workers' events arrive in the wrong order on their partition: one
worker's TERMINATED before its ENROLLED, another's CONTRIBUTION_PAID before its ENROLLED. The ledger
must hold each event once, and the coverage report must count the terminated worker out and the
paid-before-enrolled worker in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from factories import agreement_record, enrolment_record, valid_nik
from faults import Lab, LedgerView, Outcome, Proc, open_lab, produce_now
from recon.avro import SchemaCatalogue
from recon.ledger import upgrade
from support import consume_all, service_env

AGREEMENT = "PKS-ORDER"
REGULAR = 50  # workers enrolled in order, all active
COPY_LAG = 3  # the retried copy of an event follows this many events behind it


@pytest.fixture
def lab(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Lab]:
    with open_lab(kafka_bootstrap, tmp_path, None) as opened:
        yield opened


def order_scenario(lab: Lab) -> Outcome:
    topics = lab.topics()
    db_url = lab.sqlite_url("order")
    upgrade(db_url)
    env = service_env(
        topics.overrides(), db_url, ingest_http_port=0, reconcile_http_port=0, batch_max_records=10
    )
    events = _events(lab.catalogue)
    twice = _interleave_copies(events, COPY_LAG)
    produce_now(topics.bootstrap, topics.agreements, [_agreement(lab.catalogue)])
    produce_now(topics.bootstrap, topics.enrolments, twice)
    problems = []
    for command in ("ingest", "reconcile"):
        proc = Proc(env, command, "--idle-exit", "1")
        code = proc.wait(timeout=120)
        if code != 0:
            problems.append(f"{command} exited {code}: {proc.last_line()}")
    status = Proc(env, "status", "--format", "json")
    status.wait(timeout=60)
    rows = {row["agreement_id"]: row for row in json.loads("\n".join(status.stdout) or "[]")}
    active = rows.get(AGREEMENT, {}).get("active")
    if active != REGULAR + 1:
        problems.append(f"status shows {active} active workers under {AGREEMENT}, want {REGULAR + 1}")
    view = LedgerView(db_url)
    try:
        ids = view.event_ids()
    finally:
        view.close()
    expected = {event_id for event_id, _ in events}
    return Outcome(
        scenario="duplicates and out of order",
        faults=len(events),  # one duplicate delivery per event
        sent=len(twice) + 1,
        stored=len(ids),
        dead_lettered=len(consume_all(topics.bootstrap, topics.dead_letters, timeout=5)),
        lost=len(expected - set(ids)),
        duplicated=sum(n - 1 for n in ids.values()) + len(set(ids) - expected),
        recover_seconds=None,
        problems=tuple(problems),
        notes=(
            f"{len(events)} events each sent twice; TERMINATED before ENROLLED and CONTRIBUTION_PAID before "
            f"ENROLLED for one worker each; status: {active} active of {REGULAR + 2} workers",
        ),
    )


def _interleave_copies(events: list[tuple[str, tuple[bytes, bytes]]], lag: int) -> list[tuple[bytes, bytes]]:
    """Each message twice: the copy of event i goes out right after event i + lag."""
    out: list[tuple[bytes, bytes]] = []
    for i, (_, message) in enumerate(events):
        out.append(message)
        if i >= lag:
            out.append(events[i - lag][1])
    out.extend(message for _, message in events[-lag:])
    return out


def _events(catalogue: SchemaCatalogue) -> list[tuple[str, tuple[bytes, bytes]]]:
    """(event_id, (key, value)) in send order; the two out-of-order workers first."""
    now = datetime.now(UTC)
    now_ms = int(now.timestamp() * 1000)
    month_start = now.date().replace(day=1)
    enrolled_ms = now_ms - 2 * 86_400_000

    def event(
        event_id: str, serial: int, event_type: str, occurred_at: int, **extra: Any
    ) -> tuple[str, tuple[bytes, bytes]]:
        nik = valid_nik(serial=serial)
        record = enrolment_record(
            event_id=event_id,
            event_type=event_type,
            nik=nik,
            agreement_id=AGREEMENT,
            occurred_at=occurred_at,
            coverage_start=month_start,
            **extra,
        )
        return event_id, (nik.encode(), catalogue.encode("enrolment", record))

    this_month = f"{month_start:%Y-%m}"
    late = [
        event("terminated-first", 9001, "TERMINATED", now_ms - 60_000, termination_reason="moved away"),
        event(
            "paid-first", 9002, "CONTRIBUTION_PAID", now_ms - 60_000, paid_months=[this_month], amount=16_800
        ),
    ]
    regular = [event(f"in-order-{w}", 1 + w, "ENROLLED", enrolled_ms) for w in range(REGULAR)]
    enrolments = [
        event("terminated-enrolment", 9001, "ENROLLED", enrolled_ms),
        event("paid-enrolment", 9002, "ENROLLED", enrolled_ms),
    ]
    return late + regular + enrolments


def _agreement(catalogue: SchemaCatalogue) -> tuple[bytes, bytes]:
    year = datetime.now(UTC).year
    record = agreement_record(
        agreement_id=AGREEMENT,
        quota_workers=1_000,
        budget_rupiah=10**12,
        ramp=[],
        period_start=date(year, 1, 1),
        period_end=date(year, 12, 31),
    )
    return AGREEMENT.encode(), catalogue.encode("agreement", record)


def test_duplicates_and_out_of_order_events_are_stored_once_and_counted_right(lab: Lab) -> None:
    outcome = order_scenario(lab)
    print(outcome)

    assert outcome.ok, outcome.explain()
    assert outcome.stored == REGULAR + 4 and outcome.dead_lettered == 0
