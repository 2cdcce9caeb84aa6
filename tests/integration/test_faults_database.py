"""Fault campaign: the ledger's database restarted, full, or refusing writes mid-stream.

- PostgreSQL restarted (a cluster of its own, `scripts/postgres.sh stop/start`): the running service
  retries and resumes by itself.
- SQLite on a full disk (the database on a small tmpfs, then the free space filled), and
  PostgreSQL switched to read-only (``default_transaction_read_only`` and its sessions ended): the
  service fails or keeps retrying, no offset moves past what was stored, and once writes are allowed
  again a restarted service finishes exactly.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from kafka import KafkaAdminClient
from sqlalchemy.pool import NullPool

from faults import (
    Lab,
    Outcome,
    PgCluster,
    Proc,
    Run,
    check_checkpoint,
    create_database,
    open_lab,
    own_postgres,
    run_ingest_scenario,
)

BUDGET = 5.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    with own_postgres() as started:
        yield started


@pytest.fixture
def lab(kafka_bootstrap: str, tmp_path: Path, postgres_url: str) -> Iterator[Lab]:
    with open_lab(kafka_bootstrap, tmp_path, postgres_url) as opened:
        yield opened


# --- PostgreSQL restarted ------------------------------------------------------------------------


def postgres_restart_scenario(lab: Lab, cluster: PgCluster, *, n_valid: int = 6000) -> Outcome:
    return run_ingest_scenario(
        lab,
        "PostgreSQL restarted mid-stream",
        db_url=create_database(cluster.url),
        fault=restart_postgres(cluster, down_seconds=1.0),
        n_valid=n_valid,
        n_invalid=n_valid // 100,
        stream_seconds=4,
        batch_max_records=100,
        retry_budget_seconds=60,
    )


def restart_postgres(cluster: PgCluster, *, down_seconds: float) -> Callable[[Run], None]:
    def fault(run: Run) -> None:
        run.wait_stored(run.stream.distinct_valid // 3)
        started = time.monotonic()
        cluster.stop()
        run.faults += 1
        time.sleep(down_seconds)
        cluster.start()
        run.fault_ended = time.monotonic()
        run.notes.append(
            f"PostgreSQL down for {run.fault_ended - started:.1f} s (fast shutdown, wait, start)"
        )

    return fault


# --- writes refused ------------------------------------------------------------------------------


def sqlite_disk_full_scenario(lab: Lab, *, n_valid: int = 6000) -> Outcome:
    folder = lab.work / "small-disk"
    with small_filesystem(folder, megabytes=48) as fill:
        return run_ingest_scenario(
            lab,
            "SQLite disk full",
            db_url=f"sqlite:///{folder / 'recon.db'}",
            fault=refuse_writes(fill),
            n_valid=n_valid,
            n_invalid=n_valid // 100,
            stream_seconds=4,
            batch_max_records=100,
            retry_budget_seconds=BUDGET,
        )


def postgres_read_only_scenario(lab: Lab, *, n_valid: int = 6000) -> Outcome:
    db_url = lab.postgres_database()
    return run_ingest_scenario(
        lab,
        "PostgreSQL read-only",
        db_url=db_url,
        fault=refuse_writes(lambda proc: read_only(db_url)),
        n_valid=n_valid,
        n_invalid=n_valid // 100,
        stream_seconds=4,
        batch_max_records=100,
        retry_budget_seconds=BUDGET,
    )


Refusal = Callable[[Proc], contextlib.AbstractContextManager[object]]


def refuse_writes(refusal: Refusal) -> Callable[[Run], None]:
    """While ``refusal`` holds: the consumer must fail loudly or keep retrying, and the checkpoint must
    hold (no ledger offset past an unstored message, no Kafka offset past the ledger's). Then writes
    come back, the consumer (restarted if it stopped) finishes."""

    def fault(run: Run) -> None:
        run.wait_stored(run.stream.distinct_valid // 3)
        consumer = run.consumers[0]
        with refusal(consumer):
            refused = time.monotonic()
            run.faults += 1
            code = consumer.wait(timeout=BUDGET + 20)
            waited = time.monotonic() - refused
            admin = KafkaAdminClient(bootstrap_servers=run.bootstrap.split(","), client_id="faults-check")
            try:
                check_checkpoint(run, admin)
            finally:
                admin.close()
            if code is None:
                run.notes.append(f"ingest kept retrying for {waited:.0f} s of refused writes")
            else:
                line = consumer.last_line()
                run.notes.append(f"ingest exited {code} {waited:.1f} s after writes were refused: {line}")
                if code == 0 or not line.startswith("recon:"):
                    run.problems.append(f"ingest exited {code} without a one-line 'recon:' message: {line}")
                run.retire(consumer)
        if not run.consumers:
            run.start_consumer()
        run.fault_ended = time.monotonic()

    return fault


@contextlib.contextmanager
def small_filesystem(folder: Path, *, megabytes: int) -> Iterator[Refusal]:
    """A tmpfs of ``megabytes`` at ``folder``; the refusal it yields fills it (ENOSPC) until released.

    Without the right to mount (not root, or no CAP_SYS_ADMIN) the folder is a plain one and the
    refusal caps the consumer's file size instead (RLIMIT_FSIZE: every write fails with EFBIG).
    """
    folder.mkdir(parents=True, exist_ok=True)
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(folder)],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )

    @contextlib.contextmanager
    def fill(proc: Proc) -> Iterator[object]:
        if mounted:
            filler = folder / "filler"
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                while True:
                    os.write(fd, b"\0" * (1 << 16))
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
            finally:
                os.close(fd)
            try:
                yield filler
            finally:
                filler.unlink()
        else:
            soft, hard = resource.prlimit(proc.pid, resource.RLIMIT_FSIZE)
            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (1, hard))
            try:
                yield errno.EFBIG
            finally:
                with contextlib.suppress(ProcessLookupError):
                    resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (soft, hard))

    try:
        yield fill
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], check=False)


@contextlib.contextmanager
def read_only(db_url: str) -> Iterator[object]:
    """The database refuses writes: new transactions are read-only, and every open session is ended."""
    name = sa.make_url(db_url).database
    admin = sa.create_engine(
        sa.make_url(db_url).set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
        yield name
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))
    finally:
        admin.dispose()


# --- tests ---------------------------------------------------------------------------------------


def test_postgres_restarted_mid_stream_ingest_resumes_by_itself_exactly(lab: Lab, cluster: PgCluster) -> None:
    outcome = postgres_restart_scenario(lab, cluster)
    print(outcome)

    assert outcome.ok, outcome.explain()
    assert outcome.stored == 6000 and outcome.dead_lettered == 60


def test_sqlite_disk_full_moves_no_offset_past_what_was_stored_and_a_restart_finishes(lab: Lab) -> None:
    outcome = sqlite_disk_full_scenario(lab)
    print(outcome)

    assert outcome.ok, outcome.explain()
    assert outcome.stored == 6000 and outcome.dead_lettered == 60


def test_postgres_read_only_moves_no_offset_past_what_was_stored_and_a_restart_finishes(lab: Lab) -> None:
    outcome = postgres_read_only_scenario(lab)
    print(outcome)

    assert outcome.ok, outcome.explain()
    assert outcome.stored == 6000 and outcome.dead_lettered == 60
