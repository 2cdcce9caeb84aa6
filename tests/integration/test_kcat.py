"""Pre-encoded messages published with kcat (librdkafka's CLI) get in; a wrong fingerprint is dead-lettered.

A branch without an Avro library at hand can encode a message once (any single-object encoder,
here our catalogue), keep the bytes in a file and publish it with `kcat -P -k KEY FILE` (each file is
one message). The test checks kcat carries the bytes unchanged, to the partition the Java client
would choose with `-X partitioner=murmur2_random`, that ingest stores exactly the valid ones, and
that the one sent with a fingerprint no schema has is dead-lettered with its reason, and nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kafka.partitioner.default import murmur2

from factories import claim_record, enrolment_record, next_id, valid_nik
from recon.avro import SchemaCatalogue
from recon.ledger import upgrade
from recon.settings import load_settings
from support import consume_all, kcat_produce, rows, run_recon, service_env


@pytest.fixture(scope="module")
def catalogue() -> SchemaCatalogue:
    return SchemaCatalogue.load(load_settings().schemas_dir)


def messages(catalogue: SchemaCatalogue) -> list[tuple[str, str, int, bytes, bytes]]:
    """(subject, event id, writer version, key, value): enrolments on v1 and v2, and claims."""
    out = []
    for i, version in enumerate((1, 1, 2, 2)):
        nik = valid_nik("7210", female=i % 2 == 1, serial=100 + i)
        record = enrolment_record(event_id=next_id("kcat-enrolment"), nik=nik)
        if version == 1:
            record.pop("source_system")
        else:
            record["source_system"] = "kcat 1.7"
        value = catalogue.encode("enrolment", record, version=version)
        out.append(("enrolment", record["event_id"], version, nik.encode(), value))
    for i in range(2):
        nik = valid_nik("7601", serial=200 + i)
        record = claim_record(event_id=next_id("kcat-claim"), nik=nik, claim_id=f"KLM-KCAT-{i}")
        out.append(("claim", record["event_id"], 1, nik.encode(), catalogue.encode("claim", record)))
    return out


def with_unknown_fingerprint(catalogue: SchemaCatalogue, value: bytes) -> bytes:
    """The same message, its 8 fingerprint bytes changed into ones no schema version has."""
    known = {v.fingerprint for v in catalogue.versions()}
    wrong = bytes(b ^ 0x5A for b in value[2:10])
    assert wrong not in known
    return value[:2] + wrong + value[10:]


def test_kcat_published_files_are_stored_and_a_wrong_fingerprint_is_dead_lettered(
    topic_names: Any, sqlite_url: str, catalogue: SchemaCatalogue, tmp_path: Path
) -> None:
    upgrade(sqlite_url)
    good = messages(catalogue)
    bad_key = valid_nik("7271", serial=999).encode()
    bad_value = with_unknown_fingerprint(
        catalogue, catalogue.encode("enrolment", enrolment_record(event_id="kcat-wrong-fingerprint"))
    )
    topic = {"enrolment": topic_names.enrolments, "claim": topic_names.claims}
    sends = [(topic[subject], key, value) for subject, _, _, key, value in good]
    sends.insert(2, (topic_names.enrolments, bad_key, bad_value))
    for n, (name, key, value) in enumerate(sends):
        path = tmp_path / f"message-{n}.avro"
        path.write_bytes(value)
        kcat_produce(topic_names.bootstrap, name, key, path)

    on_topics = consume_all(topic_names.bootstrap, topic_names.enrolments, expect=5)
    on_topics += consume_all(topic_names.bootstrap, topic_names.claims, expect=2)
    assert sorted((r.key, r.value) for r in on_topics) == sorted((k, v) for _, k, v in sends), (
        "bytes unchanged"
    )
    for record in on_topics:
        assert record.partition == (murmur2(record.key) & 0x7FFFFFFF) % topic_names.partitions

    result = run_recon(service_env(topic_names.overrides(), sqlite_url), "ingest", "--idle-exit", "2")

    assert result.returncode == 0, result.stderr[-2000:]
    stored = rows(sqlite_url, "select event_id, schema_version from enrolment_events")
    stored += rows(sqlite_url, "select event_id, schema_version from claim_events")
    assert sorted((r.event_id, r.schema_version) for r in stored) == sorted((i, v) for _, i, v, _, _ in good)
    dead = consume_all(topic_names.bootstrap, topic_names.dead_letters, expect=1)
    assert [(r.key, r.value) for r in dead] == [(bad_key, bad_value)], "only the wrong fingerprint"
    headers = {name: raw.decode() for name, raw in dead[0].headers}
    assert headers["error_kind"] == "codec"
    assert headers["reason_code"] == "unknown_fingerprint"
    assert headers["source_topic"] == topic_names.enrolments
    assert bad_key.decode() not in headers["reason"], "the reason never quotes a NIK"
    outbox = rows(sqlite_url, "select headers from outbox where kind = 'dead_letter'")
    assert [
        {h["name"]: h.get("value") for h in json.loads(row.headers)}["reason_code"] for row in outbox
    ] == ["unknown_fingerprint"]
