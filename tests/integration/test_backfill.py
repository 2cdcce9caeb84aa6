"""`recon backfill` against the real broker and the real ingest: dedup, resume after a kill, refusals."""

from __future__ import annotations

import io
import json
import signal
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import fastavro
import pytest
from sqlalchemy import create_engine, text

from factories import claim_record, enrolment_record, valid_nik
from recon.avro import SchemaCatalogue
from recon.ledger import upgrade
from recon.settings import load_settings
from support import consume_all, run_recon, service_env, start_recon, wait_for

SCHEMAS = load_settings().schemas_dir
BAD_NIK = "7271013206900001"  # birth day 32


def enrolments(
    n: int, *, version: int = 2, start: int = 0, bad: tuple[int, ...] = ()
) -> list[dict[str, Any]]:
    out = []
    for i in range(start, start + n):
        nik = BAD_NIK if i in bad else valid_nik(serial=1 + i % 9999, district=f"{1 + i // 9999:02d}")
        record = enrolment_record(event_id=f"e-{i}", nik=nik)
        if version == 1:
            record.pop("source_system")
        out.append(record)
    return out


def write_avro(
    path: Path,
    rows: list[dict[str, Any]],
    *,
    subject: str = "enrolment",
    version: int = 2,
    codec: str = "deflate",
    every: int = 4000,
) -> Path:
    schema = fastavro.parse_schema(json.loads((SCHEMAS / subject / f"v{version}.avsc").read_text()))
    with path.open("wb") as out:
        fastavro.writer(out, schema, rows, codec=codec, sync_interval=every)
    return path


def stored(url: str, table: str = "enrolment_events") -> list[tuple[str, int]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [(r[0], r[1]) for r in conn.execute(text(f"select event_id, schema_version from {table}"))]
    engine.dispose()
    return rows


@pytest.fixture
def env(topic_names: Any, sqlite_url: str) -> dict[str, str]:
    upgrade(sqlite_url)
    return service_env(topic_names.overrides(), sqlite_url)


def event_ids(topic_names: Any, topic: str, expect: int | None = None) -> Counter[str]:
    catalogue = SchemaCatalogue.load(SCHEMAS)
    records = consume_all(topic_names.bootstrap, topic, expect=expect)
    return Counter(catalogue.decode(r.value).record["event_id"] for r in records)


def test_backfilling_twice_stores_every_event_once(
    env: dict[str, str], topic_names: Any, tmp_path: Path, sqlite_url: str
) -> None:
    v2 = write_avro(tmp_path / "2025-v2.avro", enrolments(300), codec="snappy")
    v1 = write_avro(tmp_path / "2024-v1.avro", enrolments(200, version=1, start=300), version=1, codec="null")
    claims = write_avro(
        tmp_path / "claims.avro",
        [claim_record(event_id=f"c-{i}", nik=valid_nik(serial=1 + i)) for i in range(50)],
        subject="claim",
        version=1,
    )
    state = tmp_path / "state"
    args = ["backfill", str(v2), str(v1), str(claims), "--state-dir", str(state)]

    first = run_recon(env, *args)
    again = run_recon(env, *args)
    restarted = run_recon(env, *args, "--restart")

    assert first.returncode == 0, first.stderr[-2000:]
    assert f"{v2}: 300 records sent to {topic_names.enrolments}, 0 refused" in first.stdout
    assert f"{claims}: 50 records sent to {topic_names.claims}" in first.stdout
    assert again.returncode == 0 and again.stdout.count("already backfilled") == 3, again.stdout
    assert restarted.returncode == 0 and "200 records sent" in restarted.stdout
    assert sum(event_ids(topic_names, topic_names.enrolments, expect=1000).values()) == 1000  # all sent twice

    ingest = run_recon(env, "ingest", "--idle-exit", "3")

    assert ingest.returncode == 0, ingest.stderr[-2000:]
    rows = stored(sqlite_url)
    assert len(rows) == 500 and len({event_id for event_id, _ in rows}) == 500
    assert {v for e, v in rows if int(e[2:]) >= 300} == {1}, "v1 files keep their writer version"
    assert {v for e, v in rows if int(e[2:]) < 300} == {2}
    assert len(stored(sqlite_url, "claim_events")) == 50
    assert not consume_all(topic_names.bootstrap, topic_names.dead_letters), "nothing dead-lettered"


def _acknowledged(state: Path) -> int:
    files = list(state.glob("*.json"))
    if not files:
        return 0
    try:
        return int(json.loads(files[0].read_text())["acknowledged"])
    except (ValueError, KeyError):  # caught between the write and the rename of another file: retry
        return 0


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_a_stopped_backfill_resumes_without_resending_what_was_acknowledged(
    env: dict[str, str], topic_names: Any, tmp_path: Path, how: signal.Signals
) -> None:
    total = 6000
    path = write_avro(tmp_path / "year.avro", enrolments(total), every=6000)  # ~130 records a block
    state = tmp_path / "state"
    args = ["backfill", str(path), "--state-dir", str(state), "--rate", "1500"]
    proc = start_recon(env, *args)
    wait_for(lambda: _acknowledged(state) >= 1000, timeout=60, what="a progress file past 1000 records")

    proc.send_signal(how)
    _, err = proc.communicate(timeout=60)
    acknowledged = _acknowledged(state)
    on_topic = sum(event_ids(topic_names, topic_names.enrolments).values())

    if how == signal.SIGINT:
        assert proc.returncode == 130, err[-2000:]
        assert "run the same command again to resume" in err
        assert on_topic == acknowledged, "a clean stop waits for its acks and records all of them"
    else:
        assert proc.returncode == -signal.SIGKILL
        assert acknowledged <= on_topic
    assert 1000 <= acknowledged < total

    rerun = run_recon(env, *args[:-2])

    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{total - acknowledged} records sent" in rerun.stdout
    assert f"and {acknowledged} sent, 0 refused by earlier runs" in rerun.stdout
    ids = event_ids(topic_names, topic_names.enrolments, expect=total)
    assert set(ids) == {f"e-{i}" for i in range(total)}, "nothing lost"
    resent = {e for e, n in ids.items() if n > 1}
    assert all(int(e[2:]) >= acknowledged for e in resent), "nothing acknowledged was sent again"
    assert len(resent) <= on_topic - acknowledged, "at most the unacknowledged tail"


def _corrupt_record(path: Path, offset: int, event_id: str) -> None:
    """The event_type enum index of one record (right after its event id, in a null-codec file)
    becomes -1: fastavro would read it as the last symbol; ours refuses the block."""
    data = bytearray(path.read_bytes())
    raw = event_id.encode()
    at = data.index(bytes([len(raw) * 2]) + raw, offset) + 1 + len(raw)
    data[at] = 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["corrupt", "truncated"])
