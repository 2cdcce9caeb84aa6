"""CRC-64-AVRO, Parsing Canonical Form and single-object framing, against the Avro spec's vectors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastavro.schema import fingerprint as fastavro_fingerprint
from fastavro.schema import to_parsing_canonical_form

from recon.avro import MARKER, SchemaCatalogue, SchemaError, crc64_avro, parse_schema

DATA = Path(__file__).parents[1] / "data" / "avro"
REPO_SCHEMAS = Path(__file__).parents[2] / "schemas"


@dataclass(frozen=True)
class Case:
    number: str
    input: str
    canonical: str
    fingerprint: int | None


def _spec_cases() -> list[Case]:
    """The cases of apache/avro share/test/data/schema-tests.txt (vendored)."""
    cases: list[Case] = []
    number, fields = "", dict[str, str]()
    multiline: list[str] | None = None
    for line in (DATA / "schema-tests.txt").read_text().splitlines():
        if multiline is not None:
            if line == "INPUT":
                fields["INPUT"], multiline = "\n".join(multiline), None
            else:
                multiline.append(line)
        elif line.startswith("// ") and line[3:].isdigit():
            if fields:
                cases.append(_case(number, fields))
            number, fields = line[3:], {}
        elif line == "<<INPUT":
            multiline = []
        elif line.startswith("<<"):
            key, _, value = line[2:].partition(" ")
            fields[key] = value
    cases.append(_case(number, fields))
    return cases


def _case(number: str, fields: dict[str, str]) -> Case:
    fp = fields.get("fingerprint")
    return Case(number, fields["INPUT"], fields["canonical"], int(fp) if fp else None)


CASES = _spec_cases()
# Case 026 gives the boolean field f1 the *string* "true" as default; our parser checks defaults
# against their field's type (as the spec requires), so it refuses that schema.
INVALID_DEFAULT = "026"


def test_the_vendored_file_holds_every_case() -> None:
    assert [c.number for c in CASES] == [f"{i:03d}" for i in range(34)]


def test_crc64_of_the_empty_input_is_the_spec_constant() -> None:
    assert crc64_avro(b"") == 0xC15D213AA4D7A795


@pytest.mark.parametrize("case", [c for c in CASES if c.fingerprint is not None], ids=lambda c: c.number)
def test_crc64_of_canonical_form_matches_the_spec(case: Case) -> None:
    assert case.fingerprint is not None
    assert crc64_avro(case.canonical.encode()) == case.fingerprint % 2**64


@pytest.mark.parametrize("case", [c for c in CASES if c.number != INVALID_DEFAULT], ids=lambda c: c.number)
def test_canonical_form_and_fingerprint_match_the_spec(case: Case) -> None:
    schema = parse_schema(case.input)
    assert schema.canonical_form == case.canonical
    expected = parse_schema(case.canonical).fingerprint
    assert schema.fingerprint == expected
    if case.fingerprint is not None:
        assert schema.fingerprint == (case.fingerprint % 2**64).to_bytes(8, "little")


def test_a_default_that_does_not_fit_its_field_is_refused() -> None:
    (case,) = [c for c in CASES if c.number == INVALID_DEFAULT]
    with pytest.raises(SchemaError, match=r"foo\.f1: the default does not fit"):
        parse_schema(case.input)


@pytest.mark.parametrize(
    "path", sorted(REPO_SCHEMAS.glob("*/v*.avsc")), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_repo_schemas_agree_with_fastavro(path: Path) -> None:
    raw = json.loads(path.read_text())
    schema = parse_schema(path.read_text())
    assert schema.canonical_form == to_parsing_canonical_form(raw)
    assert schema.fingerprint_hex == fastavro_fingerprint(to_parsing_canonical_form(raw), "CRC-64-AVRO")


def test_single_object_framing_is_marker_fingerprint_then_body() -> None:
    catalogue = SchemaCatalogue.load(REPO_SCHEMAS)
    record = {
        "event_id": "t-1",
        "occurred_at": 1_700_000_000_000,
        "branch_code": "PALU",
        "agreement_id": "PKS-7271-2025",
        "as_of": "2025-06-30",
        "active_workers": 45_778,
        "contributions_paid_rupiah": 769_070_400,
    }
    payload = catalogue.encode("branch-totals", record)
    (version,) = catalogue.versions("branch-totals")
    assert payload[:2] == MARKER == b"\xc3\x01"
    assert payload[2:10] == version.fingerprint
    decoded = catalogue.decode(payload, "branch-totals")
    assert (decoded.subject, decoded.version, decoded.fingerprint) == (
        "branch-totals",
        1,
        version.fingerprint,
    )
    assert decoded.record["as_of"].isoformat() == "2025-06-30"
    assert decoded.record["active_workers"] == 45_778
