"""CRC-64-AVRO, Parsing Canonical Form and single-object framing, against the Avro spec's vectors;
the fingerprints the Go libraries write instead, against what running them gave."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastavro.schema import fingerprint as fastavro_fingerprint
from fastavro.schema import to_parsing_canonical_form
from typer.testing import CliRunner

from recon.avro import MARKER, DecodeError, SchemaCatalogue, SchemaError, crc64_avro, parse_schema
from recon.avro._aliases import goavro_canonical_form, hamba_canonical_form

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


# Go libraries' single-object encoders write other fingerprints (recon.avro._aliases); the vectors
# in tests/data/go/ were written by running hamba/avro v2.31.0 and goavro v2.15.0 (README there).
GO_DATA = Path(__file__).parents[1] / "data" / "go"
GO_FINGERPRINTS = json.loads((GO_DATA / "fingerprints.json").read_text())
GO_CANONICAL = json.loads((GO_DATA / "canonical.json").read_text())
GO_MESSAGES = json.loads((GO_DATA / "messages.json").read_text())
LIBRARY_LABEL = {"hamba": "hamba/avro", "goavro": "goavro"}


@pytest.mark.parametrize("entry", GO_FINGERPRINTS, ids=lambda e: f"{e['subject']}-v{e['version']}")
def test_alias_fingerprints_of_our_schemas_are_what_the_go_libraries_write(entry: dict[str, Any]) -> None:
    catalogue = SchemaCatalogue.load(REPO_SCHEMAS)
    (version,) = [v for v in catalogue.versions(entry["subject"]) if v.version == entry["version"]]
    aliases = {a.library: (a.fingerprint.hex(), a.canonical_form) for a in version.schema.aliases}
    assert aliases == {
        "hamba/avro": (entry["hamba"], entry["hamba_canonical"]),
        "goavro": (entry["goavro"], entry["goavro_canonical"]),
    }
    assert version.fingerprint.hex() not in {entry["hamba"], entry["goavro"]}, "why aliases are needed"


def _go_cases(library: str) -> list[Any]:
    """The canonical.json cases the library accepted and our parser accepts too."""
    cases = []
    for entry in GO_CANONICAL:
        if f"{library}_canonical" in entry and entry["case"] != f"spec-{INVALID_DEFAULT}":
            cases.append(pytest.param(entry, id=entry["case"]))
    return cases


@pytest.mark.parametrize("entry", _go_cases("hamba"))
def test_hamba_canonical_form_is_what_hamba_hashes(entry: dict[str, Any]) -> None:
    text = hamba_canonical_form(json.loads(entry["input"]))
    assert text == entry["hamba_canonical"]
    assert crc64_avro(text.encode()).to_bytes(8, "little").hex() == entry["hamba"]


@pytest.mark.parametrize("entry", _go_cases("goavro"))
def test_goavro_canonical_form_is_what_goavro_hashes(entry: dict[str, Any]) -> None:
    text = goavro_canonical_form(json.loads(entry["input"]))
    assert text == entry["goavro_canonical"]
    assert text is not None and crc64_avro(text.encode()).to_bytes(8, "little").hex() == entry["goavro"]


def test_goavro_gets_no_alias_for_a_schema_it_refuses() -> None:
    (entry,) = [e for e in GO_CANONICAL if e["case"] == "decimal-scale-above-precision"]
    assert "goavro_error" in entry
    schema = parse_schema(entry["input"])
    assert goavro_canonical_form(json.loads(entry["input"])) is None
    # hamba ignores the decimal (scale above precision) altogether, so it writes the spec's fingerprint
    assert entry["hamba_canonical"] == schema.canonical_form
    assert schema.aliases == ()


def test_a_schema_without_anything_the_libraries_treat_differently_has_no_alias() -> None:
    schema = parse_schema('{"type":"record","name":"P","fields":[{"name":"a","type":"long"}]}')
    assert schema.aliases == ()


@pytest.mark.parametrize(
    "message", GO_MESSAGES, ids=lambda m: f"{m['library']}-{m['subject']}-v{m['version']}-{m['event_id'][:8]}"
)
def test_a_go_framed_payload_decodes_as_the_spec_framed_one(message: dict[str, Any]) -> None:
    catalogue = SchemaCatalogue.load(REPO_SCHEMAS)
    payload = bytes.fromhex(message["value_hex"])
    (version,) = [v for v in catalogue.versions(message["subject"]) if v.version == message["version"]]
    (alias,) = [a for a in version.schema.aliases if a.library == LIBRARY_LABEL[message["library"]]]
    assert payload[:10] == MARKER + alias.fingerprint, "the library's own header"

    decoded = catalogue.decode(payload, message["subject"])
    spec_framed = catalogue.decode(MARKER + version.fingerprint + payload[10:], message["subject"])

    assert decoded == spec_framed
    assert (decoded.version, decoded.fingerprint) == (message["version"], version.fingerprint), "spec lineage"
    assert decoded.record["event_id"] == message["event_id"]
    assert decoded.record["nik"] == message["key"]
    if message["subject"] == "enrolment" and message["version"] == 2:
        assert decoded.record["source_system"] == "rentan-recon go-producer example 1"
        # our own encoder writes the same record back (the bytes may differ: hamba writes array
        # blocks with their byte size, a negative count, which the spec allows)
        again = catalogue.decode(catalogue.encode("enrolment", decoded.record), "enrolment")
        assert again == spec_framed


def test_an_alias_payload_stays_under_the_strict_rules() -> None:
    catalogue = SchemaCatalogue.load(REPO_SCHEMAS)
    hamba = next(m for m in GO_MESSAGES if m["library"] == "hamba" and m["subject"] == "enrolment")
    payload = bytes.fromhex(hamba["value_hex"])
    with pytest.raises(DecodeError) as wrong:
        catalogue.decode(payload, "claim")
    assert (wrong.value.code, wrong.value.subject) == ("wrong_subject", "enrolment")
    with pytest.raises(DecodeError) as truncated:
        catalogue.decode(payload[:-3], "enrolment")
    assert truncated.value.code == "malformed"
    with pytest.raises(DecodeError) as trailing:
        catalogue.decode(payload + b"\x00", "enrolment")
    assert trailing.value.code == "trailing_bytes"


def _crafted_schema(target: bytes, fields: int = 72) -> str:
    """A record whose spec fingerprint is ``target``: CRC-64 is linear over GF(2), so for texts of one
    length, choosing between field names fNNa and fNNb at each position flips a fixed set of CRC bits;
    Gaussian elimination picks the names that reach the target."""

    def text(flipped: set[int]) -> str:
        names = [f"f{i:02d}{'b' if i in flipped else 'a'}" for i in range(fields)]
        body = ",".join(f'{{"name":"{n}","type":"int"}}' for n in names)
        return '{"name":"Crafted","type":"record","fields":[' + body + "]}"

    base = crc64_avro(text(set()).encode())
    want = base ^ int.from_bytes(target, "little")
    basis: dict[int, tuple[int, set[int]]] = {}  # leading bit -> (vector, positions flipped)
    for i in range(fields):
        vector, chosen = crc64_avro(text({i}).encode()) ^ base, {i}
        while vector:
            top = vector.bit_length() - 1
            if top not in basis:
                basis[top] = (vector, chosen)
                break
            vector, chosen = vector ^ basis[top][0], chosen ^ basis[top][1]
    flipped: set[int] = set()
    while want:
        vector, chosen = basis[want.bit_length() - 1]
        want, flipped = want ^ vector, flipped ^ chosen
    return text(flipped)


def test_a_version_whose_fingerprint_is_another_versions_alias_is_refused(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(REPO_SCHEMAS, schemas)
    (enrolment_v2,) = [v for v in SchemaCatalogue.load(schemas).versions("enrolment") if v.version == 2]
    hamba = next(a for a in enrolment_v2.schema.aliases if a.library == "hamba/avro")
    crafted = _crafted_schema(hamba.fingerprint)
    assert parse_schema(crafted).fingerprint == hamba.fingerprint, "the collision is real"
    (schemas / "crafted").mkdir()
    (schemas / "crafted" / "v1.avsc").write_text(crafted)

    with pytest.raises(SchemaError) as refused:
        SchemaCatalogue.load(schemas)
    expected = (
        f"{enrolment_v2.path}: its hamba/avro alias fingerprint {hamba.fingerprint.hex()} is the spec "
        f"fingerprint of {schemas / 'crafted' / 'v1.avsc'}; a new version must hash differently "
        "(a doc change does not count)"
    )
    assert refused.value.problems == [expected]
    import recon.cli.schemas  # noqa: F401  (registers the commands on the root app)
    from recon.cli._app import app

    result = CliRunner().invoke(app, ["schemas", "check", "--schemas-dir", str(schemas)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [expected]


def test_schemas_list_shows_each_versions_aliases_with_their_library() -> None:
    import recon.cli.schemas  # noqa: F401  (registers the commands on the root app)
    from recon.cli._app import app

    result = CliRunner().invoke(app, ["schemas", "list", "--schemas-dir", str(REPO_SCHEMAS)])

    assert result.exit_code == 0, result.output
    header, *lines = result.output.splitlines()
    assert header.split()[-1] == "ALIASES"
    listed = {(line.split()[0], line.split()[1]): line.split()[-2:] for line in lines}
    assert listed == {
        (e["subject"], f"v{e['version']}"): [f"hamba/avro:{e['hamba']}", f"goavro:{e['goavro']}"]
        for e in GO_FINGERPRINTS
    }
