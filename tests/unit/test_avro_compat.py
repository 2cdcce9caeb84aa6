"""The compatibility check, the catalogue's refusal of bad schema folders, and `recon schemas`."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from recon.avro import SchemaCatalogue, SchemaError, check_catalogue

REPO_SCHEMAS = Path(__file__).parents[2] / "schemas"


def test_the_repo_schemas_pass() -> None:
    assert check_catalogue(REPO_SCHEMAS) == []


@pytest.fixture
def schemas(tmp_path: Path) -> Path:
    """A copy of the enrolment subject, to break in each test."""
    folder = tmp_path / "schemas"
    shutil.copytree(REPO_SCHEMAS / "enrolment", folder / "enrolment")
    return folder


def _v3(schemas: Path, change: Callable[[dict[str, Any]], None]) -> None:
    schema = json.loads((schemas / "enrolment" / "v2.avsc").read_text())
    change(schema)
    (schemas / "enrolment" / "v3.avsc").write_text(json.dumps(schema))


def _field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


def test_a_compatible_new_version_passes(schemas: Path) -> None:
    _v3(schemas, lambda s: s["fields"].append({"name": "x", "type": ["null", "long"], "default": None}))
    assert check_catalogue(schemas) == []


def test_a_new_field_without_default_is_reported(schemas: Path) -> None:
    _v3(schemas, lambda s: s["fields"].append({"name": "region", "type": "string"}))
    problems = check_catalogue(schemas)
    rule = "EnrolmentEvent.region: reader field has no default and the writer lacks it"
    assert problems == [f"enrolment v1 data read as v3: {rule}", f"enrolment v2 data read as v3: {rule}"]
    with pytest.raises(SchemaError, match=r"v1\.avsc read as v3\.avsc: EnrolmentEvent\.region"):
        SchemaCatalogue.load(schemas)


def test_a_removed_enum_symbol_is_reported(schemas: Path) -> None:
    _v3(schemas, lambda s: _field(s, "event_type")["type"].update(symbols=["ENROLLED", "TERMINATED"]))
    problems = check_catalogue(schemas)
    assert len(problems) == 2
    assert all("EnrolmentEvent.event_type: writer symbols CONTRIBUTION_PAID" in p for p in problems)
    assert problems[0].startswith("enrolment v1 data read as v3")


def test_an_added_enum_symbol_breaks_old_readers(schemas: Path) -> None:
    _v3(schemas, lambda s: _field(s, "programmes")["type"]["items"]["symbols"].append("JHT"))
    problems = check_catalogue(schemas)
    assert [p.split(":")[0] for p in problems] == [
        "enrolment v3 data read as v1",
        "enrolment v3 data read as v2",
    ]


def test_a_changed_field_type_is_reported(schemas: Path) -> None:
    _v3(schemas, lambda s: _field(s, "amount").update(type="string"))
    problems = check_catalogue(schemas)
    assert (
        "enrolment v1 data read as v3: EnrolmentEvent.amount: writer type long cannot be read as string"
        in problems
    )
    assert (
        "enrolment v3 data read as v1: EnrolmentEvent.amount: writer type string cannot be read as long"
        in problems
    )


def test_a_renamed_record_is_reported(schemas: Path) -> None:
    _v3(schemas, lambda s: s.update(namespace="id.rentan.other"))
    (problem,) = check_catalogue(schemas)
    assert "v3.avsc: the record is named id.rentan.other.EnrolmentEvent" in problem


def test_a_version_gap_is_reported(schemas: Path) -> None:
    (schemas / "enrolment" / "v2.avsc").rename(schemas / "enrolment" / "v4.avsc")
    (problem,) = check_catalogue(schemas)
    assert problem.endswith("versions must run v1, v2, ... without gaps (found v1, v4)")


def test_a_version_that_only_changes_docs_has_the_same_fingerprint(schemas: Path) -> None:
    _v3(schemas, lambda s: s.update(doc="reworded"))
    (problem,) = check_catalogue(schemas)
    assert "v3.avsc: same fingerprint" in problem and "v2.avsc" in problem
    with pytest.raises(SchemaError, match="same fingerprint"):
        SchemaCatalogue.load(schemas)


@pytest.mark.parametrize("name", ["v01.avsc", "V3.avsc", "v3.json", "notes.txt", "v0.avsc"])
def test_a_badly_named_file_is_reported(schemas: Path, name: str) -> None:
    (schemas / "enrolment" / name).write_text("{}")
    (problem,) = check_catalogue(schemas)
    assert problem.startswith(str(schemas / "enrolment" / name))
    with pytest.raises(SchemaError, match=name.replace(".", r"\.")):
        SchemaCatalogue.load(schemas)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"type": "record", ', "not valid JSON (line 1"),
        (
            '{"type": "record", "name": "R", "fields": [{"name": "a", "type": "strnig"}]}',
            "unknown type 'strnig'",
        ),
        ('{"type": "record", "name": "R", "fields": [{"name": "a", "type": "int", "default": "1"}]}', "R.a"),
        ('{"type": "enum", "name": "E", "symbols": ["A"]}', "the top-level type must be a record"),
        ('{"type": "enum", "name": "E", "symbols": ["A", "A"]}', "a symbol is listed twice"),
    ],
)
def test_a_bad_schema_file_is_reported_with_its_name(schemas: Path, text: str, message: str) -> None:
    bad = schemas / "enrolment" / "v3.avsc"
    bad.write_text(text)
    problems = check_catalogue(schemas)
    assert any(p.startswith(str(bad)) and message in p for p in problems), problems
    with pytest.raises(SchemaError, match=r"v3\.avsc"):
        SchemaCatalogue.load(schemas)


def test_a_missing_folder_is_reported(tmp_path: Path) -> None:
    assert check_catalogue(tmp_path / "nope") == [f"{tmp_path / 'nope'}: not a folder of schemas"]


# --- the command -------------------------------------------------------------------------------


def _run(*args: str) -> Any:
    import recon.cli.schemas  # noqa: F401  (registers the commands on the root app)
    from recon.cli._app import app

    return CliRunner().invoke(app, ["schemas", *args])


def test_check_command_passes_on_the_repo_schemas() -> None:
    result = _run("check", "--schemas-dir", str(REPO_SCHEMAS))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("schemas ok: 5 subjects, 6 versions")


def test_check_command_prints_one_line_per_problem_and_exits_1(schemas: Path) -> None:
    _v3(schemas, lambda s: s["fields"].append({"name": "region", "type": "string"}))
    result = _run("check", "--schemas-dir", str(schemas))
    assert result.exit_code == 1
    assert [line for line in result.output.splitlines() if "data read as" in line] == check_catalogue(schemas)


def test_list_command_prints_fingerprints() -> None:
    result = _run("list", "--schemas-dir", str(REPO_SCHEMAS))
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines()[1:]]
    catalogue = SchemaCatalogue.load(REPO_SCHEMAS)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (v.subject, f"v{v.version}", v.fingerprint.hex()) for v in catalogue.versions()
    ]
