"""The strict decoder refuses every malformed payload, with a DecodeError and in bounded time.

The Avro project's cross-SDK must-reject vectors first, then crafted cases for each rule and each
error code of the catalogue.
"""

from __future__ import annotations

import datetime as dt
import json
import pickle
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from recon.avro import (
    ERROR_CODES,
    HEADER_SIZE,
    MARKER,
    DecodeError,
    SchemaCatalogue,
    compile_decoder,
    parse_schema,
)

DATA = Path(__file__).parents[1] / "data" / "avro"
REPO_SCHEMAS = Path(__file__).parents[2] / "schemas"
VECTORS: list[dict[str, str]] = json.loads((DATA / "binary-rejections.json").read_text())["vectors"]
NIK = "7271014507900001"
BOUND_SECONDS = 0.5


def _varint(value: int) -> bytes:
    """Zig-zag varint of any integer (even ones outside the long range, to build bad payloads)."""
    z = value * 2 if value >= 0 else -value * 2 - 1
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _decode(schema: str, payload: bytes, **kwargs: Any) -> object:
    return compile_decoder(parse_schema(schema), **kwargs)(payload)


def _rejected(schema: str, payload: bytes, **kwargs: Any) -> DecodeError:
    started = time.perf_counter()
    with pytest.raises(DecodeError) as info:
        _decode(schema, payload, **kwargs)
    assert time.perf_counter() - started < BOUND_SECONDS
    return info.value


# --- the Avro project's must-reject vectors (AVRO-4304) ------------------------------------------


def test_the_vendored_vectors_are_all_there() -> None:
    assert len(VECTORS) >= 9
    assert len({v["name"] for v in VECTORS}) == len(VECTORS)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_must_reject_vector_is_rejected(vector: dict[str, str]) -> None:
    error = _rejected(vector["schema"], bytes.fromhex(vector["bytesHex"]))
    assert error.code == "malformed"


# --- crafted cases, one per rule -----------------------------------------------------------------

ENUM = '{"type":"enum","name":"E","symbols":["A","B"]}'
ARRAY_INT = '{"type":"array","items":"int"}'
ARRAY_NULL = '{"type":"array","items":"null"}'
EMPTY_RECORD = '{"type":"array","items":{"type":"record","name":"R","fields":[]}}'
MAP_NULL = '{"type":"map","values":"null"}'
DATE = '{"type":"int","logicalType":"date"}'
TIMESTAMP = '{"type":"long","logicalType":"timestamp-millis"}'
LINKED = '{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}'

MALFORMED: list[tuple[str, str, bytes]] = [
    ("truncated_long", '"long"', b"\x80"),
    ("truncated_string", '"string"', b"\x06ab"),
    ("truncated_double", '"double"', b"\x00" * 7),
    ("truncated_float", '"float"', b"\x00" * 3),
    ("truncated_fixed", '{"type":"fixed","name":"F","size":4}', b"\x00" * 3),
    ("truncated_record", '{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}', b""),
    ("long_11_bytes", '"long"', b"\x80" * 10 + b"\x00"),
    ("long_above_64_bits", '"long"', b"\xff" * 9 + b"\x7f"),
    ("int_6_bytes", '"int"', b"\x80" * 5 + b"\x00"),
    ("int_above_int32", '"int"', _varint(2**31)),
    ("int_below_int32", '"int"', _varint(-(2**31) - 1)),
    ("string_longer_than_payload", '"string"', _varint(5) + b"ab"),
    ("string_length_huge", '"string"', _varint(2**62) + b"ab"),
    ("bytes_longer_than_payload", '"bytes"', _varint(2) + b"a"),
    ("string_invalid_utf8", '"string"', _varint(1) + b"\xff"),
    ("string_utf8_surrogate", '"string"', _varint(3) + b"\xed\xa0\x80"),
    ("string_utf8_overlong", '"string"', _varint(2) + b"\xc0\xaf"),
    ("map_key_invalid_utf8", '{"type":"map","values":"int"}', _varint(1) + _varint(1) + b"\xff\x00\x00"),
    ("boolean_2", '"boolean"', b"\x02"),
    ("boolean_ff", '"boolean"', b"\xff"),
    ("enum_index_2", ENUM, _varint(2)),
    ("enum_index_int32_min", ENUM, _varint(-(2**31))),
    ("union_index_2", '["null","int"]', _varint(2)),
    ("union_empty", "[]", _varint(0)),
    ("array_count_exceeds_bytes", ARRAY_INT, _varint(1000) + b"\x02\x04"),
    ("array_negative_count_size_too_large", ARRAY_INT, _varint(-2) + _varint(100) + b"\x02\x04\x00"),
    ("array_negative_count_size_negative", ARRAY_INT, _varint(-2) + _varint(-1) + b"\x02\x04\x00"),
    ("array_negative_count_size_mismatch", ARRAY_INT, _varint(-2) + _varint(1) + b"\x02\x04\x00"),
    ("array_unterminated", ARRAY_INT, _varint(1) + b"\x02"),
    ("map_count_exceeds_bytes", '{"type":"map","values":"long"}', _varint(2**40) + b"\x00"),
    ("date_after_9999", DATE, _varint(2_932_897)),
    ("date_int32_min", DATE, _varint(-(2**31))),
    ("timestamp_long_max", TIMESTAMP, _varint(2**63 - 1)),
    ("timestamp_before_year_1", TIMESTAMP, _varint(-(2**62))),
    ("recursion_too_deep", LINKED, b"\x02" * 100_000 + b"\x00"),
]