def test_a_broken_block_sends_nothing_of_it_and_says_how_far_it_got(
    env: dict[str, str], topic_names: Any, tmp_path: Path, damage: str
) -> None:
    path = write_avro(tmp_path / "broken.avro", enrolments(500), codec="null", every=5000)
    from recon.avro._container import read_blocks, read_header

    with path.open("rb") as stream:
        header = read_header(stream, SchemaCatalogue.load(SCHEMAS))
        blocks = list(read_blocks(stream, header))
    before = blocks[0].count + blocks[1].count
    if damage == "corrupt":
        _corrupt_record(path, blocks[2].offset, f"e-{before + 1}")
        reason = "block 3: record 2 of the block: malformed"
    else:
        path.write_bytes(path.read_bytes()[: blocks[2].offset + 30])
        reason = "block 3: the file ends inside the block"

    result = run_recon(env, "backfill", str(path), "--state-dir", str(tmp_path / "state"))

    assert result.returncode == 4, result.stderr[-2000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"recon: {path}: {reason}"), line
    assert f"nothing of that block was sent, {before} records before it were" in line
    ids = event_ids(topic_names, topic_names.enrolments, expect=before)
    assert sorted(ids, key=lambda e: int(e[2:])) == [f"e-{i}" for i in range(before)]


def test_json_lines_refusals_are_listed_skipped_and_counted(
    env: dict[str, str], topic_names: Any, tmp_path: Path
) -> None:
    rows = enrolments(40, bad=(7, 30))
    path = tmp_path / "branch.jsonl"
    lines = [json.dumps(r, default=lambda v: v.isoformat() if isinstance(v, date) else v) for r in rows]
    lines.insert(20, "{not json")
    path.write_text("\n".join(lines) + "\n")

    result = run_recon(
        env, "backfill", str(path), "--subject", "enrolment", "--state-dir", str(tmp_path / "s")
    )

    assert result.returncode == 1, result.stderr[-2000:]
    assert f"{path}: 38 records sent to {topic_names.enrolments}, 3 refused" in result.stdout
    assert f"{path}: line 8: nik_birth_date: " in result.stderr
    assert f"{path}: line 21: json_invalid: " in result.stderr
    assert f"{path}: line 32: nik_birth_date: " in result.stderr
    assert BAD_NIK not in result.stderr + result.stdout
    assert len(event_ids(topic_names, topic_names.enrolments, expect=38)) == 38


