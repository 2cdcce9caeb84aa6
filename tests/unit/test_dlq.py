"""The pure parts of `recon dlq`: dead-letter headers, choosing letters, the summary, the redrive plan."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from recon.dlq import (
    LIST_COLUMNS,
    REDRIVEN_FROM_HEADER,
    SUMMARY_COLUMNS,
    DeadLetter,
    RedrivePlan,
    RedriveReport,
    Selection,
    Skip,
    parse,
    summarise,
)
from recon.errors import ConfigError

T0 = 1_750_000_000_000  # 2025-06-15T15:06:40Z
NIK = "7271015506900001"


def headers(**values: str) -> list[tuple[str, bytes]]:
    base = {
        "source_topic": "enrolments",
        "source_partition": "1",
        "source_offset": "41",
        "error_kind": "validation",
        "reason_code": "programme_not_funded",
        "reason": "programmes: every programme must be one the agreement (agreement_id) funds.",
        "recon.outbox_id": "7",
    }
    base.update(values)
    return [(name, value.encode()) for name, value in base.items()]


def letter(offset: int = 0, partition: int = 0, at: int = T0, **values: str) -> DeadLetter:
    return parse("dead-letters", partition, offset, at, headers(**values))


# --- parse ---


def test_parse_reads_every_header_the_ingest_writes() -> None:
    got = letter(offset=5, partition=2)

    assert got == DeadLetter(
        topic="dead-letters",
        partition=2,
        offset=5,
        timestamp_ms=T0,
        source_topic="enrolments",
        source_partition=1,
        source_offset=41,
        error_kind="validation",
        reason_code="programme_not_funded",
        reason="programmes: every programme must be one the agreement (agreement_id) funds.",
    )
    assert got.position == "dead-letters/2/5"


def test_parse_leaves_missing_or_unreadable_headers_empty_instead_of_failing() -> None:
    got = parse(
        "dlq",
        0,
        3,
        T0,
        [
            ("source_partition", b"x1"),
            ("source_offset", "٣".encode()),
            ("reason_code", b""),
            ("error_kind", None),
        ],
    )

    assert (got.source_topic, got.source_partition, got.source_offset) == (None, None, None)
    assert (got.reason_code, got.error_kind, got.reason) == (None, None, None)


def test_parse_masks_a_nik_shaped_number_and_control_characters_in_the_reason() -> None:
    got = letter(reason=f"nik: {NIK} is wrong\x1b[2J", reason_code="nik_\x07format")

    assert got.reason is not None and NIK not in got.reason
    assert got.reason == "nik: [redacted] is wrong?[2J"
    assert got.reason_code == "nik_?format"
    assert letter(reason="amount 12345678901234567 is odd").reason == "amount 12345678901234567 is odd"


def test_parse_replaces_invalid_utf8_rather_than_failing() -> None:
    got = parse("dlq", 0, 0, T0, [("source_topic", b"enrol\xffments"), ("reason_code", b"malformed")])

    assert got.source_topic == "enrol\ufffdments" and got.reason_code == "malformed"


def test_a_listed_row_has_positions_and_reasons_and_never_key_or_value() -> None:
    row = letter(offset=9).row()

    assert tuple(row) == LIST_COLUMNS
    assert row["timestamp"] == "2025-06-15T15:06:40.000Z"
    assert not {"key", "value"} & set(row)


# --- Selection ---


def test_an_empty_selection_matches_everything_and_is_not_narrowed() -> None:
    assert Selection().matches(letter()) and not Selection().narrowed
    assert Selection(until_offset=0).narrowed


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (Selection(reasons=frozenset({"programme_not_funded", "malformed"})), True),
        (Selection(reasons=frozenset({"malformed"})), False),
        (Selection(source_topic="enrolments"), True),
        (Selection(source_topic="claims"), False),
        (Selection(partition=2), True),
        (Selection(partition=0), False),
        (Selection(from_offset=10, until_offset=10), True),
        (Selection(from_offset=11), False),
        (Selection(until_offset=9), False),
        (Selection(reasons=frozenset({"programme_not_funded"}), source_topic="claims"), False),
    ],
)
def test_selection_needs_every_condition_given(selection: Selection, expected: bool) -> None:
    assert selection.matches(letter(offset=10, partition=2)) is expected


def test_a_letter_without_a_reason_code_is_not_chosen_by_reason() -> None:
    assert not Selection(reasons=frozenset({"malformed"})).matches(letter(reason_code=""))


# --- summarise ---


def test_summary_counts_by_source_topic_and_reason_with_offset_and_time_ranges() -> None:
    letters = [
        letter(0, at=T0 + 5_000, source_offset="17", source_partition="2"),
        letter(1, at=T0, source_offset="3", source_partition="0"),
        letter(2, at=T0 + 1_000, source_offset="9", source_partition="0"),
        letter(3, at=T0 + 9_000, reason_code="not_single_object", error_kind="codec", source_offset="4"),
        letter(4, at=T0, source_topic="claims", source_offset="0"),
    ]

    rows = summarise(letters)

    assert [(r.source_topic, r.reason_code, r.count) for r in rows] == [
        ("enrolments", "programme_not_funded", 3),
        ("claims", "programme_not_funded", 1),
        ("enrolments", "not_single_object", 1),
    ]
    first = rows[0]
    assert first.error_kind == "validation" and first.source_partitions == (0, 2)
    assert (first.first_source_offset, first.last_source_offset) == (3, 17)
    assert (first.first_seen_ms, first.last_seen_ms) == (T0, T0 + 5_000)
    assert tuple(first.row()) == SUMMARY_COLUMNS
    assert first.row()["first_seen"] == "2025-06-15T15:06:40.000Z"
    assert first.row()["last_seen"] == "2025-06-15T15:06:45.000Z"


def test_summary_of_letters_without_headers_groups_them_under_none() -> None:
    bare = parse("dlq", 0, 0, T0, [])

    (row,) = summarise([bare, bare])

    assert (row.source_topic, row.reason_code, row.error_kind, row.count) == (None, None, None, 2)
    assert (row.first_source_offset, row.last_source_offset, row.source_partitions) == (None, None, ())


def test_summary_of_nothing_is_empty() -> None:
    assert summarise([]) == []


# --- the redrive plan ---

CONSUMED = ("enrolments", "claims", "agreements", "branch-totals")


def test_plan_sends_the_original_bytes_to_the_source_topic_traced_to_the_letter() -> None:
    plan = RedrivePlan(
        selection=Selection(reasons=frozenset({"programme_not_funded"})), consumed_topics=CONSUMED
    )
    chosen = letter(offset=4, partition=1)

    item = plan.consider(chosen, b"nik-key", b"\xc3\x01payload")

    assert item is not None
    assert (item.topic, item.key, item.value) == ("enrolments", b"nik-key", b"\xc3\x01payload")
    assert item.headers == [(REDRIVEN_FROM_HEADER, b"dead-letters/1/4")]
    assert plan.sent == {("enrolments", "programme_not_funded"): 1}


def test_plan_ignores_letters_outside_the_selection_without_counting_them() -> None:
    plan = RedrivePlan(selection=Selection(reasons=frozenset({"malformed"})), consumed_topics=CONSUMED)

    assert plan.consider(letter(), b"k", b"v") is None
    assert not plan.sent and not plan.skipped


def test_plan_sends_identical_bytes_once_per_run_so_repeated_redrives_do_not_double() -> None:
    plan = RedrivePlan(selection=Selection(), consumed_topics=CONSUMED)
    garbage = b"garbage"

    first = plan.consider(letter(0, reason_code="not_single_object"), b"k", garbage)
    again = plan.consider(letter(7, reason_code="not_single_object"), b"k", garbage)  # re-dead-lettered copy
    other_key = plan.consider(letter(8, reason_code="not_single_object"), b"k2", garbage)
    null_key = plan.consider(letter(9, reason_code="not_single_object"), None, garbage)
    other_topic = plan.consider(
        letter(10, reason_code="not_single_object", source_topic="claims"), b"k", garbage
    )

    assert first is not None and again is None
    assert other_key is not None and null_key is not None and other_topic is not None
    assert plan.skipped == {Skip.SAME_BYTES: 1}
    assert plan.sent == {("enrolments", "not_single_object"): 3, ("claims", "not_single_object"): 1}


def test_plan_never_sends_to_a_topic_the_ingest_does_not_read_or_without_a_source() -> None:
    plan = RedrivePlan(selection=Selection(), consumed_topics=CONSUMED)

    assert plan.consider(letter(source_topic="coverage-alerts"), b"k", b"v") is None
    assert plan.consider(parse("dlq", 0, 1, T0, [("reason_code", b"malformed")]), b"k", b"v") is None
    assert plan.skipped == {Skip.NOT_CONSUMED: 1, Skip.NO_SOURCE: 1} and not plan.sent


def test_report_rows_and_json_name_counts_per_reason_and_every_skip() -> None:
    plan = RedrivePlan(selection=Selection(), consumed_topics=CONSUMED)
    plan.consider(letter(0), b"a", b"1")
    plan.consider(letter(1), b"a", b"1")
    plan.consider(letter(2, reason_code="malformed"), b"b", b"2")
    report = RedriveReport(dry_run=False, sent=plan.sent, skipped=plan.skipped)

    assert report.total == 2
    assert report.rows() == [
        {"source_topic": "enrolments", "reason_code": "malformed", "redriven": 1},
        {"source_topic": "enrolments", "reason_code": "programme_not_funded", "redriven": 1},
    ]
    data: dict[str, Any] = report.to_json()
    assert data["skipped"] == {"no_source_topic": 0, "source_not_consumed": 0, "same_bytes": 1}
    assert data["dry_run"] is False and data["chosen"] == []


# --- the commands refuse ambiguous requests before touching Kafka ---


def _invoke(*args: str) -> Any:
    from recon.cli import _register, app

    _register()
    return CliRunner().invoke(app, ["dlq", *args], env={"RECON_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})


def test_redrive_without_any_condition_asks_for_all() -> None:
    result = _invoke("redrive")

    assert isinstance(result.exception, ConfigError)
    assert "--all" in str(result.exception)


def test_offsets_given_the_wrong_way_round_are_refused() -> None:
    result = _invoke("list", "--from-offset", "9", "--until-offset", "3")

    assert isinstance(result.exception, ConfigError) and "swap" in str(result.exception)
