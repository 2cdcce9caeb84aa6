"""`recon dlq` on the real broker and SQLite: triage dead letters, fix the cause, redrive, idempotently.

The story of the issue: enrolments for an agreement that (so far) funds only JKM are refused with
`programme_not_funded`, garbage with `not_single_object`; the agreement's amendment (version 2,
JKK+JKM) arrives; the refused enrolments are redriven and stored; redriving again stores nothing more;
garbage dead-letters again.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import create_engine, text

from factories import NIK_KEY, VALIDATION_NOW_MS, agreement_record, enrolment_record, valid_nik
from recon.avro import SchemaCatalogue
from recon.dlq import LIST_COLUMNS, REDRIVEN_FROM_HEADER
from recon.domain.events import Agreement
from recon.domain.validation import ValidationContext, validate_agreement
from recon.ledger import Ledger, create_engine_for, upgrade
from recon.settings import load_settings
from support import consume_all, produce, run_recon, service_env

AGREEMENT = "PKS-7206-JKM"  # Pemkab Morowali, first signed for JKM only
VALID, NOT_FUNDED, GARBAGE = 6, 3, 2


@pytest.fixture(scope="module")
def catalogue() -> SchemaCatalogue:
    return SchemaCatalogue.load(load_settings().schemas_dir)


def _agreement(version: int, programmes: list[str]) -> dict[str, Any]:
    return agreement_record(
        agreement_id=AGREEMENT,
        version=version,
        programmes=programmes,
        funder_name="Pemkab Morowali",
        funder_level="REGENCY",
        region_code="7206",
    )


def _load_into_ledger(url: str, record: dict[str, Any]) -> None:
    """As `recon agreements load` does: the ledger knows the agreement before any enrolment is read."""
    ctx = ValidationContext(
        config=load_settings().domain(), now_ms=VALIDATION_NOW_MS, nik_key=NIK_KEY, agreements={}
    )
    agreement = validate_agreement(record, None, ctx)
    assert isinstance(agreement, Agreement), agreement
    ledger = Ledger(create_engine_for(url))
    assert ledger.upsert_agreements([agreement]) == 1
    ledger.engine.dispose()


def _enrolments(catalogue: SchemaCatalogue) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(VALID + NOT_FUNDED):
        nik = valid_nik("7206", serial=i + 1)
        programmes = ["JKM"] if i < VALID else ["JKK", "JKM"]
        record = enrolment_record(
            event_id=f"morowali-{i}", nik=nik, agreement_id=AGREEMENT, programmes=programmes
        )
        out.append((nik.encode(), catalogue.encode("enrolment", record)))
    return out


def _recon_json(env: dict[str, str], *args: str) -> Any:
    result = run_recon(env, *args)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def _ingest(env: dict[str, str]) -> Counter[str]:
    """Run the ingest to idle; return its batches' totals (stored, duplicates, dead_lettered).

    ``stored`` counts every kind of event (an agreement version too), ``duplicates`` the event ids
    already in the ledger.
    """
    result = run_recon(env, "ingest", "--idle-exit", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    totals: Counter[str] = Counter()
    for line in result.stderr.splitlines():
        entry = json.loads(line)
        if entry.get("msg") == "batch committed":
            totals.update({k: entry[k] for k in ("stored", "duplicates", "dead_lettered")})
    return totals


def _event_ids(url: str) -> list[str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        ids = sorted(row[0] for row in conn.execute(text("select event_id from enrolment_events")))
    engine.dispose()
    return ids


def _agreement_version(url: str) -> tuple[int, str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(
            text("select version, programmes from agreements where agreement_id = :a"), {"a": AGREEMENT}
        ).one()
    engine.dispose()
    return int(row[0]), str(row[1])


def _end_offsets_total(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","))
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


def _summary(env: dict[str, str]) -> dict[tuple[str, str], dict[str, Any]]:
    rows = _recon_json(env, "dlq", "summary", "--format", "json")
    return {(row["source_topic"], row["reason_code"]): row for row in rows}


def test_dead_letters_are_triaged_fixed_and_redriven_idempotently(
    topic_names: Any, sqlite_url: str, catalogue: SchemaCatalogue
) -> None:
    upgrade(sqlite_url)
    bootstrap, dlq_topic = topic_names.bootstrap, topic_names.dead_letters
    env = service_env(topic_names.overrides(), sqlite_url, ingest_http_port=0, reconcile_http_port=0)
    _load_into_ledger(sqlite_url, _agreement(1, ["JKM"]))
    enrolments = _enrolments(catalogue)
    garbage = [(b"broken-1", b"not avro at all"), (b"broken-2", b'{"nik": "not avro either"}')]
    produce(bootstrap, topic_names.enrolments, enrolments + garbage)

    assert _ingest(env) == {"stored": VALID, "duplicates": 0, "dead_lettered": NOT_FUNDED + GARBAGE}
    assert len(_event_ids(sqlite_url)) == VALID

    # --- triage: counts by reason from the headers alone ---
    summary = _summary(env)
    assert set(summary) == {
        (topic_names.enrolments, "programme_not_funded"),
        (topic_names.enrolments, "not_single_object"),
    }
    not_funded = summary[(topic_names.enrolments, "programme_not_funded")]
    assert (not_funded["count"], not_funded["error_kind"]) == (NOT_FUNDED, "validation")
    assert summary[(topic_names.enrolments, "not_single_object")]["count"] == GARBAGE
    assert summary[(topic_names.enrolments, "not_single_object")]["error_kind"] == "codec"
    assert 0 <= not_funded["first_source_offset"] <= not_funded["last_source_offset"] < VALID + NOT_FUNDED
    assert not_funded["first_seen"] <= not_funded["last_seen"]

    listed = _recon_json(env, "dlq", "list", "--format", "json")
    assert len(listed) == NOT_FUNDED + GARBAGE and all(tuple(row) == LIST_COLUMNS for row in listed)
    assert Counter(row["reason_code"] for row in listed) == {
        "programme_not_funded": 3,
        "not_single_object": 2,
    }
    for key, _ in enrolments[VALID:]:  # the tables too: tests/integration/test_personal_data.py
        assert key.decode() not in json.dumps(listed), "a key (NIK) was printed"
    assert "not avro" not in json.dumps(listed), "a value was printed"

    # positions on the dead-letter topic choose exactly those letters (5 letters on 3 partitions:
    # one partition holds at least two)
    busiest = Counter(row["dlq_partition"] for row in listed).most_common(1)[0][0]
    one = ("--partition", str(busiest), "--from-offset", "1", "--until-offset", "1")
    csv_lines = run_recon(env, "dlq", "list", "--format", "csv", *one).stdout.splitlines()
    assert csv_lines[0] == ",".join(LIST_COLUMNS)
    assert [line.split(",")[:2] for line in csv_lines[1:]] == [[str(busiest), "1"]]

    # --- a dry run sends nothing ---
    before = _end_offsets_total(bootstrap, topic_names.enrolments)
    dry = _recon_json(
        env, "dlq", "redrive", "--reason", "programme_not_funded", "--dry-run", "--format", "json"
    )
    assert dry["dry_run"] is True and dry["total"] == NOT_FUNDED and len(dry["chosen"]) == NOT_FUNDED
    assert _end_offsets_total(bootstrap, topic_names.enrolments) == before

    # --- the fix: the amended agreement (version 2, JKK+JKM) is taken in first ---
    amended = catalogue.encode("agreement", _agreement(2, ["JKK", "JKM"]))
    produce(bootstrap, topic_names.agreements, [(AGREEMENT.encode(), amended)])
    assert _ingest(env)["stored"] == 1
    assert _agreement_version(sqlite_url) == (2, "JKK,JKM")

    # --- redrive: the original bytes go back to the source topic, traced to their dead letter ---
    sent = _recon_json(env, "dlq", "redrive", "--reason", "programme_not_funded", "--format", "json")
    assert sent["total"] == NOT_FUNDED and sent["by_reason"] == [
        {
            "source_topic": topic_names.enrolments,
            "reason_code": "programme_not_funded",
            "redriven": NOT_FUNDED,
        }
    ]
    dead = {
        f"{dlq_topic}/{r.partition}/{r.offset}": r
        for r in consume_all(bootstrap, dlq_topic, expect=NOT_FUNDED + GARBAGE)
    }
    source = consume_all(bootstrap, topic_names.enrolments, expect=before + NOT_FUNDED)
    redriven = [r for r in source if REDRIVEN_FROM_HEADER in dict(r.headers)]
    assert len(redriven) == NOT_FUNDED
    for record in redriven:
        letter = dead[dict(record.headers)[REDRIVEN_FROM_HEADER].decode()]
        assert (record.key, record.value) == (letter.key, letter.value), "original key and value bytes"
        assert dict(letter.headers)["reason_code"] == b"programme_not_funded"

    totals = _ingest(env)
    assert totals == {"stored": NOT_FUNDED, "duplicates": 0, "dead_lettered": 0}
    assert _event_ids(sqlite_url) == sorted(f"morowali-{i}" for i in range(VALID + NOT_FUNDED))

    # --- again, with the garbage too: stored events change nothing, garbage dead-letters again ---
    again = _recon_json(
        env,
        "dlq",
        "redrive",
        "--reason",
        "programme_not_funded",
        "--reason",
        "not_single_object",
        "--format",
        "json",
    )
    assert again["total"] == NOT_FUNDED + GARBAGE

    totals = _ingest(env)
    assert totals == {"stored": 0, "duplicates": NOT_FUNDED, "dead_lettered": GARBAGE}
    assert len(_event_ids(sqlite_url)) == VALID + NOT_FUNDED
    summary = _summary(env)
    assert summary[(topic_names.enrolments, "programme_not_funded")]["count"] == NOT_FUNDED
    garbage_row = summary[(topic_names.enrolments, "not_single_object")]
    assert garbage_row["count"] == 2 * GARBAGE
    assert garbage_row["last_source_offset"] > not_funded["last_source_offset"], "new source offsets"

    # each distinct garbage payload is sent once per redrive, not once per earlier copy
    third = _recon_json(env, "dlq", "redrive", "--reason", "not_single_object", "--format", "json")
    assert third["total"] == GARBAGE and third["skipped"]["same_bytes"] == GARBAGE
