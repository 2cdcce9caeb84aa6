"""Fault campaign: `recon ingest` killed with SIGKILL at random points, repeatedly, mid-stream.

Half the kills land at a random moment; the other half are aimed at the window between the ledger's
commit and the Kafka offset commit: the consumer is frozen (SIGSTOP) at random instants until the
ledger, read from outside, holds offsets that Kafka's committed offsets have not caught up with,
and is killed right there. Either way a restarted consumer must finish with exact counts, because
it seeks to the ledger's offsets on assignment (docs/reliability.md).
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from faults import (
    Lab,
    Outcome,
    Proc,
    Run,
    check_checkpoint,
    kafka_committed,
    open_lab,
    run_concurrently,
    run_ingest_scenario,
)


@pytest.fixture
def lab(kafka_bootstrap: str, tmp_path: Path, postgres_url: str) -> Iterator[Lab]:
    with open_lab(kafka_bootstrap, tmp_path, postgres_url) as opened:
        yield opened


def sigkill_scenario(lab: Lab, database: str, *, kills: int = 4, n_valid: int = 10_000) -> Outcome:
    db_url = lab.sqlite_url("kill") if database == "sqlite" else lab.postgres_database()
    return run_ingest_scenario(
        lab,
        f"sigkill x{kills} ({database})",
        db_url=db_url,
        fault=kill_repeatedly(kills, seed=11),
        n_valid=n_valid,
        n_invalid=n_valid // 100,
        stream_seconds=6,
        batch_max_records=20,  # small batches: many commits, many windows to land in
    )


def kill_repeatedly(kills: int, *, seed: int) -> Callable[[Run], None]:
    def fault(run: Run) -> None:
        rng = random.Random(seed)
        admin = KafkaAdminClient(bootstrap_servers=run.bootstrap.split(","), client_id="faults-probe")
        landed = aimed = 0
        try:
            base = run.view.offsets(run.group)  # the ledger's offsets when the current consumer started
            for i in range(kills):
                proc = run.consumers[-1]
                run.wait_stored(run.stored() + rng.randint(300, 1200))
                if i % 2 == 1:
                    aimed += 1
                    _freeze_until_between_commits(run, proc, admin, base, rng)
                else:
                    time.sleep(rng.uniform(0.0, 0.2))
                proc.kill()
                run.faults += 1
                time.sleep(0.3)  # a commit request already on the wire may still land: look after it
                landed += _between_commits(run, admin, base)
                check_checkpoint(run, admin)
                run.retire(proc)
                base = run.view.offsets(run.group)
                run.start_consumer()
                run.fault_ended = time.monotonic()
        finally:
            admin.close()
        run.notes.append(
            f"{kills} kills ({aimed} aimed); {landed} left the ledger ahead of Kafka's committed offsets "
            "(killed between the database commit and the Kafka offset commit)"
        )
        if landed == 0:
            run.problems.append("no kill landed between the database commit and the Kafka offset commit")

    return fault


def _between_commits(run: Run, admin: KafkaAdminClient, base: Mapping[tuple[str, int], int]) -> bool:
    """True when the current consumer committed a batch to the ledger that Kafka has not been told of."""
    ledger = run.view.offsets(run.group)
    kafka = kafka_committed(admin, run.group)
    return any(offset != base.get(tp) and kafka.get(tp, -1) < offset for tp, offset in ledger.items())


def _freeze_until_between_commits(
    run: Run, proc: Proc, admin: KafkaAdminClient, base: Mapping[tuple[str, int], int], rng: random.Random
) -> None:
    """Leave ``proc`` frozen (SIGSTOP) at an instant between a ledger commit and its Kafka commit,
    or running after 80 tries."""
    for _ in range(80):
        time.sleep(rng.uniform(0.0, 0.03))
        proc.signal(signal.SIGSTOP)
        if _between_commits(run, admin, base):
            time.sleep(0.1)  # still so a moment later: no commit request was already on its way
            if _between_commits(run, admin, base):
                return
        proc.signal(signal.SIGCONT)


def test_sigkill_repeatedly_mid_stream_on_sqlite_and_postgresql_loses_and_duplicates_nothing(
    lab: Lab,
) -> None:
    # Both databases at once: each restart waits out the killed member's session (10 s), mostly idle.
    outcomes = run_concurrently(
        lambda: sigkill_scenario(lab, "sqlite"), lambda: sigkill_scenario(lab, "postgresql")
    )
    print(*outcomes, sep="\n")

    for outcome in outcomes:
        assert outcome.ok, outcome.explain()
        assert outcome.faults == 4 and outcome.stored == 10_000 and outcome.dead_lettered == 100
