"""Fault: `recon ingest` killed (SIGKILL) while validated batches wait in its write queue.

The writer thread is held up by a lock another connection holds on the ledger (SQLite: the write
lock, taken with BEGIN IMMEDIATE; PostgreSQL: an EXCLUSIVE lock on consumer_offsets, which the
writer's transaction needs last, so it is killed mid-transaction). The loop keeps polling and
validating until the queue is full; the service's own debug log says how many batches it holds,
and the ledger, read from outside, shows none of them committed. Then the process is killed, the
lock let go and a new consumer started: every event must end up in the ledger exactly once and
every dead letter once, because the ledger's offsets never moved past a batch it did not commit.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from faults import Lab, Outcome, Proc, Run, check_checkpoint, open_lab, run_concurrently, run_ingest_scenario

DEPTH = 2  # RECON_INGEST_WRITE_QUEUE_DEPTH for these runs: batches that may wait behind the one written


@pytest.fixture
def lab(kafka_bootstrap: str, tmp_path: Path, postgres_url: str) -> Iterator[Lab]:
    with open_lab(kafka_bootstrap, tmp_path, postgres_url) as opened:
        yield opened


@contextlib.contextmanager
def writer_held(db_url: str) -> Iterator[None]:
    """Hold what the service's writer needs until the block ends (another connection's lock)."""
    url = sa.make_url(db_url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(url.database or "", isolation_level=None, timeout=30)
        try:
            conn.execute("BEGIN IMMEDIATE")  # the write lock; readers (WAL) carry on
            yield
            conn.execute("ROLLBACK")
        finally:
            conn.close()
        return
    engine = sa.create_engine(db_url, poolclass=NullPool)
    try:
        with engine.connect() as conn, conn.begin() as tx:
            conn.execute(sa.text("LOCK TABLE consumer_offsets IN EXCLUSIVE MODE"))  # reads still pass
            yield
            tx.rollback()
    finally:
        engine.dispose()


def held_batches(proc: Proc) -> int:
    """Batches the service holds (one being written, the rest queued) as its log tells: the count of
    its last "batch queued" line, less the batches committed after it."""
    held = 0
    for line in list(proc.stderr):
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("msg") == "batch queued":
                held = int(entry["batches_held"])
            elif entry.get("msg") == "batch committed":
                held = max(0, held - 1)
    return held


def kill_with_batches_queued(run: Run) -> None:
    proc = run.start_consumer("--log-level", "DEBUG")
    run.wait_stored(200)  # working, with most of the stream still to come (it is paced over 12 s)
    with writer_held(run.db_url):
        offsets, still_since = run.view.offsets(run.group), time.monotonic()
        deadline = still_since + 60
        # Until the loop has filled the queue behind the held writer, and the ledger stays put.
        while held_batches(proc) < 1 + DEPTH or time.monotonic() - still_since < 1.0:
            run.supervise()
            if time.monotonic() > deadline:
                raise AssertionError(f"{run.name}: the write queue never filled:\n{proc.tail(60)}")
            now = run.view.offsets(run.group)
            if now != offsets:  # a commit that was under way when the lock was asked for
                offsets, still_since = now, time.monotonic()
            time.sleep(0.05)
        held = held_batches(proc)
        proc.kill()
        if run.view.offsets(run.group) != offsets:
            run.problems.append("the ledger's offsets moved while its writer was held")
    run.faults += 1
    run.notes.append(f"killed holding {held} batches: one in the writer's hands, {held - 1} queued")
    check_checkpoint(run)
    run.retire(proc)
    run.start_consumer()
    run.fault_ended = time.monotonic()


def scenario(lab: Lab, database: str) -> Outcome:
    db_url = lab.sqlite_url("queued") if database == "sqlite" else lab.postgres_database()
    return run_ingest_scenario(
        lab,
        f"sigkill with batches queued ({database})",
        db_url=db_url,
        fault=kill_with_batches_queued,
        consumers=0,  # the fault hook starts the first one, with its debug log on
        n_valid=6_000,
        n_invalid=60,
        stream_seconds=12,
        batch_max_records=20,
        ingest_write_queue_depth=DEPTH,
    )


def test_sigkill_with_batches_in_the_write_queue_loses_and_duplicates_nothing(lab: Lab) -> None:
    outcomes = run_concurrently(lambda: scenario(lab, "sqlite"), lambda: scenario(lab, "postgresql"))
    print(*outcomes, sep="\n")

    for outcome in outcomes:
        assert outcome.ok, outcome.explain()
        assert outcome.faults == 1 and outcome.stored == 6_000 and outcome.dead_lettered == 60
