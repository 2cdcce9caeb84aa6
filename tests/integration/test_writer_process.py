"""The ingest's ledger writer process (ingest.writer_process) on real SQLite and PostgreSQL: it writes
exactly what Ledger.write_batch writes, hands its faults back unchanged (so the retry policy sees the
same classes), and never outlives the process that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ingest.writer_process import LedgerWriterProcess
from recon.domain.events import claim_row, enrolment_row
from recon.errors import ConfigError, PermanentFault
from recon.ledger import Batch, Ledger, create_engine_for, upgrade
from recon.ledger import samples as s
from recon.ledger.tables import metadata
from recon.retry import is_transient

pytestmark = pytest.mark.integration

GROUP = "rentan-recon-ingest"


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'recon.db'}"
    fresh: str = request.getfixturevalue("fresh_postgres_url")
    return fresh


@pytest.fixture
def writes(url: str) -> Iterator[LedgerWriterProcess]:
    upgrade(url)
    process = LedgerWriterProcess(url)
    process.start()
    try:
        yield process
    finally:
        process.close()


def a_batch(start: int) -> Batch:
    """Rows as the ingest builds them (NamedTuples), with events, agreements, a dead letter, offsets."""
    return Batch(
        enrolments=[enrolment_row(s.enrolment(n, partition=n % 3)) for n in range(start, start + 300)],
        claims=[claim_row(s.claim(n)) for n in range(start, start + 10)],
        agreements=[s.agreement(1)],
        branch_totals=[s.branch_totals(start)],
        outbox=[s.dead_letter(start + 300)],
        offsets={("enrolments", p): start + 300 + p for p in range(3)},
    )


def tables_of(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, timestamps of the write left out (the two writes ran at other moments)."""
    engine = create_engine_for(url)
    try:
        with engine.connect() as conn:
            dump = {}
            for table in metadata.sorted_tables:
                keep = [c for c in table.c if not c.name.endswith(("_at_ms", "batch_id")) and c.name != "id"]
                if not keep:  # ingest_batches: an id and a time only
                    dump[table.name] = [conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()]
                    continue
                dump[table.name] = sorted(map(tuple, conn.execute(sa.select(*keep))), key=repr)
            return dump
    finally:
        engine.dispose()


def test_it_writes_what_the_ledger_writes_in_process(
    writes: LedgerWriterProcess, url: str, tmp_path: Path
) -> None:
    outcome = writes.write_batch(GROUP, a_batch(0), key_rotation=None)
    again = writes.write_batch(GROUP, a_batch(0), key_rotation=None)  # a replay: every event a duplicate
    writes.close()

    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    upgrade(reference_url)
    reference = Ledger(create_engine_for(reference_url))
    try:
        assert outcome == reference.write_batch(GROUP, a_batch(0))
        assert again == reference.write_batch(GROUP, a_batch(0))
    finally:
        reference.engine.dispose()
    assert outcome.stored == {"enrolment": 300, "claim": 10, "agreement": 1, "branch_totals": 1}
    assert again.duplicates == {"enrolment": 300, "claim": 10, "agreement": 1, "branch_totals": 1}
    assert tables_of(url) == tables_of(reference_url)


def test_its_faults_come_back_as_the_ledger_raised_them(writes: LedgerWriterProcess, url: str) -> None:
    # The key-rotation check, inside the child's transaction: a ConfigError, nothing written.
    with pytest.raises(ConfigError, match="rotated while this process ran"):
        writes.write_batch(GROUP, a_batch(0), key_rotation=3)
    assert tables_of(url)["enrolment_events"] == []
    # The child stays ready after a fault: the next batch is written.
    assert writes.write_batch(GROUP, a_batch(0), key_rotation=0).stored["enrolment"] == 300


def test_a_lost_table_is_an_operational_error_the_retry_policy_knows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'never-migrated.db'}"
    process = LedgerWriterProcess(url)
    try:
        with pytest.raises(sa.exc.OperationalError) as caught:
            process.write_batch(GROUP, a_batch(0))
        assert is_transient(caught.value)  # the same class, with its DBAPI error, as in-process
    finally:
        process.close()


def test_a_dead_writer_process_is_a_permanent_fault_naming_the_restart(writes: LedgerWriterProcess) -> None:
    writes.write_batch(GROUP, a_batch(0))
    assert writes.pid is not None
    os.kill(writes.pid, signal.SIGKILL)
    stopped = r"writer process stopped \(exit code -9\).*restart `recon ingest`"
    with pytest.raises(PermanentFault, match=stopped):
        writes.write_batch(GROUP, a_batch(1000))


def test_it_dies_with_its_parent(tmp_path: Path) -> None:
    """SIGKILL of the parent (as of `recon ingest`) takes the writer with it: no write can land later."""
    url = f"sqlite:///{tmp_path / 'recon.db'}"
    upgrade(url)
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from ingest.writer_process import LedgerWriterProcess
        process = LedgerWriterProcess({url!r})
        process.start()
        print(process.pid, flush=True)
        sys.stdin.readline()
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None and parent.stdin is not None
    child = int(parent.stdout.readline())
    assert alive(child)
    parent.stdin.write("\n")
    parent.stdin.flush()
    assert parent.wait(timeout=30) == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
