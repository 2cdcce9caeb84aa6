"""The pure half of ingest: a polled batch becomes a ledger batch and dead letters; the guard."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from factories import NIK_KEY, VALIDATION_NOW_MS, agreement_record, enrolment_record, valid_nik
from ingest.guard import DeadLetterGuard, DeadLetterGuardTripped
from ingest.pipeline import DeadLetterNote, Processor
from recon.avro import SchemaCatalogue
from recon.domain.config import DomainConfig
from recon.domain.validation import ValidationContext
from recon.settings import load_settings

TOPICS = {"enr": "enrolment", "agr": "agreement", "clm": "claim", "tot": "branch-totals"}


@dataclass(frozen=True)
class Msg:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@pytest.fixture(scope="module")
def catalogue() -> SchemaCatalogue:
    return SchemaCatalogue.load(load_settings().schemas_dir)


@pytest.fixture()
def processor(catalogue: SchemaCatalogue) -> Processor:
    return Processor(
        catalogue=catalogue, subjects_by_topic=TOPICS, dead_letter_topic="dlq", max_message_bytes=4096
    )


CTX = ValidationContext(config=DomainConfig(), now_ms=VALIDATION_NOW_MS, nik_key=NIK_KEY, agreements={})


def test_every_message_lands_in_exactly_one_place_and_offsets_advance(
    processor: Processor, catalogue: SchemaCatalogue
) -> None:
    good = catalogue.encode("enrolment", enrolment_record(event_id="ok"))
    messages = [
        Msg("enr", 0, 10, b"k", good),
        Msg("enr", 0, 11, b"k", b"junk"),
        Msg("enr", 1, 5, b"k", None),
        Msg("enr", 1, 6, b"k", b"\xc3\x01" + bytes(5000)),
    ]

    out = processor.process(messages, CTX)

    assert [e.event_id for e in out.batch.enrolments] == ["ok"]
    assert {m.source: dict(m.headers)["reason_code"] for m in out.batch.outbox} == {
        ("enr", 0, 11): b"not_single_object",
        ("enr", 1, 5): b"empty_value",
        ("enr", 1, 6): b"too_large",
    }
    assert dict(out.batch.offsets) == {("enr", 0): 12, ("enr", 1): 7}
    assert out.valid_count + out.invalid_count == len(messages)
    assert all(
        m.value == orig.value and m.key == orig.key
        for m, orig in zip(out.batch.outbox, messages[1:], strict=True)
    )


def test_an_agreement_in_the_same_batch_is_known_to_the_enrolments_after_it(
    processor: Processor, catalogue: SchemaCatalogue
) -> None:
    jkm_only = catalogue.encode("agreement", agreement_record(agreement_id="PKS-A", programmes=["JKM"]))
    jkk = catalogue.encode("enrolment", enrolment_record(agreement_id="PKS-A", programmes=["JKK"]))
    messages = [Msg("enr", 0, 0, b"k", jkk), Msg("agr", 0, 0, b"PKS-A", jkm_only)]

    out = processor.process(messages, CTX)

    assert [a.agreement_id for a in out.batch.agreements] == ["PKS-A"]
    assert [dict(m.headers)["reason_code"] for m in out.batch.outbox] == [b"programme_not_funded"]


def test_a_tombstone_on_the_agreements_topic_is_compaction_bookkeeping_not_an_error(
    processor: Processor,
) -> None:
    out = processor.process([Msg("agr", 0, 3, b"PKS-A", None)], CTX)

    assert out.ignored == 1 and not out.batch.outbox and dict(out.batch.offsets) == {("agr", 0): 4}


def test_workers_are_stored_by_keyed_hash_never_by_nik(
    processor: Processor, catalogue: SchemaCatalogue
) -> None:
    nik = valid_nik(serial=9)
    out = processor.process(
        [Msg("enr", 0, 0, nik.encode(), catalogue.encode("enrolment", enrolment_record(nik=nik)))], CTX
    )

    (event,) = out.batch.enrolments
    assert nik not in repr(event) and event.nik_region == nik[:4] and len(event.worker_key) == 32


def test_each_dead_letter_is_noted_for_the_log_with_its_event_id_only_when_it_is_safe(
    processor: Processor, catalogue: SchemaCatalogue
) -> None:
    nik = valid_nik()
    refused = catalogue.encode("enrolment", enrolment_record(event_id="evt-7", nik=nik[:15] + "x"))
    nik_in_id = catalogue.encode("enrolment", enrolment_record(event_id=f"evt-{nik}", nik=nik))
    messages = [
        Msg("enr", 2, 40, b"k", refused),
        Msg("enr", 2, 41, b"k", nik_in_id),
        Msg("enr", 2, 42, b"k", b"x"),
    ]

    notes = processor.process(messages, CTX).dead_letters

    assert [(n.topic, n.partition, n.offset, n.error_kind, n.event_id) for n in notes] == [
        ("enr", 2, 40, "validation", "evt-7"),
        ("enr", 2, 41, "validation", None),  # an id holding a NIK is never repeated anywhere
        ("enr", 2, 42, "codec", None),
    ]
    assert notes[1].reason_code == "identifier_holds_nik" and notes[2].reason_code == "not_single_object"
    assert all(isinstance(n, DeadLetterNote) for n in notes)


def test_the_guard_trips_only_past_the_ratio_with_enough_messages_seen() -> None:
    guard = DeadLetterGuard(window=100, min_messages=20, max_ratio=0.5)

    assert guard.check(valid=5, invalid=10).ratio == pytest.approx(10 / 15)  # too few messages to judge
    with pytest.raises(DeadLetterGuardTripped, match="RECON_DLQ_GUARD_MAX_RATIO"):
        guard.check(valid=0, invalid=10)
    # The tripped batch was not counted: the window still holds only the first batch.
    assert guard.check(valid=10, invalid=0).seen == 25


def test_the_guard_forgets_batches_older_than_its_window() -> None:
    guard = DeadLetterGuard(window=50, min_messages=10, max_ratio=0.5)
    guard.check(valid=0, invalid=9)  # below min_messages

    verdict = guard.check(valid=60, invalid=0)

    assert verdict.invalid == 0 and verdict.seen == 60
