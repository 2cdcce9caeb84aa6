"""A branch producer in Java (examples/java-producer) gets its events in: real broker, real `recon ingest`.

The Java program uses Apache Avro's own single-object encoder and the standard Kafka client, and
reads the .avsc files of schemas/ at run time. What it prints as sent is what the ledger must hold,
each event once and nothing dead-lettered; what it writes with the older enrolment schema (v1) is
resolved to the current version and stored as version 1.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from javakit import SCHEMAS, run_java_producer
from recon.avro import SchemaCatalogue
from recon.ledger import upgrade
from recon.settings import load_settings
from support import consume_all, rows, run_recon, service_env

NEW, OLD = 8, 5  # per run: that many enrolments and that many claims
SOURCE_SYSTEM = "rentan-recon java-producer example 1"  # what the example writes into v2's field


@pytest.fixture(scope="module")
def catalogue() -> SchemaCatalogue:
    return SchemaCatalogue.load(load_settings().schemas_dir)


def publish(topics: Any, count: int, *extra: str) -> list[tuple[str, str]]:
    """Run the Java `publish`; return what it printed as sent: (subject, event id), each once."""
    done = run_java_producer(
        "publish",
        "--bootstrap", topics.bootstrap,
        "--schemas", str(SCHEMAS),
        "--enrolment-topic", topics.enrolments,
        "--claim-topic", topics.claims,
        "--count", str(count),
        *extra,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    sent = [tuple(line.split(" ")) for line in done.stdout.splitlines()]
    assert all(len(entry) == 2 for entry in sent), done.stdout
    assert len(set(sent)) == len(sent) == 2 * count, done.stdout
    return [(subject, event_id) for subject, event_id in sent]


def test_java_events_end_in_the_ledger_exactly_once_old_schema_resolved(
    topic_names: Any, sqlite_url: str, catalogue: SchemaCatalogue
) -> None:
    upgrade(sqlite_url)
    current = publish(topic_names, NEW, "--seed", "11")  # the newest enrolment version, v2
    old = publish(topic_names, OLD, "--seed", "12", "--enrolment-version", "1", "--branch-code", "POSO")

    result = run_recon(service_env(topic_names.overrides(), sqlite_url), "ingest", "--idle-exit", "2")

    assert result.returncode == 0, result.stderr[-2000:]
    enrolments = rows(
        sqlite_url, "select event_id, schema_version, source_system, branch_code from enrolment_events"
    )
    claims = rows(sqlite_url, "select event_id, schema_version from claim_events")
    sent_enrolments = {i for subject, i in current + old if subject == "enrolment"}
    sent_claims = {i for subject, i in current + old if subject == "claim"}
    assert sorted(row.event_id for row in enrolments) == sorted(sent_enrolments), "exactly the ids sent"
    assert sorted(row.event_id for row in claims) == sorted(sent_claims)
    old_ids = {i for subject, i in old if subject == "enrolment"}
    for row in enrolments:
        if row.event_id in old_ids:  # written with v1, read with v2: the added field takes its default
            assert (row.schema_version, row.source_system, row.branch_code) == (1, None, "POSO")
        else:
            assert (row.schema_version, row.source_system, row.branch_code) == (2, SOURCE_SYSTEM, "PALU")
    assert {row.schema_version for row in claims} == {1}
    assert rows(sqlite_url, "select id from outbox where kind = 'dead_letter'") == []
    assert consume_all(topic_names.bootstrap, topic_names.dead_letters) == []


def test_java_messages_are_framed_and_keyed_as_the_contract_says(
    topic_names: Any, catalogue: SchemaCatalogue
) -> None:
    publish(topic_names, 4, "--enrolment-version", "1")
    publish(topic_names, 4)
    fingerprints = {(v.subject, v.version): v.fingerprint for v in catalogue.versions()}

    for topic, subject in ((topic_names.enrolments, "enrolment"), (topic_names.claims, "claim")):
        records = consume_all(topic_names.bootstrap, topic, expect=8)
        assert len(records) == 8
        versions: Counter[int] = Counter()
        for record in records:
            decoded = catalogue.decode(record.value, subject)
            # Java's BinaryMessageEncoder writes the fingerprint of `recon schemas list`, and the key
            # is the worker's NIK as UTF-8, the same bytes as `recon publish` sends.
            assert record.value[:10] == b"\xc3\x01" + fingerprints[(subject, decoded.version)]
            assert record.key == decoded.record["nik"].encode()
            versions[decoded.version] += 1
        assert versions == ({1: 4, 2: 4} if subject == "enrolment" else {1: 8})


def test_an_unknown_schema_version_is_refused_in_one_line_and_nothing_is_sent(
    topic_names: Any, catalogue: SchemaCatalogue
) -> None:
    done = run_java_producer(
        "publish",
        "--bootstrap", topic_names.bootstrap,
        "--schemas", str(SCHEMAS),
        "--enrolment-topic", topic_names.enrolments,
        "--claim-topic", topic_names.claims,
        "--count", "3",
        "--enrolment-version", "9",
    )  # fmt: skip

    assert done.returncode == 2
    assert done.stdout == ""
    known = ", ".join(str(v.version) for v in catalogue.versions("enrolment"))
    assert done.stderr.strip().splitlines() == [
        f"error: enrolment has no version 9 under {SCHEMAS}; versions: {known}"
    ]
    assert consume_all(topic_names.bootstrap, topic_names.enrolments) == []
