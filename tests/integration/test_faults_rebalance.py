"""Fault campaign: consumers joining and leaving the group during a stream (rebalances).

Up to three `recon ingest` processes share one consumer group over six partitions on PostgreSQL:
members join (a new process) and leave (SIGTERM: the batch finishes, the member leaves the group) at
staggered points of a 20,000-event stream, so partitions move between two and three consumers
several times while messages flow. Each new owner seeks to the ledger's offsets, so the ledger and
the dead-letter topic must still be exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from faults import Lab, Outcome, Run, open_lab, run_ingest_scenario

# (share of the stream stored, action): group size 1 -> 2 -> 3 -> 2 -> 3 -> 2
MEMBERSHIP = ((0.10, "join"), (0.25, "join"), (0.45, "leave"), (0.60, "join"), (0.75, "leave"))


@pytest.fixture
def lab(kafka_bootstrap: str, tmp_path: Path, postgres_url: str) -> Iterator[Lab]:
    with open_lab(kafka_bootstrap, tmp_path, postgres_url) as opened:
        yield opened


def rebalance_scenario(lab: Lab, *, n_valid: int = 20_000) -> Outcome:
    return run_ingest_scenario(
        lab,
        "rebalances (2 and 3 consumers)",
        db_url=lab.postgres_database(),
        fault=join_and_leave(MEMBERSHIP),
        n_valid=n_valid,
        n_invalid=n_valid // 100,
        stream_seconds=8,
        partitions=6,
        batch_max_records=200,
    )


def join_and_leave(plan: tuple[tuple[float, str], ...]) -> Callable[[Run], None]:
    def fault(run: Run) -> None:
        sizes = [len(run.consumers)]
        for share, action in plan:
            run.wait_stored(int(run.stream.distinct_valid * share))
            if action == "join":
                run.start_consumer()
            else:
                leaving = run.consumers[0]  # the oldest member
                code = leaving.terminate()
                run.retire(leaving)
                if code != 0:
                    run.problems.append(f"a member leaving on SIGTERM exited {code}: {leaving.last_line()}")
            run.faults += 1
            sizes.append(len(run.consumers))
        run.fault_ended = run.consumers[-1].started
        run.notes.append("group size " + " -> ".join(map(str, sizes)))

    return fault


def test_consumers_joining_and_leaving_mid_stream_store_exactly_once(lab: Lab) -> None:
    outcome = rebalance_scenario(lab)
    print(outcome)

    assert outcome.ok, outcome.explain()
    assert outcome.faults == 5 and outcome.stored == 20_000 and outcome.dead_lettered == 200
