"""`recon ingest` end to end on the real broker, on SQLite and on PostgreSQL.

Each test publishes a known set of messages to its own topics, runs the real `recon ingest`
process, and checks the ledger and the dead-letter topic exactly.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text

from factories import agreement_record, contribution_record, enrolment_record, valid_nik
from recon.avro import SchemaCatalogue
from recon.ledger import upgrade
from recon.ledger.tables import enrolment_events
from recon.settings import load_settings
from support import consume_all, produce, run_recon, service_env, start_recon, wait_for


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "fresh_postgres_url")
    upgrade(url)
    return url


@pytest.fixture(scope="module")
def catalogue() -> SchemaCatalogue:
    return SchemaCatalogue.load(load_settings().schemas_dir)


def enrolments(
    catalogue: SchemaCatalogue, n: int, *, start: int = 0, version: int | None = None
) -> list[Any]:
    """n valid enrolment messages (key = NIK), each for a different worker."""
    out = []
    for i in range(start, start + n):
        nik = valid_nik(serial=1 + i % 9999, district=f"{1 + i // 9999:02d}")
        record = enrolment_record(event_id=f"e-{i}", nik=nik)
        if version == 1:
            record.pop("source_system")
        elif version == 2:
            record["source_system"] = "SIPP-Palu 3.2"
        out.append((nik.encode(), catalogue.encode("enrolment", record, version=version)))
    return out


def invalid_messages(catalogue: SchemaCatalogue) -> list[tuple[bytes, bytes, str]]:
    """(key, value, expected reason code) for each kind of bad input a broken producer sends."""
    good = catalogue.encode("enrolment", enrolment_record(event_id="bad-base"))
    return [
        (b"k1", b'{"not": "avro"}', "not_single_object"),
        (b"k2", b"\xc3\x01" + b"\x00" * 8 + good[10:], "unknown_fingerprint"),
        (b"k3", good + b"\x00", "trailing_bytes"),
        (b"k4", good[:-3], "malformed"),
        (b"k5", catalogue.encode("claim", _claim_like()), "wrong_subject"),
        (
            b"k6",
            catalogue.encode("enrolment", enrolment_record(event_id="bad-nik", nik="7271013206900001")),
            "nik_birth_date",
        ),
        (
            b"k7",
            catalogue.encode(
                "enrolment",
                enrolment_record(
                    event_id="bad-date", coverage_end=enrolment_record()["coverage_start"].replace(year=2024)
                ),
            ),
            "date_order",
        ),
    ]


def _claim_like() -> dict[str, Any]:
    from factories import claim_record

    return claim_record()


def count_events(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(enrolment_events)).scalar_one()
    engine.dispose()
    return int(n)


def stored_ids(url: str) -> list[str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        ids = [row[0] for row in conn.execute(text("select event_id from enrolment_events"))]
    engine.dispose()
    return ids


def test_valid_and_invalid_messages_end_in_ledger_and_dead_letters(
    topic_names: Any, database_url: str, catalogue: SchemaCatalogue
) -> None:
    valid = enrolments(catalogue, 300)
    bad = invalid_messages(catalogue)
    produce(
        topic_names.bootstrap, topic_names.enrolments, valid[:150] + [(k, v) for k, v, _ in bad] + valid[150:]
    )
    env = service_env(topic_names.overrides(), database_url, batch_max_records=100)

    result = run_recon(env, "ingest", "--idle-exit", "2")

    assert result.returncode == 0, result.stderr[-2000:]
    assert count_events(database_url) == 300
    dead = consume_all(topic_names.bootstrap, topic_names.dead_letters, expect=len(bad))
    assert len(dead) == len(bad)
    by_key = {record.key: record for record in dead}
    for key, value, code in bad:
        record = by_key[key]
        headers = {name: raw.decode() for name, raw in record.headers}
        assert record.value == value, "the dead letter keeps the original bytes"
        assert headers["reason_code"] == code
        assert headers["source_topic"] == topic_names.enrolments
        assert int(headers["source_offset"]) >= 0 and headers["source_partition"].isdigit()
        assert headers["reason"]
    assert not any(nik.decode() in result.stderr for nik, _ in valid), "no NIK in the service's logs"


def test_replaying_the_same_events_stores_nothing_twice(
    topic_names: Any, database_url: str, catalogue: SchemaCatalogue
) -> None:
    batch = enrolments(catalogue, 100)
    produce(topic_names.bootstrap, topic_names.enrolments, batch + batch)  # a producer retrying everything
    env = service_env(topic_names.overrides(), database_url)

    assert run_recon(env, "ingest", "--idle-exit", "2").returncode == 0
    # A second consumer group reading the same topics into the same ledger adds nothing either.
    env2 = {**env, "RECON_CONSUMER_GROUP": env["RECON_CONSUMER_GROUP"] + "-again"}
    assert run_recon(env2, "ingest", "--idle-exit", "2").returncode == 0

    ids = stored_ids(database_url)
    assert len(ids) == 100 and len(set(ids)) == 100


def sigkill_mid_stream_then_finish(
    topic_names: Any, database_url: str, catalogue: SchemaCatalogue, first_run: dict[str, str]
) -> str:
    """N enrolments with the invalid messages among them; `recon ingest` (``first_run`` added to its
    environment) SIGKILLed once part is stored, then run again to the end: every event stored exactly
    once, every dead letter sent once. Returns the killed run's stderr."""
    n = 20_000  # long enough that the kill lands mid-stream at the ingest's speed (50,000 events/s)
    bad = invalid_messages(catalogue)
    messages = enrolments(catalogue, n)
    produce(
        topic_names.bootstrap,
        topic_names.enrolments,
        messages[:3000] + [(k, v) for k, v, _ in bad] + messages[3000:],
    )
    env = service_env(topic_names.overrides(), database_url, batch_max_records=50)

    proc = start_recon({**env, **first_run}, "ingest")
    try:
        wait_for(
            lambda: count_events(database_url) >= 1500,
            timeout=120,
            interval=0.05,
            what="part of the stream stored",
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        _, killed_stderr = proc.communicate(timeout=30)
    assert count_events(database_url) < n, "killed mid-stream"

    result = run_recon(env, "ingest", "--idle-exit", "3")

    assert result.returncode == 0, result.stderr[-2000:]
    ids = stored_ids(database_url)
    assert len(ids) == n and len(set(ids)) == n
    dead = consume_all(topic_names.bootstrap, topic_names.dead_letters, expect=len(bad))
    sources = Counter((dict(r.headers)["source_partition"], dict(r.headers)["source_offset"]) for r in dead)
    assert len(dead) == len(bad) and max(sources.values()) == 1, "each dead letter once per source offset"
    return killed_stderr


def test_sigkill_mid_stream_then_restart_stores_exactly_n(
    topic_names: Any, database_url: str, catalogue: SchemaCatalogue
) -> None:
    sigkill_mid_stream_then_finish(topic_names, database_url, catalogue, first_run={})


def test_the_thread_writer_then_the_process_writer_store_exactly_n_across_a_sigkill(
    topic_names: Any, database_url: str, catalogue: SchemaCatalogue
) -> None:
    """RECON_INGEST_WRITER=thread writes on the service's own writer thread: the same ledger, the same
    guarantee, and a restart with the (default) writer process carries on from its offsets."""
    err = sigkill_mid_stream_then_finish(
        topic_names, database_url, catalogue, first_run={"RECON_INGEST_WRITER": "thread"}
    )
    ready = [json.loads(line) for line in err.splitlines() if '"ledger writer ready"' in line]
    assert [(r["writer"], r["pid"]) for r in ready] == [("thread", None)], "no writer process was started"


def test_two_consumers_in_one_group_share_partitions_and_store_exactly_n(
    topic_names: Any, database_url: str, catalogue: SchemaCatalogue
) -> None:
    n = 4000
    produce(topic_names.bootstrap, topic_names.enrolments, enrolments(catalogue, n))
    env = service_env(topic_names.overrides(), database_url, batch_max_records=100)

    first, second = (
        start_recon(env, "ingest", "--idle-exit", "4"),
        start_recon(env, "ingest", "--idle-exit", "4"),
    )
    outputs = [p.communicate(timeout=180) for p in (first, second)]

    assert first.returncode == 0 and second.returncode == 0, [o[1][-1500:] for o in outputs]
    ids = stored_ids(database_url)
    assert len(ids) == n and len(set(ids)) == n
    assigned = ["partitions assigned" in err for _, err in outputs]
    assert all(assigned), "both consumers took part in the group"


def test_older_writer_schema_is_read_with_the_current_reader(
    topic_names: Any, database_url: str, catalogue: SchemaCatalogue
) -> None:
    old = enrolments(catalogue, 5, version=1)
    new = enrolments(catalogue, 5, start=5, version=2)
    produce(topic_names.bootstrap, topic_names.enrolments, old + new)
    env = service_env(topic_names.overrides(), database_url)

    assert run_recon(env, "ingest", "--idle-exit", "2").returncode == 0

    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = dict(conn.execute(text("select event_id, schema_version from enrolment_events")).all())
        systems = dict(conn.execute(text("select event_id, source_system from enrolment_events")).all())
    engine.dispose()
    assert {rows[f"e-{i}"] for i in range(5)} == {1} and {rows[f"e-{i}"] for i in range(5, 10)} == {2}
    assert systems["e-0"] is None and systems["e-7"] == "SIPP-Palu 3.2"


def test_events_for_unknown_agreement_are_kept_and_programmes_checked_once_known(
    topic_names: Any, database_url: str, catalogue: SchemaCatalogue
) -> None:
    env = service_env(topic_names.overrides(), database_url)
    agreement = agreement_record(agreement_id="PKS-JKM-ONLY", programmes=["JKM"])
    produce(
        topic_names.bootstrap,
        topic_names.agreements,
        [(b"PKS-JKM-ONLY", catalogue.encode("agreement", agreement))],
    )
    # The agreement is stored first: the topics are separate, so only then is its order certain.
    assert run_recon(env, "ingest", "--idle-exit", "1").returncode == 0
    unknown = enrolment_record(event_id="for-unknown", agreement_id="PKS-NOT-YET")
    not_funded = enrolment_record(
        event_id="jkk-not-funded", agreement_id="PKS-JKM-ONLY", nik=valid_nik(serial=2)
    )
    paid = contribution_record(event_id="paid", nik=valid_nik(serial=3))
    produce(
        topic_names.bootstrap,
        topic_names.enrolments,
        [(b"a", catalogue.encode("enrolment", r)) for r in (unknown, not_funded, paid)],
    )

    assert run_recon(env, "ingest", "--idle-exit", "2").returncode == 0

    assert sorted(stored_ids(database_url)) == ["for-unknown", "paid"]
    dead = consume_all(topic_names.bootstrap, topic_names.dead_letters, expect=1)
    assert [dict(r.headers)["reason_code"] for r in dead] == [b"programme_not_funded"]


def test_guard_stops_a_consumer_flooded_with_invalid_messages_without_losing_them(
    topic_names: Any, sqlite_url: str
) -> None:
    upgrade(sqlite_url)
    produce(topic_names.bootstrap, topic_names.enrolments, [(b"k", b"garbage %d" % i) for i in range(300)])
    env = service_env(
        topic_names.overrides(),
        sqlite_url,
        batch_max_records=100,
        dlq_guard_window=200,
        dlq_guard_min_messages=50,
        dlq_guard_max_ratio=0.5,
    )

    result = run_recon(env, "ingest", "--idle-exit", "2")

    assert result.returncode == 4
    assert "RECON_DLQ_GUARD_MAX_RATIO" in result.stderr and result.stderr.strip().count("\n") < 200
    assert consume_all(topic_names.bootstrap, topic_names.dead_letters) == [], (
        "nothing committed, nothing lost"
    )


def test_ingest_refuses_a_database_that_was_never_upgraded(topic_names: Any, sqlite_url: str) -> None:
    env = service_env(topic_names.overrides(), sqlite_url)

    result = run_recon(env, "ingest", "--idle-exit", "1")

    assert result.returncode != 0
    assert "recon db upgrade" in result.stderr


def test_sigterm_finishes_the_batch_and_exits_cleanly(
    topic_names: Any, sqlite_url: str, catalogue: SchemaCatalogue
) -> None:
    upgrade(sqlite_url)
    n = 20_000
    produce(topic_names.bootstrap, topic_names.enrolments, enrolments(catalogue, n))
    env = service_env(topic_names.overrides(), sqlite_url, batch_max_records=200)

    proc = start_recon(env, "ingest")
    wait_for(lambda: count_events(sqlite_url) >= 1000, timeout=120, what="part of the stream stored")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)

    assert proc.returncode == 0, err[-2000:]
    stored = count_events(sqlite_url)
    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        next_offsets = conn.execute(text("select sum(next_offset) from consumer_offsets")).scalar_one()
    engine.dispose()
    assert stored == next_offsets, "every committed batch whole: offsets match the events stored"
    assert stored < n, "stopped mid-stream, not after draining it"
