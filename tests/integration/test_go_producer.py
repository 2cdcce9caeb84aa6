"""A branch producer in Go (examples/go-producer) gets its events in with its library's own encoder.

The Go program frames each message with the library's single-object encoder (hamba/avro's
soe.Codec, goavro's SingleFromNative), whose fingerprints are not the spec's: the catalogue knows
them as aliases. It reads the .avsc files of schemas/ at run time and writes one file per message;
kcat sends them unchanged to the real broker and `recon ingest` must store exactly the events printed,
under the spec fingerprint of the version that wrote them, with nothing dead-lettered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gokit import SCHEMAS, run_go_producer
from recon.avro import MARKER, SchemaCatalogue
from recon.ledger import upgrade
from recon.settings import load_settings
from support import consume_all, kcat_produce, rows, run_recon, service_env

LABEL = {"hamba": "hamba/avro", "goavro": "goavro"}


@pytest.fixture(scope="module")
def catalogue() -> SchemaCatalogue:
    return SchemaCatalogue.load(load_settings().schemas_dir)


def write(out: Path, library: str, count: int, seed: int, *extra: str) -> list[tuple[str, str, int, Path]]:
    """Run the Go `write`; return what it printed: (subject, event id, version, message file)."""
    done = run_go_producer(
        "write",
        "--schemas", str(SCHEMAS),
        "--out", str(out),
        "--count", str(count),
        "--library", library,
        "--seed", str(seed),
        *extra,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    printed = [line.split(" ") for line in done.stdout.splitlines()]
    assert all(len(entry) == 4 for entry in printed), done.stdout
    written = [(subject, event_id, int(version), Path(path)) for subject, event_id, version, path in printed]
    assert len({event_id for _, event_id, _, _ in written}) == len(written) == 2 * count, done.stdout
    return written


def test_go_library_framed_events_end_in_the_ledger_under_the_spec_fingerprint(
    topic_names: Any, sqlite_url: str, catalogue: SchemaCatalogue, tmp_path: Path
) -> None:
    upgrade(sqlite_url)
    sent: list[tuple[str, str, str, int]] = []  # (library, subject, event id, version)
    topic = {"enrolment": topic_names.enrolments, "claim": topic_names.claims}
    for library, runs in (("hamba", ((3, 21), (2, 22, "1"))), ("goavro", ((3, 23), (2, 24, "1")))):
        for count, seed, *old in runs:
            extra = ("--enrolment-version", old[0]) if old else ()
            for subject, event_id, version, path in write(
                tmp_path / f"{library}-{seed}", library, count, seed, *extra
            ):
                kcat_produce(
                    topic_names.bootstrap, topic[subject], path.with_suffix(".key").read_bytes(), path
                )
                sent.append((library, subject, event_id, version))

    # what went over the wire is the library's own header, an alias of the version's fingerprint
    aliases = {
        (v.subject, v.version, a.library): a.fingerprint
        for v in catalogue.versions()
        for a in v.schema.aliases
    }
    headers = {
        record.value[:10]
        for name in (topic_names.enrolments, topic_names.claims)
        for record in consume_all(topic_names.bootstrap, name, expect=10)
    }
    assert headers == {MARKER + aliases[(s, v, LABEL[lib])] for lib, s, _, v in sent}

    result = run_recon(service_env(topic_names.overrides(), sqlite_url), "ingest", "--idle-exit", "2")

    assert result.returncode == 0, result.stderr[-2000:]
    spec = {(v.subject, v.version): v.fingerprint.hex() for v in catalogue.versions()}
    stored = [
        ("enrolment", r.event_id, r.schema_version, r.schema_fingerprint, r.source_system)
        for r in rows(
            sqlite_url,
            "select event_id, schema_version, schema_fingerprint, source_system from enrolment_events",
        )
    ]
    stored += [
        ("claim", r.event_id, r.schema_version, r.schema_fingerprint, None)
        for r in rows(sqlite_url, "select event_id, schema_version, schema_fingerprint from claim_events")
    ]
    expected = [
        (s, i, v, spec[(s, v)], "rentan-recon go-producer example 1" if (s, v) == ("enrolment", 2) else None)
        for _, s, i, v in sent
    ]
    assert sorted(stored) == sorted(expected), "exactly the events printed, each once, spec lineage"
    assert {v for _, s, _, v in sent if s == "enrolment"} == {1, 2}
    assert rows(sqlite_url, "select id from outbox where kind = 'dead_letter'") == []
    assert consume_all(topic_names.bootstrap, topic_names.dead_letters) == []


def test_an_unknown_schema_version_is_refused_in_one_line_and_nothing_is_written(
    tmp_path: Path, catalogue: SchemaCatalogue
) -> None:
    done = run_go_producer(
        "write", "--schemas", str(SCHEMAS), "--out", str(tmp_path / "out"), "--count", "2",
        "--enrolment-version", "9",
    )  # fmt: skip

    assert done.returncode == 2
    assert done.stdout == ""
    known = ", ".join(str(v.version) for v in catalogue.versions("enrolment"))
    assert done.stderr.strip().splitlines() == [f"error: enrolment has no version 9; versions: {known}"]
    assert not (tmp_path / "out").exists()
