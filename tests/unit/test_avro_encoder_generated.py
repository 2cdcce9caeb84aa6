"""Property: the generated encoder writes exactly the bytes the closure encoder wrote, and refuses
exactly what it refused, with the same message (`recon publish` shows it per line)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avro_closure_encoder import build_encoder as closure_encoder
from recon.avro import EncodeError, SchemaCatalogue, parse_schema
from recon.avro._encoder import build_encoder
from recon.avro._nodes import Array, Enum, Fixed, Map, Node, Primitive, Record, Union
from recon.avro._schema import Schema

REPO_SCHEMAS = Path(__file__).parents[2] / "schemas"
CATALOGUE = SchemaCatalogue.load(REPO_SCHEMAS)
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Every type and shape the repo's schemas lack: recursion, fixed, map, bytes, float, multi-branch unions.
EVERY_KIND = parse_schema(
    {
        "type": "record",
        "name": "ns.Everything",
        "fields": [
            {"name": "flag", "type": "boolean"},
            {"name": "small", "type": "int"},
            {"name": "ratio", "type": "float"},
            {"name": "blob", "type": "bytes"},
            {"name": "digest", "type": {"type": "fixed", "name": "Digest", "size": 4}},
            {"name": "labels", "type": {"type": "map", "values": ["null", "long", "string"]}},
            {"name": "either", "type": ["string", "long", {"type": "int", "logicalType": "date"}]},
            {"name": "when", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}, "string"]},
            {"name": "nothing", "type": "null", "default": None},
            {
                "name": "tree",
                "type": {
                    "type": "record",
                    "name": "Node",
                    "fields": [
                        {"name": "label", "type": "string"},
                        {"name": "children", "type": {"type": "array", "items": "Node"}, "default": []},
                        {"name": "next", "type": ["null", "Node"], "default": None},
                    ],
                },
            },
            {"name": "other_tree", "type": ["null", "Node"], "default": None},
        ],
    }
)
SCHEMAS: list[tuple[str, Schema]] = [
    *((f"{v.subject} v{v.version}", v.schema) for v in CATALOGUE.versions()),
    ("every kind", EVERY_KIND),
]

# Values of the wrong kind, or of the right kind and just out of bounds, offered anywhere.
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.just(10**400),
    st.text(alphabet=st.sampled_from("aZ_9é€ \ud800"), max_size=6),
    st.sampled_from(
        ["2025-02-30", "2025-1-1", "2025-06-01", "2025-06-01T03:00:00+07:00", "2025-06-01T03:00"]
    ),
    st.binary(max_size=6),
    st.dates(),
    st.datetimes(),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def values(node: Node, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of ``node``, one in twenty replaced by junk at each level (the last roll, so that
    shrinking heads for valid values)."""
    if depth > 3:
        return st.deferred(lambda: JUNK)
    good = _valid(node, depth)
    return st.integers(0, 19).flatmap(lambda roll: JUNK if roll == 19 else good)


