"""Benchmark: Ledger.write_batch throughput, 200,000 enrolment events in batches of 5,000.

Usage:
    .venv/bin/python bench/ledger.py [POSTGRES_URL] [--events N] [--batch B] [--runs R]

Always measures SQLite (a fresh file per run, WAL); measures PostgreSQL too when a URL is given or
RECON_TEST_POSTGRES_URL is set (its ledger tables are migrated, then emptied before each run, so
point it at a scratch database). Each batch carries its offsets, as the ingest loop writes them.
Prints the median rows/s of R runs for new events, and for replaying the same batches (every
event a duplicate, the path taken after a crash).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text

from recon.ledger import Batch, Ledger, create_engine_for, redact_url, upgrade
from recon.ledger.samples import enrolment
from recon.ledger.tables import metadata

GROUP = "bench"


def batches(events: int, size: int, partitions: int = 6) -> list[Batch]:
    """Events spread over ``partitions`` like a keyed topic; each batch records its offsets."""
    result = []
    for start in range(0, events, size):
        chunk = [enrolment(n, partition=n % partitions) for n in range(start, min(start + size, events))]
        offsets = {("enrolments", e.lineage.partition): e.lineage.offset + 1 for e in chunk}
        result.append(Batch(enrolments=chunk, offsets=offsets))
    return result


def timed_pass(ledger: Ledger, work: list[Batch]) -> float:
    started = time.perf_counter()
    for batch in work:
        ledger.write_batch(GROUP, batch)
    return time.perf_counter() - started


def measure(name: str, fresh_ledger: Callable[[], Ledger], work: list[Batch], runs: int) -> None:
    rows = sum(len(b.enrolments) for b in work)
    new, replay = [], []
    for _ in range(runs):
        ledger = fresh_ledger()
        try:
            new.append(rows / timed_pass(ledger, work))
            replay.append(rows / timed_pass(ledger, work))
            assert ledger.count_events()["enrolment"] == rows
        finally:
            ledger.engine.dispose()
    print(
        f"{name:<11} new events {statistics.median(new):>9,.0f} rows/s   "
        f"replayed (all duplicates) {statistics.median(replay):>9,.0f} rows/s   "
        f"(median of {runs}; runs: {', '.join(f'{r:,.0f}' for r in new)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("postgres_url", nargs="?", default=os.environ.get("RECON_TEST_POSTGRES_URL"))
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    work = batches(args.events, args.batch)
    print(f"{args.events:,} enrolment events in batches of {args.batch:,}")

    with tempfile.TemporaryDirectory(prefix="recon-bench-") as folder:
        counter = iter(range(1_000_000))

        def fresh_sqlite() -> Ledger:
            url = f"sqlite:///{Path(folder) / f'run{next(counter)}.db'}"
            upgrade(url)
            return Ledger(create_engine_for(url))

        measure("SQLite", fresh_sqlite, work, args.runs)

    if args.postgres_url:
        url = args.postgres_url

        def fresh_postgres() -> Ledger:
            upgrade(url)
            engine = create_engine_for(url)
            with engine.begin() as conn:
                names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
                conn.execute(text(f"TRUNCATE {names}"))
            return Ledger(engine)

        print(f"PostgreSQL at {redact_url(url)}")
        measure("PostgreSQL", fresh_postgres, work, args.runs)
    else:
        print("PostgreSQL skipped: pass a URL or set RECON_TEST_POSTGRES_URL")


if __name__ == "__main__":
    main()