@pytest.mark.parametrize(("schema", "payload"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_payload_is_rejected(schema: str, payload: bytes) -> None:
    assert _rejected(schema, payload).code == "malformed"


UNBOUNDED: list[tuple[str, str, bytes]] = [
    ("array_of_null_count_2_62", ARRAY_NULL, _varint(2**62) + b"\x00"),
    ("array_of_empty_records_count_2_62", EMPTY_RECORD, _varint(2**62) + b"\x00"),
    ("array_of_null_negative_count_2_62", ARRAY_NULL, _varint(-(2**62)) + _varint(0) + b"\x00"),
    ("array_of_null_many_blocks", ARRAY_NULL, (_varint(600_000) * 2) + b"\x00"),
    ("map_of_null_count_2_62", MAP_NULL, _varint(2**62) + b"\x00"),
]


@pytest.mark.parametrize(("schema", "payload"), [c[1:] for c in UNBOUNDED], ids=[c[0] for c in UNBOUNDED])
def test_payload_that_would_allocate_without_bound_is_rejected(schema: str, payload: bytes) -> None:
    assert _rejected(schema, payload).code in ("too_large", "malformed")


def test_item_budget_is_per_payload_and_configurable() -> None:
    nested = '{"type":"array","items":{"type":"array","items":"null"}}'
    payload = _varint(3) + (_varint(40) + b"\x00") * 3 + b"\x00"
    assert len(_decode(nested, payload, max_items=123)) == 3  # type: ignore[arg-type]
    assert _rejected(nested, payload, max_items=122).code == "too_large"


VALID: list[tuple[str, str, bytes, object]] = [
    ("long_max_10_bytes", '"long"', _varint(2**63 - 1), 2**63 - 1),
    ("long_min", '"long"', _varint(-(2**63)), -(2**63)),
    ("int_max", '"int"', _varint(2**31 - 1), 2**31 - 1),
    ("int_min", '"int"', _varint(-(2**31)), -(2**31)),
    ("non_minimal_varint", '"int"', b"\x82\x80\x00", 1),
    ("booleans", '{"type":"array","items":"boolean"}', b"\x04\x00\x01\x00", [False, True]),
    ("negative_count_with_byte_size", ARRAY_INT, _varint(-2) + _varint(2) + b"\x02\x04\x00", [1, 2]),
    ("two_blocks", ARRAY_INT, b"\x02\x02\x02\x04\x00", [1, 2]),
    ("array_of_null", ARRAY_NULL, _varint(3) + b"\x00", [None, None, None]),
    ("map", '{"type":"map","values":"int"}', b"\x02\x02k\x06\x00", {"k": 3}),
    ("fixed", '{"type":"fixed","name":"F","size":2}', b"ab", b"ab"),
    ("float", '"float"', b"\x00\x00\xc0\x3f", 1.5),
    ("utf8", '"string"', _varint(4) + "Sué".encode(), "Sué"),
    ("date_9999_12_31", DATE, _varint(2_932_896), dt.date(9999, 12, 31)),
    ("date_0001_01_01", DATE, _varint(-719_162), dt.date(1, 1, 1)),
    ("linked_list", LINKED, b"\x02\x02\x00", {"next": {"next": {"next": None}}}),
]


@pytest.mark.parametrize(("schema", "payload", "expected"), [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_edge_values_still_decode(schema: str, payload: bytes, expected: object) -> None:
    assert _decode(schema, payload) == expected


def test_bytes_after_the_datum_are_trailing_bytes() -> None:
    assert _rejected('"int"', b"\x02\x00").code == "trailing_bytes"
    assert _rejected(ARRAY_INT, b"\x02\x02\x00\x00").code == "trailing_bytes"


# --- the catalogue's error codes ---------------------------------------------------------------


@pytest.fixture(scope="module")
def catalogue() -> SchemaCatalogue:
    return SchemaCatalogue.load(REPO_SCHEMAS, max_message_bytes=2048)


def _claim(**overrides: Any) -> dict[str, Any]:
    record = {
        "event_id": "c-1",
        "event_type": "FILED",
        "occurred_at": 1_750_000_000_000,
        "branch_code": "PALU",
        "claim_id": "K-1",
        "nik": NIK,
        "programme": "JKM",
        "incident_date": "2025-06-01",
        "amount_claimed": 42_000_000,
    }
    return {**record, **overrides}


def _code(catalogue: SchemaCatalogue, payload: bytes, subject: str | None = "claim") -> DecodeError:
    with pytest.raises(DecodeError) as info:
        catalogue.decode(payload, subject)
    assert NIK not in str(info.value)
    return info.value


def test_every_error_code_has_a_crafted_case(catalogue: SchemaCatalogue, tmp_path: Path) -> None:
    good = catalogue.encode("claim", _claim())
    seen = {
        _code(catalogue, b"").code,
        _code(catalogue, good[:9]).code,
        _code(catalogue, b"\xc3\x02" + good[2:]).code,
        _code(catalogue, MARKER + b"\x00" * 8 + good[HEADER_SIZE:]).code,
        _code(catalogue, good, "enrolment").code,
        _code(catalogue, good[:-1]).code,
        _code(catalogue, good + b"\x00").code,
        _code(catalogue, good[:HEADER_SIZE] + b"\x00" * 3000).code,
        _unresolvable(tmp_path).code,
    }
    assert seen == set(ERROR_CODES)


def test_codes_match_their_cases(catalogue: SchemaCatalogue) -> None:
    good = catalogue.encode("claim", _claim())
    assert _code(catalogue, good[:9]).code == "not_single_object"
    assert _code(catalogue, b"\x00\x01" + good[2:]).code == "not_single_object"
    unknown = _code(catalogue, MARKER + b"\x01" * 8 + good[HEADER_SIZE:])
    assert unknown.code == "unknown_fingerprint"
    assert "0101010101010101" in unknown.reason
    wrong = _code(catalogue, good, "enrolment")
    assert (wrong.code, wrong.subject, wrong.version) == ("wrong_subject", "claim", 1)
    assert _code(catalogue, good + b"\x00").code == "trailing_bytes"
    assert _code(catalogue, good + b"\x00" * 3000).code == "too_large"


def test_malformed_reason_names_the_field_never_the_value(catalogue: SchemaCatalogue) -> None:
    good = catalogue.encode("claim", _claim(agreement_id=None))
    # The byte after the NIK is agreement_id's union index; 0x0a is index 5.
    at = good.index(NIK.encode()) + len(NIK)
    error = _code(catalogue, good[:at] + b"\x0a" + good[at + 1 :])
    assert error.code == "malformed"
    assert error.reason == "ClaimEvent.agreement_id: union branch index out of range"
    assert (error.subject, error.version) == ("claim", 1)


def test_a_negative_enum_index_is_not_read_as_the_last_symbol(catalogue: SchemaCatalogue) -> None:
    good = catalogue.encode("claim", _claim())
    assert good[HEADER_SIZE + 4] == 0  # event_type FILED, after the 4-byte event_id "c-1"
    error = _code(catalogue, good[: HEADER_SIZE + 4] + b"\x01" + good[HEADER_SIZE + 5 :])
    assert error.reason == "ClaimEvent.event_type: enum index out of range"


def test_a_payload_of_any_bytes_like_type_is_accepted(catalogue: SchemaCatalogue) -> None:
    good = catalogue.encode("claim", _claim())
    assert catalogue.decode(bytearray(good)).record == catalogue.decode(memoryview(good)).record


def test_an_unknown_expected_subject_is_a_callers_mistake(catalogue: SchemaCatalogue) -> None:
    with pytest.raises(ValueError, match="unknown subject"):
        catalogue.decode(b"", "claims")


def test_decode_error_survives_pickling() -> None:
    error = DecodeError("malformed", "X.y: rule", subject="claim", version=1)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.reason, copy.subject, copy.version, str(copy)) == (
        "malformed",
        "X.y: rule",
        "claim",
        1,
        "malformed: X.y: rule",
    )


def _unresolvable(tmp_path: Path) -> DecodeError:
    """A v2 that drops an enum symbol (an incompatible change), and v1 data using it."""
    folder = tmp_path / "schemas" / "claim"
    folder.mkdir(parents=True)
    shutil.copy(REPO_SCHEMAS / "claim" / "v1.avsc", folder / "v1.avsc")
    v2 = json.loads((folder / "v1.avsc").read_text())
    v2["fields"][1]["type"]["symbols"] = ["FILED", "APPROVED", "REJECTED"]
    (folder / "v2.avsc").write_text(json.dumps(v2))
    catalogue = SchemaCatalogue.load(tmp_path / "schemas")
    assert catalogue.decode(catalogue.encode("claim", _claim(), version=1)).record["event_type"] == "FILED"
    error = _code(catalogue, catalogue.encode("claim", _claim(event_type="PAID"), version=1))
    assert error.code == "unresolvable"
    assert "PAID" not in error.reason
    return error
