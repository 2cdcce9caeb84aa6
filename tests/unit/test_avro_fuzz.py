"""Property tests: any bytes decode or fail with DecodeError, fast; our codec agrees with fastavro."""

from __future__ import annotations

import datetime as dt
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema as fastavro_parse
from fastavro import schemaless_reader, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.avro import HEADER_SIZE, DecodeError, SchemaCatalogue, compile_decoder, parse_schema
from recon.avro._encoder import build_encoder

REPO_SCHEMAS = Path(__file__).parents[2] / "schemas"
CATALOGUE = SchemaCatalogue.load(REPO_SCHEMAS)
HEADERS = [v.schema.fingerprint for v in CATALOGUE.versions()]
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BOUND_SECONDS = 0.5

LONGS = st.integers(-(2**63), 2**63 - 1)
# Years 1-9999 are what both decoders can turn into datetimes.
MILLIS = st.integers(-62_135_596_800_000, 253_402_300_799_999)
TEXT = st.text(max_size=20)
OPTIONAL_TEXT = st.none() | TEXT


def _enrolments() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "event_id": TEXT,
            "event_type": st.sampled_from(["ENROLLED", "CONTRIBUTION_PAID", "TERMINATED"]),
            "occurred_at": MILLIS,
            "branch_code": TEXT,
            "agreement_id": TEXT,
            "nik": st.from_regex(r"\A[0-9]{16}\Z"),
            "programmes": st.lists(st.sampled_from(["JKK", "JKM"]), max_size=3),
            "declared_income": LONGS,
            "coverage_start": st.dates(),
            "coverage_end": st.none() | st.dates(),
            "paid_months": st.lists(TEXT, max_size=4),
            "amount": LONGS,
            "termination_reason": OPTIONAL_TEXT,
            "source_system": OPTIONAL_TEXT,
        }
    )


def _claims() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "event_id": TEXT,
            "event_type": st.sampled_from(["FILED", "APPROVED", "REJECTED", "PAID"]),
            "occurred_at": MILLIS,
            "branch_code": TEXT,
            "claim_id": TEXT,
            "nik": TEXT,
            "agreement_id": OPTIONAL_TEXT,
            "programme": st.sampled_from(["JKK", "JKM"]),
            "incident_date": st.dates(),
            "amount_claimed": LONGS,
            "amount_paid": st.none() | LONGS,
        }
    )


def _decode_or_reject(payload: bytes) -> None:
    started = time.perf_counter()
    try:
        CATALOGUE.decode(payload)
    except DecodeError as exc:
        # The decoder's last-resort catch-all must never be what caught a payload.
        assert "could not be decoded" not in exc.reason
    assert time.perf_counter() - started < BOUND_SECONDS


@FAST
@given(header=st.sampled_from(HEADERS), body=st.binary(max_size=300))
def test_any_bytes_after_a_valid_header_decode_or_fail_cleanly(header: bytes, body: bytes) -> None:
    _decode_or_reject(b"\xc3\x01" + header + body)


MUTATIONS = st.lists(
    st.tuples(st.sampled_from(["flip", "insert", "delete"]), st.integers(0, 10_000), st.integers(0, 255)),
    min_size=1,
    max_size=4,
)


