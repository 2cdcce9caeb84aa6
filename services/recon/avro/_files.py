"""Read a schemas folder: ``<dir>/<subject>/v<N>.avsc``, every published version kept."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from recon.avro._errors import SchemaError
from recon.avro._nodes import Record
from recon.avro._parse import parse_json_text
from recon.avro._schema import Schema, schema_from_json

_VERSION_FILE = re.compile(r"v([1-9][0-9]*)\.avsc\Z")
_SUBJECT = re.compile(r"[a-z][a-z0-9_-]*\Z")


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """One published version of a subject's schema."""

    subject: str
    version: int
    path: Path
    schema: Schema

    @property
    def fingerprint(self) -> bytes:
        """The 8 fingerprint bytes in wire order (little-endian CRC-64-AVRO)."""
        return self.schema.fingerprint


@dataclass(frozen=True, slots=True)
class Scan:
    """What a schemas folder holds: the versions that parsed, and every problem found."""

    versions: tuple[SchemaVersion, ...]
    problems: tuple[str, ...]


def scan(schemas_dir: Path) -> Scan:
    """Parse every ``<subject>/v<N>.avsc`` below ``schemas_dir``, sorted by subject and version.

    Problems (each naming its file): a missing folder, bad subject or file names, bad JSON, bad
    schemas, a top-level type that is not a record, an empty subject, one fingerprint used twice.
    """
    if not schemas_dir.is_dir():
        return Scan((), (f"{schemas_dir}: not a folder of schemas",))
    versions: list[SchemaVersion] = []
    problems: list[str] = []
    for entry in sorted(schemas_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            if entry.suffix == ".avsc":
                problems.append(f"{entry}: schema files belong in a subject folder, <subject>/v<N>.avsc")
            continue
        if not _SUBJECT.match(entry.name):
            problems.append(f"{entry}: subject folder names are lower-case letters, digits, '-' and '_'")
            continue
        found = _scan_subject(entry, problems)
        if not found:
            problems.append(f"{entry}: the subject has no v<N>.avsc file")
        versions.extend(found)
    problems.extend(_duplicate_fingerprints(versions))
    return Scan(tuple(versions), tuple(problems))


def _scan_subject(folder: Path, problems: list[str]) -> list[SchemaVersion]:
    found = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        match = _VERSION_FILE.match(path.name)
        if match is None or not path.is_file():
            problems.append(
                f"{path}: expected only files named v<N>.avsc (N = 1, 2, ...) in a subject folder"
            )
            continue
        try:
            schema = _read(path)
        except SchemaError as exc:
            problems.extend(exc.problems)
            continue
        found.append(SchemaVersion(folder.name, int(match.group(1)), path, schema))
    return sorted(found, key=lambda v: v.version)


def _read(path: Path) -> Schema:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: cannot be read ({type(exc).__name__})") from None
    obj = parse_json_text(text, str(path))
    try:
        schema = schema_from_json(obj)
    except SchemaError as exc:
        raise SchemaError([f"{path}: {p}" for p in exc.problems]) from None
    if not isinstance(schema.node, Record):
        raise SchemaError(f"{path}: the top-level type must be a record")
    return schema


def _duplicate_fingerprints(versions: list[SchemaVersion]) -> list[str]:
    first: dict[bytes, SchemaVersion] = {}
    problems = []
    for v in versions:
        other = first.setdefault(v.fingerprint, v)
        if other is not v:
            problems.append(
                f"{v.path}: same fingerprint {v.fingerprint.hex()} as {other.path} "
                "(a version must differ in its canonical form)"
            )
    return problems
