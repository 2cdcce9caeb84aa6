"""Encoding and decoding every subject, schema resolution between versions, and the encoder's checks."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from recon.avro import (
    DecodeError,
    EncodeError,
    SchemaCatalogue,
    SchemaError,
    compile_decoder,
    parse_schema,
    resolution_problems,
)

REPO_SCHEMAS = Path(__file__).parents[2] / "schemas"
NIK = "7271014507900001"
MS_2025_06_02 = int(dt.datetime(2025, 6, 2, 3, 0, tzinfo=dt.UTC).timestamp() * 1000)

RECORDS: dict[str, dict[str, Any]] = {
    "enrolment": {
        "event_id": "e-1",
        "event_type": "CONTRIBUTION_PAID",
        "occurred_at": MS_2025_06_02,
        "branch_code": "PALU",
        "agreement_id": "PKS-7271-2025",
        "nik": NIK,
        "programmes": ["JKK", "JKM"],
        "declared_income": 1_000_000,
        "coverage_start": dt.date(2025, 6, 1),
        "coverage_end": dt.date(2025, 12, 31),
        "paid_months": ["2025-06", "2025-07"],
        "amount": 33_600,
        "termination_reason": None,
        "source_system": "SIPP-Palu 3.2",
    },
    "claim": {
        "event_id": "c-1",
        "event_type": "PAID",
        "occurred_at": MS_2025_06_02,
        "branch_code": "PALU",
        "claim_id": "K-7271-0001",
        "nik": NIK,
        "agreement_id": "PKS-7271-2025",
        "programme": "JKM",
        "incident_date": dt.date(2025, 5, 20),
        "amount_claimed": 42_000_000,
        "amount_paid": 42_000_000,
    },
    "agreement": {
        "agreement_id": "PKS-7271-2025",
        "version": 1,
        "funder_name": "Pemkot Palu",
        "funder_level": "CITY",
        "region_code": "7271",
        "branch_code": "PALU",
        "budget_source": "APBD_P",
        "programmes": ["JKK", "JKM"],
        "quota_workers": 45_778,
        "budget_rupiah": 9_228_844_800,
        "monthly_premium_rupiah": 16_800,
        "period_start": dt.date(2025, 1, 1),
        "period_end": dt.date(2025, 12, 31),
        "ramp": [
            {"month": "2025-01", "target_workers": 7_000},
            {"month": "2025-06", "target_workers": 45_778},
        ],
        "target_population": None,
    },
    "branch-totals": {
        "event_id": "t-1",
        "occurred_at": MS_2025_06_02,
        "branch_code": "PALU",
        "agreement_id": "PKS-7271-2025",
        "as_of": dt.date(2025, 6, 1),
        "active_workers": 45_778,
        "contributions_paid_rupiah": 769_070_400,
    },
    "alert": {
        "alert_id": "a-1",
        "fingerprint": "over_quota/PKS-7271-2025",
        "rule": "over_quota",
        "severity": "CRITICAL",
        "state": "FIRING",
        "agreement_id": "PKS-7271-2025",
        "observed": 46_001.0,
        "expected": 45_778.0,
        "message": "PKS-7271-2025 covers 46,001 workers, above its quota of 45,778",
        "fired_at": MS_2025_06_02,
        "resolved_at": None,
        "runbook": "https://runbooks.example/over_quota",
    },
}


@pytest.fixture(scope="module")
def catalogue() -> SchemaCatalogue:
    return SchemaCatalogue.load(REPO_SCHEMAS)


def test_every_subject_is_covered(catalogue: SchemaCatalogue) -> None:
    assert set(catalogue.subjects) == set(RECORDS)


@pytest.mark.parametrize("subject", sorted(RECORDS))
def test_every_subject_round_trips(catalogue: SchemaCatalogue, subject: str) -> None:
    decoded = catalogue.decode(catalogue.encode(subject, RECORDS[subject]), subject)
    assert decoded.record == RECORDS[subject]
    assert list(decoded.record) == list(RECORDS[subject])
    assert decoded.version == catalogue.reader(subject).version


def test_v1_data_read_by_the_v2_reader_gets_the_default(catalogue: SchemaCatalogue) -> None:
    v1_record = {k: v for k, v in RECORDS["enrolment"].items() if k != "source_system"}
    decoded = catalogue.decode(catalogue.encode("enrolment", v1_record, version=1), "enrolment")
    assert decoded.version == 1
    assert decoded.record == {**v1_record, "source_system": None}


def test_v2_data_read_by_a_reader_pinned_to_v1_skips_the_new_field() -> None:
    old = SchemaCatalogue.load(REPO_SCHEMAS, reader_versions={"enrolment": 1})
    assert old.reader("enrolment").version == 1
    decoded = old.decode(old.encode("enrolment", RECORDS["enrolment"]), "enrolment")
    assert decoded.version == 2
    assert decoded.record == {k: v for k, v in RECORDS["enrolment"].items() if k != "source_system"}


def test_pinning_a_missing_reader_version_is_refused() -> None:
    with pytest.raises(SchemaError, match="enrolment v7"):
        SchemaCatalogue.load(REPO_SCHEMAS, reader_versions={"enrolment": 7})


# --- what the encoder accepts and refuses --------------------------------------------------------


@pytest.mark.parametrize(
    ("occurred_at", "coverage_start"),
    [
        (MS_2025_06_02, dt.date(2025, 6, 1)),
        (dt.datetime(2025, 6, 2, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=7))), "2025-06-01"),
        ("2025-06-02T03:00:00Z", 20_240),
        ("2025-06-02T10:00:00.000+07:00", "2025-06-01"),
    ],
)
def test_dates_and_timestamps_are_accepted_in_several_forms(
    catalogue: SchemaCatalogue, occurred_at: object, coverage_start: object
) -> None:
    record = {**RECORDS["enrolment"], "occurred_at": occurred_at, "coverage_start": coverage_start}
    decoded = catalogue.decode(catalogue.encode("enrolment", record)).record
    assert (decoded["occurred_at"], decoded["coverage_start"]) == (MS_2025_06_02, dt.date(2025, 6, 1))


REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown_enum_symbol", {"event_type": NIK}, r"EnrolmentEvent\.event_type: not one of the symbols"),
    ("enum_symbol_wrong_type", {"event_type": 1}, r"EnrolmentEvent\.event_type"),
    ("bool_for_long", {"amount": True}, r"EnrolmentEvent\.amount: expected an integer, got bool"),
    ("float_for_long", {"amount": 1.5}, r"EnrolmentEvent\.amount: expected an integer"),
    ("long_out_of_range", {"amount": 2**63}, r"EnrolmentEvent\.amount: the integer is out of the long range"),
    ("int_for_string", {"branch_code": 7271}, r"EnrolmentEvent\.branch_code: expected a string, got int"),
    ("lone_surrogate", {"branch_code": "\ud800"}, r"EnrolmentEvent\.branch_code: .*surrogates"),
    ("array_item", {"programmes": ["JKK", NIK]}, r"EnrolmentEvent\.programmes\[\]: not one of"),
    ("string_for_array", {"paid_months": "2025-06"}, r"EnrolmentEvent\.paid_months: expected an array"),
    ("naive_timestamp", {"occurred_at": "2025-06-02T10:00:00"}, r"occurred_at: .*no time zone"),
    ("naive_datetime", {"occurred_at": dt.datetime(2025, 6, 2)}, r"occurred_at: .*no time zone"),
    ("bad_timestamp_text", {"occurred_at": NIK}, r"occurred_at: not an ISO-8601 timestamp"),
    ("datetime_for_date", {"coverage_start": dt.datetime(2025, 6, 1)}, r"coverage_start: expected a date"),
    ("bad_date_text", {"coverage_start": "01/06/2025"}, r"coverage_start: a date string must be YYYY-MM-DD"),
    ("impossible_date", {"coverage_start": "2025-02-30"}, r"coverage_start: not a valid calendar date"),
    ("date_out_of_range", {"coverage_start": 10**9}, r"coverage_start: the date is outside"),
    (
        "union_no_branch",
        {"coverage_end": 1.5},
        r"EnrolmentEvent\.coverage_end: expected an integer, got float",
    ),
    (
        "unknown_field",
        {"sourcesystem": "x"},
        r"EnrolmentEvent: 1 field\(s\) not in the schema: 'sourcesystem'",
    ),
    ("personal_key", {NIK: "x"}, r"EnrolmentEvent: 1 field\(s\) not in the schema$"),
]


@pytest.mark.parametrize(("changes", "message"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_the_encoder_refuses_naming_the_field_never_the_value(
    catalogue: SchemaCatalogue, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(EncodeError, match=message) as info:
        catalogue.encode("enrolment", {**RECORDS["enrolment"], **changes})
    assert NIK not in str(info.value)


def test_a_missing_field_without_default_is_refused_and_one_with_default_is_filled(
    catalogue: SchemaCatalogue,
) -> None:
    record = {k: v for k, v in RECORDS["enrolment"].items() if k not in ("nik", "source_system")}
    with pytest.raises(EncodeError, match=r"EnrolmentEvent\.nik: missing"):
        catalogue.encode("enrolment", record)
    record["nik"] = NIK
    assert catalogue.decode(catalogue.encode("enrolment", record)).record["source_system"] is None


def test_unknown_subject_or_version_is_refused(catalogue: SchemaCatalogue) -> None:
    with pytest.raises(EncodeError, match="unknown subject"):
        catalogue.encode("enrolments", RECORDS["enrolment"])
    with pytest.raises(EncodeError, match="no version 3"):
        catalogue.encode("enrolment", RECORDS["enrolment"], version=3)


# --- schema resolution rules -------------------------------------------------------------------


def _record(*fields: str, name: str = "R") -> str:
    return json.dumps({"type": "record", "name": name, "fields": [json.loads(f) for f in fields]})


def _resolve(writer: str, reader: str, payload: bytes) -> object:
    return compile_decoder(parse_schema(writer), parse_schema(reader))(payload)


@pytest.mark.parametrize(
    ("writer", "reader", "payload", "expected"),
    [
        ('"int"', '"long"', b"\x03", -2),
        ('"int"', '"float"', b"\x04", 2.0),
        ('"long"', '"double"', b"\x04", 2.0),
        ('"float"', '"double"', b"\x00\x00\xc0\x3f", 1.5),
        ('"string"', '"bytes"', b"\x04ab", b"ab"),
        ('"bytes"', '"string"', b"\x04ab", "ab"),
        ('"int"', '["null","string","long"]', b"\x04", 2),
        ('["null","int"]', '"long"', b"\x02\x04", 2),
        ('["int","string"]', '["string","long"]', b"\x02\x04ab", "ab"),
        ('"int"', '{"type":"int","logicalType":"date"}', b"\x02", dt.date(1970, 1, 2)),
    ],
)
def test_promotions_and_union_matching(writer: str, reader: str, payload: bytes, expected: object) -> None:
    result = _resolve(writer, reader, payload)
    assert result == expected
    assert type(result) is type(expected)


def test_enum_symbol_unknown_to_the_reader_takes_the_reader_default() -> None:
    writer = '{"type":"enum","name":"E","symbols":["A","B","C"]}'
    reader = '{"type":"enum","name":"E","symbols":["C","A","Z"],"default":"Z"}'
    assert [_resolve(writer, reader, bytes([i * 2])) for i in range(3)] == ["A", "Z", "C"]
    assert resolution_problems(parse_schema(writer), parse_schema(reader)) == []


def test_enum_symbol_unknown_to_the_reader_without_default_is_unresolvable() -> None:
    writer = '{"type":"enum","name":"E","symbols":["A","B"]}'
    reader = '{"type":"enum","name":"E","symbols":["A"]}'
    assert _resolve(writer, reader, b"\x00") == "A"
    with pytest.raises(DecodeError) as info:
        _resolve(writer, reader, b"\x02")
    assert info.value.code == "unresolvable"
    assert resolution_problems(parse_schema(writer), parse_schema(reader)) == [
        "E: writer symbols B of enum E are not in the reader's enum, which has no default"
    ]


def test_writer_union_branch_unknown_to_the_reader_is_unresolvable_only_when_used() -> None:
    assert _resolve('["null","string"]', '"string"', b"\x02\x02a") == "a"
    with pytest.raises(DecodeError) as info:
        _resolve('["null","string"]', '"string"', b"\x00")
    assert info.value.code == "unresolvable"


def test_record_fields_are_matched_by_name_skipped_defaulted_and_aliased() -> None:
    writer = _record(
        '{"name":"a","type":"int"}',
        '{"name":"gone","type":{"type":"array","items":{"type":"map","values":"string"}}}',
        '{"name":"old_name","type":"string"}',
    )
    reader = _record(
        '{"name":"new_name","aliases":["old_name"],"type":"string"}',
        '{"name":"added","type":{"type":"array","items":"long"},"default":[1]}',
        '{"name":"a","type":"long"}',
        name="Renamed",
    )
    reader = json.dumps({**json.loads(reader), "aliases": ["R"]})
    payload = b"\x02" + b"\x02\x02\x02k\x02v\x00\x00" + b"\x02x"
    first: Any = _resolve(writer, reader, payload)
    assert first == {"new_name": "x", "added": [1], "a": 1}
    assert list(first) == ["new_name", "added", "a"]
    first["added"].append(2)
    assert _resolve(writer, reader, payload) == {"new_name": "x", "added": [1], "a": 1}


def test_skipped_writer_fields_are_still_validated() -> None:
    writer = _record('{"name":"gone","type":"string"}', '{"name":"a","type":"int"}')
    reader = _record('{"name":"a","type":"int"}')
    assert _resolve(writer, reader, b"\x02x\x04") == {"a": 2}
    with pytest.raises(DecodeError, match=r"R\.gone: string is not valid UTF-8"):
        _resolve(writer, reader, b"\x02\xff\x04")


@pytest.mark.parametrize(
    ("writer", "reader", "problem"),
    [
        ('"string"', '"int"', "writer type string cannot be read as int"),
        ('"long"', '"int"', "writer type long cannot be read as int"),
        ('"int"', '["null","string"]', "writer type int matches no branch of the reader's union"),
        (_record(), _record('{"name":"b","type":"int"}'), "R.b: reader field has no default"),
        (_record(), _record(name="Other"), "writer type R cannot be read as Other"),
        (
            '{"type":"fixed","name":"F","size":2}',
            '{"type":"fixed","name":"F","size":3}',
            "writer type F cannot be read as F",
        ),
    ],
)
def test_unresolvable_schemas_fail_to_compile(writer: str, reader: str, problem: str) -> None:
    with pytest.raises(SchemaError, match=problem.replace(".", r"\.")):
        compile_decoder(parse_schema(writer), parse_schema(reader))
    assert any(problem in p for p in resolution_problems(parse_schema(writer), parse_schema(reader)))


def test_recursive_records_round_trip(tmp_path: Path) -> None:
    schema = {
        "type": "record",
        "name": "Node",
        "namespace": "t",
        "fields": [
            {"name": "label", "type": "string"},
            {"name": "children", "type": {"type": "array", "items": "Node"}},
            {"name": "meta", "type": {"type": "map", "values": ["null", "Node"]}, "default": {}},
        ],
    }
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "v1.avsc").write_text(json.dumps(schema))
    catalogue = SchemaCatalogue.load(tmp_path)
    leaf = {"label": "leaf", "children": [], "meta": {"x": None}}
    tree = {"label": "root", "children": [leaf, leaf], "meta": {"up": leaf}}
    assert catalogue.decode(catalogue.encode("tree", tree)).record == tree
