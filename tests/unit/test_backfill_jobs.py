"""The backfill's pure parts: jobs from files, workers' outcomes, the acknowledgement watermark, the state."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import pytest

from factories import VALIDATION_NOW_MS, enrolment_record, valid_nik
from recon.avro import SchemaCatalogue
from recon.avro._container import read_header
from recon.backfill import state as states
from recon.backfill.jobs import Job, Outcome, Position, Worker, WorkerSpec, partition_of
from recon.backfill.pipeline import AckedSender, Preparing
from recon.backfill.sources import block_jobs, line_jobs
from recon.domain.config import DomainConfig
from recon.errors import ConfigError, PermanentFault
from recon.settings import load_settings

SCHEMAS = load_settings().schemas_dir
SPEC = WorkerSpec(
    schemas_dir=SCHEMAS, max_message_bytes=1_000_000, config=DomainConfig(), now_ms=VALIDATION_NOW_MS
)
BAD_NIK = "7271013206900001"  # birth day 32


@pytest.fixture(scope="module")
def catalogue() -> SchemaCatalogue:
    return SchemaCatalogue.load(SCHEMAS)


def avro_file(rows: list[dict[str, Any]], every: int = 1000) -> bytes:
    schema = fastavro.parse_schema(json.loads((SCHEMAS / "enrolment" / "v2.avsc").read_text()))
    out = io.BytesIO()
    fastavro.writer(out, schema, rows, codec="deflate", sync_interval=every)
    return out.getvalue()


def rows(n: int, bad: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    return [
        enrolment_record(event_id=f"e-{i}", nik=BAD_NIK if i in bad else valid_nik(serial=1 + i))
        for i in range(n)
    ]


def test_a_block_becomes_framed_writer_bytes_and_refusals_with_record_numbers(
    catalogue: SchemaCatalogue,
) -> None:
    stream = io.BytesIO(avro_file(rows(120, bad=(5, 90)), every=2000))
    header = read_header(stream, catalogue)
    jobs = list(block_jobs(stream, header, None, partitions=6))
    worker = Worker(SPEC, catalogue)

    outcomes = [worker.run(job) for job in jobs]

    assert len(jobs) > 1 and sum(job.count for job in jobs) == 120
    refusals = [r for o in outcomes for r in o.refusals]
    assert [(r.line, r.code) for r in refusals] == [(6, "nik_birth_date"), (91, "nik_birth_date")]
    assert all(BAD_NIK not in str(r) for r in refusals)
    messages = [m for o in outcomes for m in o.messages]
    assert len(messages) == 118
    key, value, partition = messages[0]
    assert catalogue.decode(value, "enrolment").record["event_id"] == "e-0"
    assert key == valid_nik(serial=1).encode() and partition == partition_of(key, 6)


def test_a_resumed_block_skips_its_done_records_but_still_decodes_them_all(
    catalogue: SchemaCatalogue,
) -> None:
    data = avro_file(rows(50), every=1_000_000)
    stream = io.BytesIO(data)
    header = read_header(stream, catalogue)
    (first,) = list(block_jobs(stream, header, None, partitions=0))
    resume = Position(first.start.offset, first.start.unit, 20, 1)

    (job,) = list(block_jobs(io.BytesIO(data), header, resume, partitions=0))
    outcome = Worker(SPEC, catalogue).run(job)

    assert job.skip == 20 and outcome.indexes[0] == 20 and len(outcome.messages) == 30
    assert catalogue.decode(outcome.messages[0][1], "enrolment").record["event_id"] == "e-20"


def test_line_jobs_carry_positions_a_resume_can_seek_to() -> None:
    text = b"".join(json.dumps({"n": i}).encode() + b"\n" for i in range(10))
    jobs = list(line_jobs(io.BytesIO(text), "enrolment", None, partitions=0, chunk=4))

    assert [(j.first, j.count) for j in jobs] == [(1, 4), (5, 4), (9, 2)]
    assert jobs[1].start.offset == jobs[0].after.offset == text.index(b'{"n": 4}')
    resumed = list(
        line_jobs(io.BytesIO(text), "enrolment", Position(jobs[1].start.offset, 5, 1, 5), partitions=0)
    )
    assert resumed[0].first == 5 and resumed[0].skip == 1 and resumed[0].data[0] == b'{"n": 4}'


def test_a_lines_job_skips_done_and_blank_lines_and_numbers_each_refusal(catalogue: SchemaCatalogue) -> None:
    good = [json.dumps(r, default=str).encode() for r in rows(4, bad=(2,))]
    data = [good[0], good[1], b"   ", b"\xff not utf-8", good[2], b"[1, 2]", b"", good[3]]
    job = Job(kind="lines", subject="enrolment", first=11, data=data, count=len(data), skip=1, partitions=6)

    outcome = Worker(SPEC, catalogue).run(job)

    assert outcome.indexes == [1, 7]  # line 11 was done before the resume; blank lines are neither
    assert [catalogue.decode(v, "enrolment").record["event_id"] for _, v, _ in outcome.messages] == [
        "e-1",
        "e-3",
    ]
    assert [(k, p) for k, _, p in outcome.messages] == [
        (valid_nik(serial=2).encode(), partition_of(valid_nik(serial=2).encode(), 6)),
        (valid_nik(serial=4).encode(), partition_of(valid_nik(serial=4).encode(), 6)),
    ]
    assert [(r.line, r.code, r.reason) for r in outcome.refusals] == [
        (14, "json_invalid", "the line is not valid UTF-8"),
        (15, "nik_birth_date", outcome.refusals[1].reason),
        (16, "json_invalid", "a line must hold one JSON object"),
    ]
    assert BAD_NIK not in outcome.refusals[1].reason


def test_our_murmur2_is_kafkas_for_every_length() -> None:
    import random

    from kafka.partitioner.default import murmur2 as kafkas

    from recon.backfill.jobs import murmur2

    rng = random.Random(7)
    for length in range(40):
        for _ in range(50):
            data = bytes(rng.randrange(256) for _ in range(length))
            assert murmur2(data) == kafkas(data)


def test_partitions_are_the_default_partitioners() -> None:
    from kafka.partitioner.default import DefaultPartitioner

    class Cluster:
        def topics(self) -> set[str]:
            return {"t"}

        def partitions_for_topic(self, topic: str) -> set[int]:
            return set(range(6))

        available_partitions_for_topic = partitions_for_topic

    partitioner = DefaultPartitioner()
    for i in range(200):
        key = valid_nik(serial=1 + i).encode()
        assert partition_of(key, 6) == partitioner.partition("t", key, key, b"", b"", Cluster())
    assert partition_of(b"x", 0) is None


@dataclass
class FakeFuture:
    is_done: bool = False
    exception: BaseException | None = None

    def failed(self) -> bool:
        return self.is_done and self.exception is not None


class FakeProducer:
    def __init__(self) -> None:
        self.futures: list[FakeFuture] = []

    def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2}

    def send(self, topic: str, *, key: bytes, value: bytes, partition: int | None) -> FakeFuture:
        self.futures.append(FakeFuture())
        return self.futures[-1]

    def flush(self, timeout: float | None = None) -> None:
        for future in self.futures:
            future.is_done = True


def job(first: int, count: int, offset: int) -> Job:
    return Job(
        kind="lines",
        subject="enrolment",
        first=first,
        data=[],
        count=count,
        start=Position(offset, first, 0, first),
        after=Position(offset + 100, first + count, 0, first + count),
    )


def outcome(first: int, sent: list[int], refused: list[int]) -> Outcome:
    from recon.publish import Refusal

    return Outcome(
        messages=[(b"k", b"v", None) for _ in sent],
        indexes=sent,
        refusals=[Refusal(first + i, "x", "y") for i in refused],
    )


def test_the_position_moves_only_over_what_is_all_acknowledged_or_refused() -> None:
    producer = FakeProducer()
    sender = AckedSender(producer, "t")
    sender.send(job(1, 4, 0), outcome(1, [0, 2, 3], [1]))
    sender.send(job(5, 2, 100), outcome(5, [0, 1], []))

    producer.futures[1].is_done = producer.futures[3].is_done = True  # acks out of order
    assert not sender.settle() and sender.position is None

    producer.futures[0].is_done = True  # record 1 acked; record 2 refused; record 3 acked; 4 not yet
    assert sender.settle()
    assert sender.position == Position(0, 1, 3, 1) and sender.acknowledged == 2 and sender.refused_done == 1

    producer.futures[2].is_done = True  # the first job is done; the second has its first record acked
    sender.settle()
    assert sender.position == Position(100, 5, 1, 5) and sender.acknowledged == 4

    producer.futures[4].is_done = True
    sender.settle()
    assert sender.position == Position(200, 7, 0, 7) and sender.acknowledged == 5 and sender.idle
    assert sender.records_done == 6


def test_a_record_the_broker_refused_stops_with_what_was_acknowledged() -> None:
    producer = FakeProducer()
    sender = AckedSender(producer, "t")
    sender.send(job(1, 3, 0), outcome(1, [0, 1, 2], []))
    producer.futures[0].is_done = True
    producer.futures[1].is_done, producer.futures[1].exception = True, TimeoutError()

    with pytest.raises(
        PermanentFault, match=r"did not acknowledge line 2 \(TimeoutError\); 1 records before"
    ):
        sender.settle()


def test_workers_in_processes_give_the_same_outcomes_in_order(catalogue: SchemaCatalogue) -> None:
    lines = [json.dumps(r, default=str) for r in rows(30, bad=(3,))]
    jobs = [
        Job(kind="lines", subject="enrolment", first=1 + i, data=lines[i : i + 5], count=5)
        for i in range(0, 30, 5)
    ]
    with Preparing(SPEC, jobs=0) as inline:
        expected = [o for _, o in inline.outcomes(jobs)]
    with Preparing(SPEC, jobs=2, window=2) as pool:
        got = [o for _, o in pool.outcomes(jobs)]

    assert [(o.messages, o.indexes, o.refusals) for o in got] == [
        (o.messages, o.indexes, o.refusals) for o in expected
    ]
    assert got[0].refusals[0].line == 4


def test_the_state_round_trips_and_refuses_another_files(tmp_path: Path) -> None:
    path = states.state_path(tmp_path, "ab" * 32, "enrolments")
    state = states.State(
        sha256="ab" * 32, topic="enrolments", file="x.avro", position=Position(10, 2, 3, 40), acknowledged=39
    )
    states.save(path, state)

    assert states.load(path, sha256="ab" * 32, topic="enrolments", file="x.avro") == state
    assert states.load(tmp_path / "none.json", sha256="cd" * 32, topic="t", file="y").position is None
    with pytest.raises(ConfigError, match="--restart"):
        states.load(path, sha256="cd" * 32, topic="enrolments", file="x.avro")


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_otherwise(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from rich.console import Console

    from recon.cli.backfill import _LogProgress, _TerminalProgress

    lines = _LogProgress(every=0.0)
    lines.start("x.avro", 1000, 100)
    lines.advance(400, 1200, 3)
    lines.refusal("record 7: nik_format: nik: 16 digits")
    lines.stop()
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "backfill x.avro: starting at byte 100 of 1000"
    assert err[1].startswith("backfill x.avro: 50%, 1200 records sent, 3 refused, ") and " ETA 0:" in err[1]
    assert "records/s" in err[1] and err[2] == "x.avro: record 7: nik_format: nik: 16 digits"

    screen = io.StringIO()
    bar = _TerminalProgress(Console(file=screen, force_terminal=True, width=120))
    bar.start("exports/x.avro", 1000, 0)
    bar.advance(500, 2000, 1)
    bar.stop()
    shown = screen.getvalue()
    assert "x.avro" in shown and "2,000 sent, 1 refused" in shown and "/s" in shown


def test_a_broker_that_does_not_acknowledge_in_time_is_one_clear_error() -> None:
    from kafka.errors import KafkaTimeoutError

    class Silent(FakeProducer):
        def flush(self, timeout: float | None = None) -> None:
            raise KafkaTimeoutError("no")

    producer = Silent()
    sender = AckedSender(producer, "t")
    sender.send(job(1, 2, 0), outcome(1, [0, 1], []))
    producer.futures[0].is_done = True

    with pytest.raises(
        PermanentFault, match=r"did not acknowledge 1 of the records sent within 60 s \(1 were\)"
    ):
        sender.drain(timeout=60)
    assert sender.position == Position(0, 1, 1, 1)