def _valid(node: Node, depth: int) -> st.SearchStrategy[Any]:
    match node:
        case Primitive(type="null"):
            return st.none()
        case Primitive(type="boolean"):
            return st.booleans()
        case Primitive(logical="date"):
            return st.one_of(st.dates(), st.dates().map(dt.date.isoformat), st.integers(-800_000, 3_000_000))
        case Primitive(logical="timestamp-millis"):
            millis = st.integers(-62_135_596_800_001, 253_402_300_800_000)
            aware = st.datetimes(timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=7))]))
            return st.one_of(millis, aware, aware.map(dt.datetime.isoformat))
        case Primitive(type="int"):
            return st.integers(-(2**31) - 1, 2**31)
        case Primitive(type="long"):
            return st.integers(-(2**63) - 1, 2**63)
        case Primitive(type="float" | "double"):
            return st.one_of(st.floats(allow_nan=False), st.integers(-(2**60), 2**60))
        case Primitive(type="string"):
            return st.text(max_size=80)
        case Primitive(type="bytes"):
            return st.one_of(st.binary(max_size=80), st.binary(max_size=4).map(bytearray))
        case Enum(symbols=symbols):
            return st.sampled_from(symbols)
        case Fixed(size=size):
            exact = st.binary(min_size=size, max_size=size)
            return st.one_of(exact, exact, st.binary(min_size=size - 1, max_size=size + 1))
        case Array(items=items):
            inner = values(items, depth + 1)
            return st.one_of(st.lists(inner, max_size=3), st.lists(inner, max_size=2).map(tuple))
        case Map(values=inner_node):
            inner = values(inner_node, depth + 1)
            keys = st.one_of(st.text(max_size=4), st.text(max_size=4), st.integers(0, 3))
            return st.dictionaries(keys, inner, max_size=3)
        case Union(branches=branches):
            return st.one_of([_valid(b, depth) for b in branches])
        case Record(fields=fields):
            fields_of = {f.name: values(f.type, depth + 1) for f in fields}
            extra = st.dictionaries(
                st.sampled_from(["surplus", "9 not a name", "nik2"]), st.integers(), max_size=1
            )
            complete = st.fixed_dictionaries(fields_of)
            partial = st.fixed_dictionaries({}, optional=fields_of)
            return st.tuples(st.one_of(complete, complete, partial), st.integers(0, 9), extra).map(
                lambda t: {**t[0], **t[2]} if t[1] == 9 else t[0]
            )
    raise AssertionError(node)


def outcome(encode: Any, value: object) -> tuple[str, object]:
    try:
        return "bytes", encode(value)
    except EncodeError as exc:
        return "refused", str(exc)


@pytest.mark.parametrize(("label", "schema"), SCHEMAS, ids=[label for label, _ in SCHEMAS])
def test_the_generated_encoder_agrees_with_the_closure_encoder(label: str, schema: Schema) -> None:
    generated, reference = build_encoder(schema), closure_encoder(schema)

    @PROPERTY
    @given(values(schema.node))
    def agree(value: object) -> None:
        assert outcome(generated, value) == outcome(reference, value)

    agree()


@pytest.mark.parametrize(("label", "schema"), SCHEMAS, ids=[label for label, _ in SCHEMAS])
def test_the_property_sees_both_encoded_and_refused_records(label: str, schema: Schema) -> None:
    # Guards the property above against a strategy that only ever produces refusals (or none).
    generated = build_encoder(schema)
    kinds: set[str] = set()

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(values(schema.node))
    def collect(value: object) -> None:
        kinds.add(outcome(generated, value)[0])

    collect()
    assert kinds == {"bytes", "refused"}


def test_a_prefix_comes_before_the_body() -> None:
    schema = CATALOGUE.reader("alert").schema
    encode = build_encoder(schema)
    record = {
        "alert_id": "a-1",
        "fingerprint": "over_quota/PKS-1",
        "rule": "over_quota",
        "severity": "WARNING",
        "state": "FIRING",
        "fired_at": 0,
        "message": "m",
        "observed": 1.5,
        "expected": 1.0,
        "runbook": "r",
    }
    assert encode(record, b"\xc3\x01header") == b"\xc3\x01header" + encode(record)


def test_a_recursive_record_refuses_naming_the_path_it_was_first_reached_by() -> None:
    encode = build_encoder(EVERY_KIND)
    deep = {"label": "a", "next": {"label": "b", "children": [{"label": 7}]}}
    record = {
        "flag": True,
        "small": 1,
        "ratio": 0.5,
        "blob": b"",
        "digest": b"abcd",
        "labels": {},
        "either": 3,
        "when": None,
        "tree": deep,
    }
    with pytest.raises(EncodeError) as caught:
        encode(record)
    assert str(caught.value) == "Everything.tree.label: expected a string, got int"