def test_a_file_whose_schema_is_not_ours_is_refused_in_one_line(env: dict[str, str], tmp_path: Path) -> None:
    schema = json.loads((SCHEMAS / "enrolment" / "v2.avsc").read_text())
    schema["fields"].append({"name": "branch_note", "type": ["null", "string"], "default": None})
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(schema), enrolments(3))
    path = tmp_path / "foreign.avro"
    path.write_bytes(buffer.getvalue())

    result = run_recon(env, "backfill", str(path), "--state-dir", str(tmp_path / "s"))

    assert result.returncode == 4
    assert result.stderr.strip().count("\n") == 0
    assert "is not a version in the schemas folder" in result.stderr and "nothing was sent" in result.stderr


def test_java_written_container_files_are_backfilled_and_stored(
    env: dict[str, str], topic_names: Any, tmp_path: Path, sqlite_url: str
) -> None:
    from javakit import run_java_producer

    files, expected = [], set()
    for subject, version, codec in [
        ("enrolment", 1, "deflate"),
        ("enrolment", 2, "snappy"),
        ("claim", 1, "null"),
    ]:
        out = tmp_path / f"{subject}-v{version}-{codec}.avro"
        done = run_java_producer(
            "write-container",
            "--schemas",
            str(SCHEMAS),
            "--subject",
            subject,
            "--version",
            str(version),
            "--codec",
            codec,
            "--count",
            "120",
            "--out",
            str(out),
            "--seed",
            str(version * 7 + len(codec)),
        )
        assert done.returncode == 0, done.stderr[-2000:]
        expected |= {(subject, line.strip()) for line in done.stdout.splitlines() if line.strip()}
        files.append(str(out))

    result = run_recon(env, "backfill", *files, "--state-dir", str(tmp_path / "s"))
    ingest = run_recon(env, "ingest", "--idle-exit", "3")

    assert result.returncode == 0, result.stderr[-2000:]
    assert ingest.returncode == 0, ingest.stderr[-2000:]
    enrolled = stored(sqlite_url)
    claims = stored(sqlite_url, "claim_events")
    assert {("enrolment", e) for e, _ in enrolled} | {("claim", e) for e, _ in claims} == expected
    assert len(enrolled) == 240 and len(claims) == 120
    assert Counter(v for _, v in enrolled) == {1: 120, 2: 120}
    assert not consume_all(topic_names.bootstrap, topic_names.dead_letters)


def test_publish_with_workers_sends_in_file_order_to_the_default_partitioners_partitions(
    env: dict[str, str], topic_names: Any, tmp_path: Path
) -> None:
    from recon.backfill.jobs import partition_of

    first = enrolments(6000, bad=(4321,))
    again = [{**r, "event_id": r["event_id"] + "-b"} for r in first]  # the same workers, later in the file
    path = tmp_path / "big.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(r, default=lambda v: v.isoformat() if isinstance(v, date) else v)
            for r in first + again
        )
    )

    result = run_recon(env, "publish", "--subject", "enrolment", "--jobs", "2", str(path))

    assert result.returncode == 1
    assert "11998 records sent" in result.stdout and "2 refused" in result.stdout
    assert "line 4322: nik_birth_date" in result.stderr and "line 10322: nik_birth_date" in result.stderr
    catalogue = SchemaCatalogue.load(SCHEMAS)
    records = consume_all(topic_names.bootstrap, topic_names.enrolments, expect=11998)
    assert len(records) == 11998
    where = {catalogue.decode(r.value).record["event_id"]: (r.partition, r.offset) for r in records}
    for r in records:
        assert r.partition == partition_of(r.key, topic_names.partitions)
    for i in range(6000):
        if i != 4321:
            one, two = where[f"e-{i}"], where[f"e-{i}-b"]
            assert one[0] == two[0] and one[1] < two[1], "one worker's events stay in file order"


def test_a_truncated_java_written_file_sends_the_blocks_before_the_break_and_nothing_after(
    env: dict[str, str], topic_names: Any, tmp_path: Path
) -> None:
    from javakit import run_java_producer
    from recon.avro._container import read_blocks, read_header

    path = tmp_path / "java-enrolments.avro"
    done = run_java_producer(
        "write-container", "--schemas", str(SCHEMAS), "--subject", "enrolment", "--version", "2",
        "--codec", "null", "--count", "3000", "--out", str(path), "--seed", "3",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    written = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    with path.open("rb") as stream:
        blocks = list(read_blocks(stream, read_header(stream, SchemaCatalogue.load(SCHEMAS))))
    assert len(blocks) >= 3  # Avro Java's DataFileWriter cuts blocks by size (64 KB)
    before = blocks[0].count + blocks[1].count
    path.write_bytes(path.read_bytes()[: blocks[2].offset + 30])

    result = run_recon(env, "backfill", str(path), "--state-dir", str(tmp_path / "state"))

    assert result.returncode == 4, result.stderr[-2000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"recon: {path}: block 3: the file ends inside the block"), line
    assert f"nothing of that block was sent, {before} records before it were" in line
    assert event_ids(topic_names, topic_names.enrolments, expect=before) == Counter(written[:before])
