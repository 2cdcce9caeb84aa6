"""Benchmark: ingest throughput. Consume alone, consume + decode, and the whole ingest service into
SQLite and into PostgreSQL, all measured in one run, with each variant's peak memory.

Usage:
    .venv/bin/python bench/ingest.py [--events N] [--runs R] [--postgres-url URL] [--invalid SHARE]
                                     [--variants consume,decode,sqlite,postgres] [--profile]
                                     [--rss-events N1,N2] [--group 1,2,4] [--json]

Setup (not timed): a LocalBroker on free ports in a temporary home (or the broker named by
RECON_KAFKA_BOOTSTRAP_SERVERS), PostgreSQL from scripts/postgres.sh in a temporary folder on a free
port (or the server of --postgres-url, whose role needs CREATEDB), six fresh topics with 6 partitions,
and N enrolment events produced once (key = NIK): each a different worker somewhere in Sulawesi
Tengah, mostly CONTRIBUTION_PAID and ENROLLED, a few TERMINATED, a fifth written by v1 producers, and
a small share (--invalid, default 0.2%) bad: a NIK with an impossible birth date, a contribution
paying nothing, trailing bytes after the datum. So the dead-letter path runs as it does in production.

Measured: every run reads the whole enrolments topic from the beginning in a fresh consumer group,
in a child process of its own (its peak RSS, ru_maxrss, is its alone; for the service, plus the peak
RSS of its ledger writer process, ingest.writer_process). R rounds; in each round every
variant runs once, the order rotating from round to round, so the machine's noise hits all alike.
- consume alone: a kafka-python consumer configured as the service's, subscribed to the four data
  topics, poll(max_records=5000) until N messages are seen;
- consume + decode: the same, plus SchemaCatalogue.decode of every value (our strict decoder);
- whole ingest, SQLite / PostgreSQL: the real IngestService from ingest.bootstrap.build, on a fresh
  database migrated and given the events' agreement beforehand (not timed), run with no idle exit.
The clock runs from subscribe (or run()) to the moment the last message is handled. For the service
that is when the IngestService.commit call (on the service's writer thread) that reaches N returns:
the batch is then in the ledger with its offsets, its dead letters sent and marked (its offsets go to
Kafka, for lag only, at the loop's next turn); the bench then sets the stop event. Joining the group
is inside every variant's time; "first batch" shows how much.
After each service run the ledger is checked: every valid event stored, every invalid one in the
outbox and sent.

Prints the machine and versions, then per variant: the median events/s, each round's figure, the
ratio to consume + decode, the median time to the first batch, the median CPU time per event of the
measuring process (all its threads, and for the service its ledger writer process too; not the
broker's or PostgreSQL's: on a busy machine it moves far less than the wall-clock rate), and the peak
RSS; then the ratios round by round, and the verdict on
the goal (whole ingest at least half as fast as consume + decode).
--profile: then, in this process, the SQLite and PostgreSQL ingests once more with timers around the
service's parts, per thread (the loop, the writer; where the time goes, without a profiler's
distortion), and the SQLite ingest under cProfile, one profiler per thread: the top 15 functions by
cumulative and by own time.
--rss-events N1,N2: then the SQLite ingest once at each size (topics of their own), its peak RSS at
each, and their ratio (the goal: flat, within 15%).
--group 1,2,4: then the group variant (bench/_group.py): that many `recon ingest` processes in one
consumer group on an enrolments topic of 8 partitions (--group-events of them, default 800,000: with
200,000 events, 50,000 a process, each member's fixed cost of joining and first fetch, about 0.15 s of
CPU, was a tenth of its steady CPU), into one PostgreSQL database: combined events/s,
CPU per event, rebalance time, the server's lock waits, deadlocks and WAL, and lost or duplicated
events (any stops the bench); then the machine's own share of the CPU ratios: as many processes
only decoding the bench's messages at once (no Kafka, no database), their CPU per decode against one's.
--writer thread: every service run with RECON_INGEST_WRITER=thread (the writer thread writes in the
service's own interpreter) instead of the default ledger writer process.
--json: the human report goes to stderr, and stdout gets one JSON object with the run's figures.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import importlib.util
import json
import logging
import os
import platform
import pstats
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path, and this file is called ingest.py: it
# would shadow the service's `ingest` package. The bench imports nothing from its own folder.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

REPO = Path(__file__).resolve().parents[1]
POSTGRES_SH = REPO / "scripts" / "postgres.sh"
VARIANTS = {
    "consume": "consume alone",
    "decode": "consume + decode",
    "sqlite": "whole ingest, SQLite",
    "postgres": "whole ingest, PostgreSQL",
}
BASELINE = "decode"
NIK_KEY = "bench-only-nik-hashing-key-32bytes"
BATCH = 5_000
PARTITIONS = 6
AGREEMENT_ID = "PKS-72-2025-APBDP"
SULTENG = ("7271", "7271", "7271", "7201", "7202", "7203", "7204", "7205", "7206", "7207", "7208", "7210")
DEAD_LETTER_RETENTION = str(30 * 24 * 3600 * 1000)


# --- the events ---------------------------------------------------------------------------------------------


def enrolment_messages(catalogue: Any, count: int, invalid_share: float, seed: int = 72) -> Iterator[Any]:
    """(key, value, outcome) for ``count`` enrolment messages; outcome is 'valid', 'validation' or 'codec'.

    Every message is a different worker (region, district and serial spell the index) and event id.
    """
    rng = random.Random(seed)
    start_ms = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1000)
    every = round(1 / invalid_share) if invalid_share > 0 else 0
    for i in range(count):
        region, rest = SULTENG[i % len(SULTENG)], i // len(SULTENG)
        birth = f"{rng.randint(1, 28) + rng.choice((0, 40)):02d}{rng.randint(1, 12):02d}{rng.randint(60, 99)}"
        nik = f"{region}{rest % 30 + 1:02d}{birth}{rest // 30 % 9999 + 1:04d}"
        record = _enrolment(rng, i, nik, start_ms)
        bad = every and i % every == every // 2
        kind = ("validation", "validation", "codec")[i // every % 3] if bad else "valid"
        if bad and kind == "validation":
            if record["event_type"] == "CONTRIBUTION_PAID":
                record["amount"] = 0  # paid_months_count: a contribution that pays nothing
            else:
                record["nik"] = nik[:6] + "3102" + nik[10:]  # nik_birth_date: 31 February
        v1 = rng.random() < 0.2  # old branch applications still publish with schema v1
        if v1:
            record.pop("source_system")
        value = catalogue.encode("enrolment", record, version=1 if v1 else None)
        if bad and kind == "codec":
            value += b"\x00"  # trailing_bytes
        yield nik.encode(), value, kind


def event_id(i: int) -> str:
    return f"sulteng-2025-{i:09d}"


def _enrolment(rng: random.Random, i: int, nik: str, start_ms: int) -> dict[str, Any]:
    roll = rng.random()
    kind = "CONTRIBUTION_PAID" if roll < 0.55 else "ENROLLED" if roll < 0.95 else "TERMINATED"
    months: list[str] = []
    if kind == "CONTRIBUTION_PAID":
        span = rng.choices((1, 2, 3, 6, 12), weights=(60, 15, 15, 7, 3))[0]
        first = rng.randint(1, 13 - span)
        months = [f"2025-{m:02d}" for m in range(first, first + span)]
    coverage_start = date.fromordinal(date(2025, 1, 1).toordinal() + rng.randrange(150))
    return {
        "event_id": event_id(i),
        "event_type": kind,
        "occurred_at": start_ms + rng.randrange(300 * 86_400_000),
        "branch_code": rng.choice(("PALU", "PALU", "LUWUK", "TOLITOLI")),
        "agreement_id": AGREEMENT_ID,
        "nik": nik,
        "programmes": ["JKK", "JKM"],
        "declared_income": 1_000_000,
        "coverage_start": coverage_start,
        "coverage_end": date(2025, 12, 31) if kind == "TERMINATED" else None,
        "paid_months": months,
        "amount": 16_800 * len(months),
        "termination_reason": "no longer an informal worker" if kind == "TERMINATED" else None,
        "source_system": rng.choice((None, "SIPP-Palu 3.2", "SMILE 2.1")),
    }


def agreement_record() -> dict[str, Any]:
    """Pemprov Sulawesi Tengah's APBD-P 2025 agreement for 100,402 workers, JKK+JKM."""
    return {
        "agreement_id": AGREEMENT_ID,
        "version": 1,
        "funder_name": "Pemprov Sulawesi Tengah",
        "funder_level": "PROVINCE",
        "region_code": "72",
        "branch_code": "PALU",
        "budget_source": "APBD_P",
        "programmes": ["JKK", "JKM"],
        "quota_workers": 100_402,
        "budget_rupiah": 100_402 * 16_800 * 12,
        "monthly_premium_rupiah": 16_800,
        "period_start": date(2025, 1, 1),
        "period_end": date(2025, 12, 31),
        "ramp": [
            {"month": "2025-03", "target_workers": 50_000},
            {"month": "2025-09", "target_workers": 100_402},
        ],
        "target_population": 978_084,
    }


