"""The compatibility check run by ``recon schemas check`` and in CI."""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

from recon.avro._decoder import resolution_problems
from recon.avro._files import SchemaVersion, scan


def check_catalogue(schemas_dir: Path) -> list[str]:
    """Every problem with a schemas folder, one sentence each; empty when it is fine.

    Besides what loading refuses (file names, JSON, schemas, duplicate fingerprints), each subject
    must number its versions from v1 without gaps, keep its record's full name, and be fully
    transitively compatible: every version reads every other version's data (new readers read old
    data, old readers read new data), with no enum symbol or union branch left unresolvable.
    """
    found = scan(schemas_dir)
    problems = list(found.problems)
    for subject, group in groupby(found.versions, key=lambda v: v.subject):
        problems += _subject_problems(schemas_dir / subject, list(group))
    return problems


def _subject_problems(folder: Path, versions: list[SchemaVersion]) -> list[str]:
    problems = []
    numbers = [v.version for v in versions]
    if numbers != list(range(1, len(numbers) + 1)):
        listed = ", ".join(f"v{n}" for n in numbers)
        problems.append(f"{folder}: versions must run v1, v2, ... without gaps (found {listed})")
    first = versions[0]
    for v in versions[1:]:
        if v.schema.name != first.schema.name:
            problems.append(
                f"{v.path}: the record is named {v.schema.name}, but v{first.version} names it "
                f"{first.schema.name}; a subject keeps its full name"
            )
    for writer in versions:
        for reader in versions:
            if writer is not reader:
                problems += [
                    f"{folder.name} v{writer.version} data read as v{reader.version}: {p}"
                    for p in resolution_problems(writer.schema, reader.schema)
                ]
    return problems