def _mutate(payload: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    data = bytearray(payload)
    for op, where, byte in mutations:
        at = HEADER_SIZE + where % max(1, len(data) - HEADER_SIZE)
        if op == "flip" and at < len(data):
            data[at] ^= byte or 0x80
        elif op == "insert":
            data.insert(at, byte)
        elif at < len(data):
            del data[at]
    return bytes(data)


@FAST
@given(record=_enrolments(), mutations=MUTATIONS)
def test_mutated_enrolments_decode_or_fail_cleanly(record: dict[str, Any], mutations: list[Any]) -> None:
    _decode_or_reject(_mutate(CATALOGUE.encode("enrolment", record), mutations))


@FAST
@given(record=_claims(), mutations=MUTATIONS)
def test_mutated_claims_decode_or_fail_cleanly(record: dict[str, Any], mutations: list[Any]) -> None:
    _decode_or_reject(_mutate(CATALOGUE.encode("claim", record), mutations))


def _fastavro_case(subject: str) -> tuple[Any, Any]:
    raw = json.loads((REPO_SCHEMAS / subject / f"v{CATALOGUE.reader(subject).version}.avsc").read_text())
    return fastavro_parse(raw), compile_decoder(parse_schema(json.dumps(raw)))


FASTAVRO = {subject: _fastavro_case(subject) for subject in ("enrolment", "claim")}


def _normalise(record: dict[str, Any]) -> dict[str, Any]:
    """fastavro reads timestamp-millis as aware datetimes; ours keeps int milliseconds."""
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return {
        k: (v - epoch) // dt.timedelta(milliseconds=1) if isinstance(v, dt.datetime) else v
        for k, v in record.items()
    }


def _differential(subject: str, record: dict[str, Any]) -> None:
    schema, ours = FASTAVRO[subject]
    buffer = io.BytesIO()
    schemaless_writer(buffer, schema, record)
    body = buffer.getvalue()
    theirs: Any = schemaless_reader(io.BytesIO(body), schema, None)
    assert ours(body) == _normalise(theirs) == record
    assert CATALOGUE.encode(subject, record)[HEADER_SIZE:] == body


@FAST
@given(record=_enrolments())
def test_enrolments_decode_as_fastavro_does(record: dict[str, Any]) -> None:
    _differential("enrolment", record)


@FAST
@given(record=_claims())
def test_claims_decode_as_fastavro_does(record: dict[str, Any]) -> None:
    _differential("claim", record)


@pytest.mark.parametrize("subject", ["enrolment", "claim"])
def test_fastavro_reads_a_negative_enum_index_where_we_refuse(subject: str) -> None:
    """Why the decoder is ours: the library maps index -1 to the last symbol."""
    schema, ours = FASTAVRO[subject]
    record = {"event_id": "", "event_type": "FILED" if subject == "claim" else "ENROLLED"}
    body = CATALOGUE.encode(subject, {**_minimal(subject), **record})[HEADER_SIZE:]
    corrupted = body[:1] + b"\x01" + body[2:]
    theirs: Any = schemaless_reader(io.BytesIO(corrupted), schema, None)
    assert theirs["event_type"] in ("PAID", "TERMINATED")
    with pytest.raises(DecodeError, match="event_type: enum index out of range"):
        ours(corrupted)


def _minimal(subject: str) -> dict[str, Any]:
    common = {"occurred_at": 0, "branch_code": "", "nik": "", "event_id": ""}
    if subject == "claim":
        return {**common, "claim_id": "", "programme": "JKK", "incident_date": 0, "amount_claimed": 0}
    return {
        **common,
        "agreement_id": "",
        "programmes": [],
        "declared_income": 0,
        "coverage_start": 0,
        "amount": 0,
    }


KITCHEN_SINK = {
    "type": "record",
    "name": "Sink",
    "namespace": "t",
    "fields": [
        {"name": "b", "type": "boolean"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "raw", "type": "bytes"},
        {"name": "id", "type": {"type": "fixed", "name": "Id", "size": 2}},
        {"name": "m", "type": {"type": "map", "values": ["null", "int", {"type": "array", "items": "Id"}]}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}},
        {"name": "next", "type": ["null", "Sink"]},
        {"name": "nulls", "type": {"type": "array", "items": "null"}},
    ],
}
SINK_SCHEMA = parse_schema(json.dumps(KITCHEN_SINK))
SINK = compile_decoder(SINK_SCHEMA, max_items=10_000)
SINK_FASTAVRO = fastavro_parse(KITCHEN_SINK)
SINK_ENCODE = build_encoder(SINK_SCHEMA)  # private: the catalogue is the public way to encode


def _sinks() -> st.SearchStrategy[dict[str, Any]]:
    fixed = st.binary(min_size=2, max_size=2)
    return st.deferred(
        lambda: st.fixed_dictionaries(
            {
                "b": st.booleans(),
                "f": st.floats(width=32),
                "d": st.floats(),
                "raw": st.binary(max_size=8),
                "id": fixed,
                "m": st.dictionaries(
                    TEXT,
                    st.none() | st.integers(-(2**31), 2**31 - 1) | st.lists(fixed, max_size=3),
                    max_size=3,
                ),
                "day": st.dates(),
                "at": MILLIS,
                "e": st.sampled_from(["A", "B", "C"]),
                "next": st.none() | _sinks(),
                "nulls": st.lists(st.none(), max_size=5),
            }
        )
    )


def _canon(value: Any) -> Any:
    """Comparable form: dicts sorted, datetimes (fastavro's timestamps) as millis, floats by repr (NaN)."""
    if isinstance(value, dict):
        return sorted((k, _canon(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_canon(v) for v in value]
    if isinstance(value, dt.datetime):
        return (value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)
    return repr(value) if isinstance(value, float) else value


@FAST
@given(value=_sinks(), mutations=MUTATIONS)
def test_every_type_round_trips_agrees_with_fastavro_and_survives_mutation(
    value: dict[str, Any], mutations: list[Any]
) -> None:
    body = SINK_ENCODE(value)
    ours = SINK(body)
    theirs = schemaless_reader(io.BytesIO(body), SINK_FASTAVRO, None)
    assert _canon(ours) == _canon(theirs) == _canon(value)
    started = time.perf_counter()
    try:
        SINK(_mutate(b"\0" * HEADER_SIZE + body, mutations)[HEADER_SIZE:])
    except DecodeError as exc:
        assert "could not be decoded" not in exc.reason
    assert time.perf_counter() - started < BOUND_SECONDS