# --- one measured run (in a child process, or in this one for --profile) ------------------------------------


@dataclass
class Marks:
    start: float = 0.0
    first: float | None = None  # when the first batch of records arrived
    end: float | None = None
    seen: int = 0
    cpu_start: float = 0.0  # time.process_time(): this process's CPU, all its threads
    cpu_end: float = 0.0
    # CPU of processes this one started for the work (the service's ledger writer), read at finish
    # (they start after begin, so from zero)
    helpers_cpu: Callable[[], float] = lambda: 0.0
    helpers_cpu_end: float = 0.0

    def begin(self) -> None:
        self.start, self.cpu_start = time.perf_counter(), time.process_time()

    def finish(self) -> None:
        self.helpers_cpu_end = self.helpers_cpu()
        self.end, self.cpu_end = time.perf_counter(), time.process_time() + self.helpers_cpu_end


def child_main() -> None:
    """``--child``: run the job read from stdin, print its result as one JSON line."""
    job = json.loads(sys.stdin.read())
    # No log handler here, so Python's last resort would print every "message dead-lettered" warning
    # into the report; 400 lines among 200,000 events cost nothing measurable either way.
    logging.getLogger("recon").setLevel(logging.ERROR)
    result = consume_run(job) if job["variant"] in ("consume", "decode") else ingest_run(job)
    # The service's ledger writer process has been reaped by now (RUSAGE_CHILDREN: its peak); the
    # sum of the two peaks is an upper bound of the pair's.
    peaks = (resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    result["peak_rss_kib"] = sum(peaks)
    print(json.dumps(result), flush=True)


def consume_run(job: dict[str, Any]) -> dict[str, Any]:
    from recon.kafka.clients import make_consumer
    from recon.settings import load_settings

    settings = load_settings(overrides=job["settings"])
    subjects = {settings.topic_enrolments: "enrolment", settings.topic_claims: "claim"}
    subjects |= {settings.topic_agreements: "agreement", settings.topic_branch_totals: "branch-totals"}
    decode = _decoder(settings) if job["variant"] == "decode" else None
    consumer = make_consumer(  # as ingest.bootstrap.build configures the service's consumer
        settings,
        group_id=settings.consumer_group,
        client_id=f"recon-bench-{job['variant']}",
        session_timeout_ms=10_000,
        heartbeat_interval_ms=3_000,
        max_poll_interval_ms=300_000,
    )
    total, timeout_ms = job["total"], int(settings.poll_timeout_seconds * 1000)
    marks, undecodable = Marks(), 0
    marks.begin()
    deadline = marks.start + job["timeout"]
    consumer.subscribe(list(settings.data_topics()))
    while marks.seen < total:
        polled = consumer.poll(timeout_ms=timeout_ms, max_records=settings.batch_max_records)
        for records in polled.values():
            if marks.first is None:
                marks.first = time.perf_counter()
            if decode is not None:
                undecodable += decode(records, subjects)
            marks.seen += len(records)
        if time.perf_counter() > deadline:
            raise TimeoutError(f"saw {marks.seen:,} of {total:,} messages in {job['timeout']} s")
    marks.finish()
    consumer.close(autocommit=False)
    return _timing(marks) | {"undecodable": undecodable}


def _decoder(settings: Any) -> Callable[[list[Any], dict[str, str]], int]:
    from recon.avro import DecodeError, SchemaCatalogue

    catalogue = SchemaCatalogue.load(settings.schemas_dir, max_message_bytes=settings.max_message_bytes)

    def decode_all(records: list[Any], subjects: dict[str, str]) -> int:
        bad = 0
        for record in records:
            try:
                catalogue.decode(record.value, subjects[record.topic])
            except DecodeError:
                bad += 1
        return bad

    return decode_all


def ingest_run(
    job: dict[str, Any], instrument: Callable[[Any, Marks], Callable[[], None]] | None = None
) -> Any:
    """The real service until it has handled ``total`` messages; then the ledger is checked."""
    from ingest.bootstrap import build
    from recon.runtime import settle_after_start
    from recon.settings import load_settings

    settings = load_settings(overrides=job["settings"])
    service = build(settings)
    settle_after_start()  # as ingest.bootstrap.run does
    stop, marks, total = threading.Event(), Marks(), job["total"]
    process_cpu = bench_module("_group").process_cpu

    def writer_cpu() -> float:
        pid = service._writes.pid  # the bench's business to reach in, never the code's
        return (process_cpu(pid) or 0.0) if pid is not None else 0.0

    marks.helpers_cpu = writer_cpu
    handle, commit = service.handle, service.commit

    def arrived(messages: Any) -> Any:
        if marks.first is None:
            marks.first = time.perf_counter()
        return handle(messages)

    def counted(queued: Any) -> None:  # on the service's writer thread, once per batch, in poll order
        commit(queued)  # when it returns, the batch is in the ledger with its offsets, dead letters sent
        marks.seen += sum(queued.processed.consumed.values())
        if marks.seen >= total:
            marks.finish()
            stop.set()

    # The instance attributes shadow the methods the loop (handle) and the writer (commit) call.
    service.handle, service.commit = arrived, counted
    undo = instrument(service, marks) if instrument is not None else None
    watchdog = threading.Timer(job["timeout"], stop.set)
    watchdog.daemon = True
    watchdog.start()
    marks.begin()
    try:
        service.run(stop=stop, idle_exit=None)
    finally:
        watchdog.cancel()
        if undo is not None:
            undo()
        with contextlib.suppress(Exception):  # run() closes only the consumer, not the relay's producer
            service._relay._producer.close(timeout=5)
    if marks.end is None:
        raise TimeoutError(f"handled {marks.seen:,} of {total:,} messages in {job['timeout']} s")
    return _timing(marks) | _ledger_facts(settings.database_url.get_secret_value())


def _timing(marks: Marks) -> dict[str, Any]:
    assert marks.end is not None and marks.first is not None
    return {
        "seconds": marks.end - marks.start,
        "cpu_seconds": marks.cpu_end - marks.cpu_start,
        "writer_process_cpu_seconds": marks.helpers_cpu_end,
        "first_batch": marks.first - marks.start,
        "seen": marks.seen,
    }


def _ledger_facts(url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from recon.ledger import Ledger, create_engine_for
    from recon.ledger.tables import outbox

    ledger = Ledger(create_engine_for(url))
    try:
        stored = ledger.count_events()["enrolment"]
        with ledger.engine.connect() as conn:
            dead = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
            sent = conn.execute(
                select(func.count()).select_from(outbox).where(outbox.c.sent_at_ms.is_not(None))
            ).scalar_one()
    finally:
        ledger.engine.dispose()
    return {"stored": stored, "dead_letters": dead, "sent": sent}


# --- the environment: broker, PostgreSQL, topics, databases -------------------------------------------------


def start_broker(stack: contextlib.ExitStack, folder: Path) -> str:
    from recon.broker import LocalBroker, free_ports

    port, controller_port = free_ports(2)
    broker = LocalBroker(home=folder / "kafka", port=port, controller_port=controller_port)
    stack.callback(broker.stop)
    return broker.start()


def start_postgres(stack: contextlib.ExitStack) -> tuple[str, Path]:
    """The server's URL (role recon) and its folder (the server log is postgres.log in it)."""
    # Not under our temporary folder: postgres.sh chowns its folder to `postgres`, who must reach it.
    folder = tempfile.mkdtemp(prefix="recon-bench-pg-")
    stack.callback(shutil.rmtree, folder, True)
    stack.callback(_postgres_sh, "stop", folder)
    from recon.broker import free_ports

    env = {**os.environ, "RECON_PG_PORT": str(free_ports(1)[0])}
    return _postgres_sh("start", folder, env=env).splitlines()[-1], Path(folder)


def _postgres_sh(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(POSTGRES_SH), *args], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        sys.exit(f"scripts/postgres.sh {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout.strip()


@dataclass
class Bench:
    """What every run shares: where the broker and the database server are, the topics, the counts."""

    bootstrap: str
    prefix: str
    folder: Path
    postgres_url: str | None
    total: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    timeout: float = 900.0
    created_topics: list[str] = field(default_factory=list)
    partitions: int = PARTITIONS
    kinds: list[str] = field(default_factory=list)  # per produced message, its outcome
    invalid_values: set[bytes] = field(default_factory=set)  # what the dead-letter topic must hold
    sample_values: list[bytes] = field(default_factory=list)  # the first valid ones (the machine's share)
    writer: str = "process"  # RECON_INGEST_WRITER of every service run (--writer)

    def valid_ids(self) -> list[str]:
        return [event_id(i) for i, kind in enumerate(self.kinds) if kind == "valid"]

    def overrides(self, **extra: Any) -> dict[str, Any]:
        names = ("enrolments", "claims", "agreements", "branch-totals", "coverage-alerts", "dead-letters")
        fields = ("enrolments", "claims", "agreements", "branch_totals", "alerts", "dead_letters")
        return {
            "kafka_bootstrap_servers": self.bootstrap,
            **{f"topic_{f}": self.prefix + name for f, name in zip(fields, names, strict=True)},
            "topic_partitions": self.partitions,
            "nik_hash_key": NIK_KEY,
            "batch_max_records": BATCH,
            "ingest_writer": self.writer,
            **extra,
        }

    def ensure_topics(self, **extra: Any) -> Any:
        from recon.kafka.topics import ensure_topics
        from recon.settings import load_settings

        settings = load_settings(overrides=self.overrides(**extra))
        self.created_topics += ensure_topics(self.bootstrap, settings)
        return settings

    def job(self, variant: str, tag: str) -> tuple[dict[str, Any], Callable[[], None]]:
        """A fresh consumer group, and for the service a fresh dead-letter topic and database."""
        extra: dict[str, Any] = {"consumer_group": f"bench-{variant}-{tag}-{uuid.uuid4().hex[:6]}"}
        cleanup: Callable[[], None] = _nothing
        if variant in ("sqlite", "postgres"):
            extra["topic_dead_letters"] = f"{self.prefix}dead-letters-{variant}-{tag}"
            self.ensure_topics(**extra)
            url, cleanup = self.fresh_database(variant, tag)
            extra["database_url"] = url
        job = {"variant": variant, "settings": self.overrides(**extra), "total": self.total}
        return job | {"timeout": self.timeout}, cleanup

    def fresh_database(self, variant: str, tag: str) -> tuple[str, Callable[[], None]]:
        from recon.ledger import Ledger, create_engine_for, upgrade

        if variant == "sqlite":
            path = self.folder / f"ledger-{tag}.db"
            url = f"sqlite:///{path}"

            def cleanup() -> None:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
        else:
            assert self.postgres_url is not None
            url, cleanup = create_postgres_database(self.postgres_url, f"bench_{tag}_{uuid.uuid4().hex[:8]}")
        upgrade(url)
        ledger = Ledger(create_engine_for(url))
        try:
            ledger.upsert_agreements([known_agreement()])
        finally:
            ledger.engine.dispose()
        return url, cleanup


def _nothing() -> None:
    pass


def create_postgres_database(server_url: str, name: str) -> tuple[str, Callable[[], None]]:
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    server = sa.make_url(server_url)
    if server.drivername == "postgresql":
        server = server.set(drivername="postgresql+psycopg")
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        # FORCE cannot end an autovacuum worker (a superuser's) busy with the new rows: wait for it.
        for attempt in range(20):
            try:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                break
            except sa.exc.DBAPIError as exc:
                if attempt == 19:
                    log(f"could not drop database {name} ({type(exc.orig).__name__}): drop it by hand")
                time.sleep(0.5)
        admin.dispose()

    return server.set(database=name).render_as_string(hide_password=False), drop


def known_agreement() -> Any:
    from recon.domain.validation import ValidationContext, validate_agreement
    from recon.settings import load_settings

    settings = load_settings(overrides={"nik_hash_key": NIK_KEY})
    ctx = ValidationContext(settings.domain(), time.time_ns() // 1_000_000, NIK_KEY.encode(), {})
    agreement = validate_agreement(agreement_record(), None, ctx)
    assert not hasattr(agreement, "code"), agreement
    return agreement


def produce(bench: Bench, events: int, invalid_share: float) -> None:
    """The N enrolment messages, once; then check the topic holds exactly N."""
    from kafka import TopicPartition

    from recon.avro import SchemaCatalogue
    from recon.kafka.clients import make_consumer, make_producer

    settings = bench.ensure_topics()
    catalogue = SchemaCatalogue.load(settings.schemas_dir)
    producer = make_producer(  # setup only: throughput over the service's per-record safety
        settings,
        client_id="recon-bench-producer",
        acks=1,
        enable_idempotence=False,
        linger_ms=20,
        batch_size=256 * 1024,
        max_in_flight_requests_per_connection=5,
        retries=1_000,  # the service's 5 ran out on a busy machine: a few hundred sends were lost
        max_block_ms=120_000,
    )
    failed: list[tuple[bytes, bytes, str]] = []  # filled by the sender thread

    def send(key: bytes, value: bytes) -> None:
        future = producer.send(settings.topic_enrolments, key=key, value=value)
        future.add_errback(lambda exc, k=key, v=value: failed.append((k, v, type(exc).__name__)))

    started = time.perf_counter()
    for key, value, outcome in enrolment_messages(catalogue, events, invalid_share):
        send(key, value)
        bench.outcomes[outcome] += 1
        bench.kinds.append(outcome)
        if outcome != "valid":
            bench.invalid_values.add(value)
        elif len(bench.sample_values) < 20_000:
            bench.sample_values.append(value)
    producer.flush()
    for _ in range(3):  # a send that failed is sent again (order does not matter: one worker each)
        if not failed:
            break
        again, failed[:] = list(failed), []
        log(
            f"{len(again):,} sends failed ({', '.join(sorted({e for _, _, e in again}))}): sending them again"
        )
        for key, value, _ in again:
            send(key, value)
        producer.flush()
    producer.close()
    probe = make_consumer(settings, group_id=None, client_id="recon-bench-probe")
    try:
        tps = [TopicPartition(settings.topic_enrolments, p) for p in range(bench.partitions)]
        bench.total = sum(probe.end_offsets(tps).values())
    finally:
        probe.close()
    if bench.total != events:
        sys.exit(f"the enrolments topic holds {bench.total:,} messages, not {events:,}: producing failed")
    log(f"produced {events:,} messages in {time.perf_counter() - started:.1f} s")


# --- rounds and the report ----------------------------------------------------------------------------------


def run_child(job: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child"],
        input=json.dumps(job),
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"the {job['variant']} run failed (exit {done.returncode}); its error is above")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def check(bench: Bench, variant: str, result: dict[str, Any]) -> None:
    """A figure counts only if the run did all the work: every message, every event where it belongs."""
    invalid = bench.outcomes["validation"] + bench.outcomes["codec"]
    expected = {"seen": bench.total}
    if variant == "decode":
        expected["undecodable"] = bench.outcomes["codec"]
    if variant in ("sqlite", "postgres"):
        expected |= {"stored": bench.outcomes["valid"], "dead_letters": invalid, "sent": invalid}
    wrong = {k: (result.get(k), v) for k, v in expected.items() if result.get(k) != v}
    if wrong:
        sys.exit(f"{VARIANTS[variant]}: (got, expected) {wrong}: the figure would not be comparable")


def measure(bench: Bench, variants: list[str], runs: int, warmup: int) -> dict[str, list[dict[str, Any]]]:
    for w in range(warmup):  # warms the broker's fetch path and the page cache; not recorded
        job, cleanup = bench.job("consume", f"w{w}")
        run_child(job)
        cleanup()
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for r in range(runs):
        order = variants[r % len(variants) :] + variants[: r % len(variants)]
        for variant in order:
            job, cleanup = bench.job(variant, f"r{r}")
            try:
                result = run_child(job)
            finally:
                cleanup()
            check(bench, variant, result)
            results[variant].append(result)
            rate = bench.total / result["seconds"]
            log(
                f"round {r + 1}/{runs} {VARIANTS[variant]:<26} {rate:>9,.0f} events/s  "
                f"{result['seconds']:.2f} s"
            )
    return results


def summarise(bench: Bench, results: dict[str, list[dict[str, Any]]], runs: int) -> dict[str, Any]:
    """The run's figures: per variant the median events/s, CPU µs/event, peak RSS; the ratios to decode."""
    variants: dict[str, dict[str, Any]] = {}
    for variant, rs in results.items():
        rates = [bench.total / r["seconds"] for r in rs]
        variants[variant] = {
            "events_s": statistics.median(rates),
            "events_s_each_round": rates,
            "first_batch_s": statistics.median(r["first_batch"] for r in rs),
            "cpu_us_per_event": statistics.median(r["cpu_seconds"] for r in rs) / bench.total * 1e6,
            "peak_rss_mib": max(r["peak_rss_kib"] for r in rs) / 1024,
        }
    base = variants.get(BASELINE, {}).get("events_s")
    for figures in variants.values():
        figures["ratio_to_decode"] = figures["events_s"] / base if base else None
        if base:
            figures["ratio_to_decode_each_round"] = [
                v / b
                for v, b in zip(
                    figures["events_s_each_round"], variants[BASELINE]["events_s_each_round"], strict=True
                )
            ]
    summary: dict[str, Any] = {
        "events": bench.total,
        "valid": bench.outcomes["valid"],
        "invalid_validation": bench.outcomes["validation"],
        "invalid_codec": bench.outcomes["codec"],
        "partitions": bench.partitions,
        "poll_max_records": BATCH,
        "rounds": runs,
        "variants": variants,
    }
    for variant in ("sqlite", "postgres"):
        ratio = variants[variant]["ratio_to_decode"] if variant in variants else None
        summary[f"ingest_ratio_{variant}"] = ratio
    summary["ingest_ratio_goal_met"] = (
        None
        if not any(summary[f"ingest_ratio_{v}"] for v in ("sqlite", "postgres"))
        else all(summary[f"ingest_ratio_{v}"] >= 0.5 for v in ("sqlite", "postgres") if v in variants)
    )
    return summary


def report(bench: Bench, summary: dict[str, Any]) -> None:
    variants, runs = summary["variants"], summary["rounds"]
    invalid = bench.outcomes["validation"] + bench.outcomes["codec"]
    print(
        f"\n{bench.total:,} enrolment events on {bench.partitions} partitions ({invalid:,} invalid: "
        f"{bench.outcomes['validation']:,} rejected by validation, {bench.outcomes['codec']:,} undecodable), "
        f"polls of up to {BATCH:,}; median of {runs} rounds, variants interleaved"
    )
    head = (
        f"{'variant':<26} {'events/s':>9}   {'each round':<{11 * runs}} "
        f"{'vs decode':>9} {'first batch':>11} {'CPU/event':>9} {'peak RSS':>9}"
    )
    print(head)
    print("-" * len(head))
    for variant, figures in variants.items():
        rounds = "".join(f"{v:>10,.0f} " for v in figures["events_s_each_round"])
        ratio = f"{figures['ratio_to_decode']:.2f}x" if figures["ratio_to_decode"] else "-"
        print(
            f"{VARIANTS[variant]:<26} {figures['events_s']:>9,.0f}   {rounds:<{11 * runs}} {ratio:>9} "
            f"{figures['first_batch_s']:>9.2f} s {figures['cpu_us_per_event']:>6.1f} µs "
            f"{figures['peak_rss_mib']:>5.0f} MiB"
        )
    if BASELINE not in variants:
        return
    print("\nratio per round (same round as its consume + decode run), and the goal of 0.50x:")
    for variant in ("consume", "sqlite", "postgres"):
        if variant in variants:
            figures = variants[variant]
            met = figures["ratio_to_decode"] >= 0.5
            verdict = "" if variant == "consume" else ("  met" if met else "  MISSED")
            paired = figures["ratio_to_decode_each_round"]
            print(f"  {VARIANTS[variant]:<26} " + "  ".join(f"{p:.2f}x" for p in paired) + verdict)


def machine(external_broker: bool) -> dict[str, Any]:
    """Prints the machine and the versions; returns them for --json (with the load average now)."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    versions = {}
    for dist in ("kafka-python", "crc32c", "SQLAlchemy", "psycopg", "pydantic"):
        try:
            versions[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            versions[dist] = "absent"
    import sqlite3

    from recon.broker import kafka_version

    print(f"machine: {os.cpu_count()} cores, {model}, {platform.system()} {platform.release()}")
    broker = "the broker of RECON_KAFKA_BOOTSTRAP_SERVERS" if external_broker else f"Kafka {kafka_version()}"
    listed = ", ".join(f"{dist} {version}" for dist, version in versions.items())
    print(
        f"versions: Python {platform.python_version()}, {listed}, SQLite {sqlite3.sqlite_version}, {broker}"
    )
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        **versions,
        "sqlite": sqlite3.sqlite_version,
        "kafka": broker,
        "load_average_at_start": os.getloadavg(),
        "shared": "other work may run on this machine: see load_average_at_start/_at_end",
    }


def postgres_version(url: str) -> str:
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    server = sa.make_url(url)
    if server.drivername == "postgresql":
        server = server.set(drivername="postgresql+psycopg")
    engine = sa.create_engine(server, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return str(conn.execute(sa.text("SHOW server_version")).scalar_one())
    finally:
        engine.dispose()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- --profile: where the time goes -------------------------------------------------------------------------


class Stages:
    """Wall time per labelled call, counted only once the first batch has arrived (steady state).

    A label is not counted again inside itself (``RowCodec.dicts`` calls ``RowCodec.rows``); with
    ``inside``, only within calls of that other label on the same thread (the loop and the writer
    thread each keep their own nesting). The cyclic garbage collector's pauses are timed apart
    (gc.callbacks): they happen inside whichever part allocated.
    """

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.collections: Counter[int] = Counter()
        self.gc_seconds = 0.0
        self._gc_started = 0.0
        self._local = threading.local()
        self._lock = threading.Lock()
        self._undo: list[Callable[[], None]] = []
        self.marks = Marks()

    def _depth(self) -> Counter[str]:
        depth: Counter[str] | None = getattr(self._local, "depth", None)
        if depth is None:
            depth = self._local.depth = Counter()
        return depth

    def wrap(self, owner: Any, name: str, label: str, inside: str | None = None) -> None:
        original = getattr(owner, name)
        had_own = name in getattr(owner, "__dict__", {})

        def timed(*args: Any, **kwargs: Any) -> Any:
            depth = self._depth()
            if self.marks.first is None or depth[label] or (inside and not depth[inside]):
                return original(*args, **kwargs)
            depth[label] += 1
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:  # up to the last commit: the loop's poll after it waits for nothing measured
                ended = (
                    time.perf_counter()
                    if self.marks.end is None
                    else min(time.perf_counter(), self.marks.end)
                )
                elapsed = max(0.0, ended - started)
                with self._lock:
                    self.seconds[label] += elapsed
                depth[label] -= 1

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original) if had_own else delattr(owner, name))

    def watch_gc(self) -> None:
        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                self._gc_started = time.perf_counter()
            elif self.marks.first is not None:
                self.gc_seconds += time.perf_counter() - self._gc_started
                self.collections[info["generation"]] += 1

        gc.callbacks.append(on_gc)
        self._undo.append(lambda: gc.callbacks.remove(on_gc))

    def undo(self) -> None:
        while self._undo:
            self._undo.pop()()


# (label, indent) in print order, per thread; the labels at indent 0 partition that thread's time
# (the rest of the loop's is "the rest"; the rest of the writer's is waiting for a batch).
LOOP_STAGES = (
    ("Kafka fetch: KafkaConsumer.poll", 0),
    ("Processor.process (decode + validate + batch)", 0),
    ("SchemaCatalogue.decode", 1),
    ("RowValidator.validate (fast path, reference on doubt)", 1),
    ("worker_key (HMAC-SHA256 of the NIK)", 2),
    ("waiting for room in the write queue", 0),
    ("waiting for the writer (agreements, rebalance)", 0),
    ("KafkaConsumer.commit (offsets, for lag)", 0),
    ("Ledger.agreements (reload every 5 s)", 0),
)
WRITER_STAGES = (
    ("write_batch in the writer process, until it committed", 0),
    ("rows to plain tuples, pickled, sent (GIL held)", 1),
    ("OutboxRelay.flush (dead letters to Kafka)", 0),
)
STAGES = LOOP_STAGES + WRITER_STAGES


def instrument_stages(stages: Stages) -> Callable[[Any, Marks], Callable[[], None]]:
    def instrument(service: Any, marks: Marks) -> Callable[[], None]:
        import ingest.writer_process
        import recon.domain._validation_fast
        import recon.domain.validation
        from recon.domain.validation import RowValidator

        stages.marks = marks
        # The service's parts are private; reaching in is the bench's business, never the code's.
        (poll, process, decode, validate, hmac, room, drain, offsets, reload) = (x for x, _ in LOOP_STAGES)
        (write, send, relay) = (label for label, _ in WRITER_STAGES)
        stages.wrap(service._consumer, "poll", poll)
        stages.wrap(service._processor, "process", process)
        stages.wrap(service._processor._catalogue, "decode", decode)
        stages.wrap(RowValidator, "validate", validate)
        stages.wrap(recon.domain._validation_fast, "worker_key", hmac)
        stages.wrap(recon.domain.validation, "worker_key", hmac)
        stages.wrap(service._writer, "submit", room)
        stages.wrap(service._writer, "drain", drain)
        # The database work runs in the writer process: its CPU is printed apart (its parts were
        # measured in-process before it moved, docs/performance.md).
        stages.wrap(service._writes, "write_batch", write)
        stages.wrap(ingest.writer_process, "plain_rows", send, inside=write)
        stages.wrap(service._writes, "_send", send, inside=write)
        stages.wrap(service._relay, "flush", relay)
        stages.wrap(service._consumer, "commit", offsets)
        stages.wrap(service._ledger, "agreements", reload)
        stages.watch_gc()
        return stages.undo

    return instrument


def profile(bench: Bench, variants: list[str]) -> None:
    for variant in ("sqlite", "postgres"):
        if variant not in variants:
            continue
        stages = Stages()
        job, cleanup = bench.job(variant, f"split-{variant}")
        try:
            result = ingest_run(job, instrument_stages(stages))
        finally:
            cleanup()
        check(bench, variant, result)
        steady = result["seconds"] - result["first_batch"]
        cpu = result["cpu_seconds"] / bench.total * 1e6
        print(
            f"\nwhere the time goes, {VARIANTS[variant]}, one run in this process, timers, no profiler: "
            f"{bench.total / result['seconds']:,.0f} events/s, {cpu:.1f} µs CPU/event"
        )
        print(
            f"  {'startup to the first batch (join, seek, outbox recovery)':<58} "
            f"{result['first_batch']:6.2f} s"
        )
        print(f"  {'steady state, from the first batch to the last':<58} {steady:6.2f} s   100%")
        writer_cpu = result["writer_process_cpu_seconds"]
        print(
            f"  {'CPU of the ledger writer process, whole run':<58} {writer_cpu:6.2f} s  "
            f"({writer_cpu / bench.total * 1e6:.1f} µs/event of the {cpu:.1f})"
        )
        for thread, labels, rest in (
            ("the loop's thread", LOOP_STAGES, "the rest (loop, guard, batching)"),
            ("the writer thread", WRITER_STAGES, "waiting for a batch, metrics, logging"),
        ):
            print(f"  {thread}:")
            top = 0.0
            for label, indent in labels:
                seconds = stages.seconds[label]
                top += seconds if indent == 0 else 0.0
                name = "  " * (indent + 1) + label
                print(f"  {name:<58} {seconds:6.2f} s  {seconds / steady:4.0%}")
            print(f"  {'  ' + rest:<58} {steady - top:6.2f} s  {(steady - top) / steady:4.0%}")
        runs = ", ".join(f"gen{g} x{n}" for g, n in sorted(stages.collections.items()))
        name = "cyclic GC pauses, inside the parts above"
        print(f"  {name:<58} {stages.gc_seconds:6.2f} s  {stages.gc_seconds / steady:4.0%}  ({runs})")
    if "sqlite" in variants:
        cprofile_sqlite(bench)


def cprofile_sqlite(bench: Bench) -> None:
    job, cleanup = bench.job("sqlite", "cprofile")
    loop, writer = cProfile.Profile(), cProfile.Profile()

    def on_writer_thread(service: Any, marks: Marks) -> Callable[[], None]:
        commit = service.commit  # the bench's counting wrapper; cProfile sees one thread per profiler
        service.commit = lambda queued: writer.runcall(commit, queued)
        return lambda: setattr(service, "commit", commit)

    try:
        loop.enable()
        result = ingest_run(job, on_writer_thread)
        loop.disable()
    finally:
        cleanup()
    check(bench, "sqlite", result)
    for thread, profiler in (("the loop's thread", loop), ("the writer thread", writer)):
        print(
            f"\ncProfile of {VARIANTS['sqlite']} ({bench.total / result['seconds']:,.0f} events/s under the "
            f"profiler, which inflates pure-Python code most), {thread}:"
        )
        for order in ("cumulative", "tottime"):
            print(f"\n--- top 15 by {order} ---")
            stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats(order)
            stats.print_stats(15)


# --- main ---------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres-url", help="a server whose role may CREATE DATABASE; default: start one")
    parser.add_argument(
        "--invalid", type=float, default=0.002, help="share of invalid events (default 0.002)"
    )
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma-separated subset of: %(default)s"
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed consume passes first (default 1)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds one run may take (default 900)")
    parser.add_argument("--profile", action="store_true", help="then show where the whole ingest's time goes")
    parser.add_argument(
        "--rss-events",
        metavar="N1,N2",
        help="then the SQLite ingest's peak RSS at these two sizes, and the ratio",
    )
    parser.add_argument(
        "--group", metavar="P1,P2,..", help="then P `recon ingest` processes in one group into one PostgreSQL"
    )
    parser.add_argument("--group-runs", type=int, help="rounds of the group variant (default: --runs)")
    parser.add_argument(
        "--group-events",
        type=int,
        default=800_000,
        help="events of the group variant (default 800,000: 200,000 a process with 4, so a steady state "
        "outweighs each member's join and first fetch)",
    )
    parser.add_argument(
        "--writer",
        choices=("process", "thread"),
        default="process",
        help="RECON_INGEST_WRITER of the services measured (default: process)",
    )
    parser.add_argument("--json", action="store_true", help="report on stderr; one JSON object on stdout")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main()
        return
    variants = [v.strip() for v in args.variants.split(",") if v.strip() and v.strip() != "none"]
    unknown = set(variants) - set(VARIANTS)
    rss_sizes = _numbers(parser, args.rss_events, "--rss-events", count=2)
    group_counts = _numbers(parser, args.group, "--group")
    if unknown or not (variants or rss_sizes or group_counts):
        parser.error(
            f"--variants takes some of {', '.join(VARIANTS)} (or none, with --rss-events or --group); "
            f"unknown: {', '.join(sorted(unknown))}"
        )
    if not 0 <= args.invalid < 0.5:
        parser.error("--invalid is a share between 0 and 0.5")
    real_stdout = _stdout_to_stderr() if args.json else None

    external = bool(os.environ.get("RECON_KAFKA_BOOTSTRAP_SERVERS"))
    summary: dict[str, Any] = {"command": " ".join(["bench/ingest.py", *sys.argv[1:]])}
    summary["machine"] = machine(external_broker=external)
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="recon-bench-ingest-")))
        bootstrap = os.environ.get("RECON_KAFKA_BOOTSTRAP_SERVERS") or start_broker(stack, folder)
        postgres, pg_folder = None, None
        if "postgres" in variants or group_counts:
            postgres, pg_folder = (args.postgres_url, None) if args.postgres_url else start_postgres(stack)
            summary["machine"]["postgresql"] = postgres_version(postgres)
            print(f"PostgreSQL {summary['machine']['postgresql']}")
        prefix = f"bench{uuid.uuid4().hex[:6]}-"
        if variants:
            bench = Bench(bootstrap, prefix, folder, postgres, timeout=args.timeout, writer=args.writer)
            if external:
                stack.callback(delete_topics, bench)
            log(f"broker {bootstrap}; producing {args.events:,} enrolment events")
            produce(bench, args.events, args.invalid)
            results = measure(bench, variants, args.runs, args.warmup)
            figures = summarise(bench, results, args.runs)
            report(bench, figures)
            summary |= figures
            if args.profile:
                profile(bench, variants)
        if rss_sizes:
            summary["rss_scaling"] = rss_scaling(stack, bootstrap, prefix, folder, rss_sizes, args)
        if group_counts:
            assert postgres is not None
            summary |= group_variant(
                stack, bootstrap, prefix, folder, (postgres, pg_folder), group_counts, args
            )
    summary["machine"]["load_average_at_end"] = os.getloadavg()
    if real_stdout is not None:
        sys.stdout.flush()
        os.write(real_stdout, (json.dumps(summary, default=str) + "\n").encode())


def _numbers(parser: argparse.ArgumentParser, text: str | None, option: str, count: int = 0) -> list[int]:
    if text is None:
        return []
    try:
        numbers = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        numbers = []
    if not numbers or min(numbers) < 1 or (count and len(numbers) != count):
        what = f"{count} positive whole numbers" if count else "positive whole numbers"
        parser.error(f"{option} takes {what}, comma-separated (got {text!r}): e.g. 200000,1000000 or 1,2,4")
    return numbers


def _stdout_to_stderr() -> int:
    """For --json: everything written to stdout (ours, the broker's, the children's) goes to stderr;
    returns a descriptor of the real stdout, for the JSON object alone."""
    sys.stdout.flush()
    real = os.dup(1)
    os.dup2(2, 1)
    return real


def bench_module(name: str) -> Any:
    """A module of this folder, by path (the folder is off sys.path: see the top of this file)."""
    path = Path(__file__).resolve().with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"recon_bench_{name.lstrip('_')}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# --- --rss-events: does memory stay flat as the stream grows? -----------------------------------------------


def rss_scaling(
    stack: contextlib.ExitStack, bootstrap: str, prefix: str, folder: Path, sizes: list[int], args: Any
) -> dict[str, Any]:
    """The SQLite ingest once per size, on topics of its own; peak RSS of each and the ratio."""
    runs = []
    for size in sizes:
        bench = Bench(
            bootstrap, f"{prefix}rss{size}-", folder, None, timeout=args.timeout, writer=args.writer
        )
        if os.environ.get("RECON_KAFKA_BOOTSTRAP_SERVERS"):
            stack.callback(delete_topics, bench)
        log(f"RSS scaling: producing {size:,} enrolment events")
        produce(bench, size, args.invalid)
        job, cleanup = bench.job("sqlite", f"rss{size}")
        try:
            result = run_child(job)
        finally:
            cleanup()
        check(bench, "sqlite", result)
        runs.append({"events": size, "peak_rss_mib": result["peak_rss_kib"] / 1024} | _rate(bench, result))
        log(f"RSS scaling: {size:,} events, peak RSS {runs[-1]['peak_rss_mib']:.0f} MiB")
    ratio = runs[-1]["peak_rss_mib"] / runs[0]["peak_rss_mib"]
    met = abs(ratio - 1) <= 0.15
    print(f"\npeak RSS of {VARIANTS['sqlite']}, one run per size (a child process each):")
    for run in runs:
        print(
            f"  {run['events']:>10,} events  {run['peak_rss_mib']:>6.0f} MiB  "
            f"{run['events_s']:>9,.0f} events/s  {run['cpu_us_per_event']:.1f} µs CPU/event"
        )
    print(f"  ratio {ratio:.2f} (goal: flat, within 15%): {'met' if met else 'MISSED'}")
    return {"runs": runs, "ratio": ratio, "goal_met": met}


def _rate(bench: Bench, result: dict[str, Any]) -> dict[str, float]:
    return {
        "events_s": bench.total / result["seconds"],
        "cpu_us_per_event": result["cpu_seconds"] / bench.total * 1e6,
    }


# --- --group: several `recon ingest` processes in one consumer group (bench/_group.py) ----------------------

GROUP_PARTITIONS = 8


def group_variant(
    stack: contextlib.ExitStack,
    bootstrap: str,
    prefix: str,
    folder: Path,
    postgres: tuple[str, Path | None],
    counts: list[int],
    args: Any,
) -> dict[str, Any]:
    import sqlalchemy as sa

    group = bench_module("_group")
    url, pg_folder = postgres
    bench = Bench(
        bootstrap,
        f"{prefix}group-",
        folder,
        url,
        timeout=args.timeout,
        partitions=GROUP_PARTITIONS,
        writer=args.writer,
    )
    if os.environ.get("RECON_KAFKA_BOOTSTRAP_SERVERS"):
        stack.callback(delete_topics, bench)
    log(f"group: producing {args.group_events:,} enrolment events on {GROUP_PARTITIONS} partitions")
    produce(bench, args.group_events, args.invalid)
    if pg_folder is not None:  # our own server: its superuser (trust on loopback) may ALTER SYSTEM
        admin = sa.make_url(url).set(username="postgres", database="postgres").render_as_string(False)
        server = group.Server(admin, pg_folder / "postgres.log", superuser=True)
        server.postmaster_pid = group.pid_from_file(pg_folder / "data" / "postmaster.pid")
    else:
        server = group.Server(url, None)
    if not os.environ.get("RECON_KAFKA_BOOTSTRAP_SERVERS"):  # our LocalBroker: its JVM's CPU too
        server.broker_pid = group.pid_from_file(folder / "kafka" / "kafka.pid")
    server.enable_lock_logging()
    rows = group.run_group(bench, server, counts, args.group_runs or args.runs, REPO)
    group.report(rows, bench.total, bench.partitions, server)
    contention = group.machine_contention(bench.sample_values, sorted({1, *counts}))
    print(
        "the machine alone: CPU per decode with P processes decoding at once (no Kafka, no database), "
        "vs 1: " + ", ".join(f"{p} processes {r:.2f}x" for p, r in sorted(contention.items()))
    )
    setup = {
        "events": bench.total,
        "partitions": bench.partitions,
        "rounds": args.group_runs or args.runs,
        "server_settings": server.settings,
        "server_log_read": server.log_path is not None,
    }
    return {"group": rows, "group_setup": setup, "machine_cpu_ratio_vs_1": contention}


def delete_topics(bench: Bench) -> None:
    from kafka import KafkaAdminClient

    from recon.kafka.clients import client_config
    from recon.settings import load_settings

    options = {**client_config(load_settings()), "bootstrap_servers": bench.bootstrap.split(",")}
    admin = KafkaAdminClient(**options, client_id="recon-bench")
    try:
        admin.delete_topics(bench.created_topics, raise_errors=False)
    finally:
        admin.close()


if __name__ == "__main__":
    main()
