#!/usr/bin/env python3
"""Run the fault campaign and print the reliability report (docs/reliability.md explains each row).

    .venv/bin/python scripts/reliability-report.py            # every scenario (about four minutes)
    .venv/bin/python scripts/reliability-report.py --quick    # a one-minute subset
    .venv/bin/python scripts/reliability-report.py --only broker --only rebalance

The scenarios are the functions the integration tests run (tests/integration/test_faults_*.py, on the
machinery of tests/faults.py), on real brokers and databases: a broker and a PostgreSQL cluster of its
own in a temporary folder, unless RECON_KAFKA_BOOTSTRAP_SERVERS / RECON_TEST_POSTGRES_URL point at
running ones; scenarios that stop the broker or PostgreSQL always start their own.

Exit status: 0 when every scenario lost nothing, duplicated nothing and met its other expectations;
1 otherwise (the table and the lines under it say which and why).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "integration")]

from faults import Lab, Outcome, PgCluster, open_lab, own_broker, own_postgres, run_concurrently  # noqa: E402
from recon.broker import LocalBroker  # noqa: E402


@dataclass
class Campaign:
    """The lab, and what some scenarios need of their own, started on first use."""

    lab: Lab
    stack: contextlib.ExitStack
    _broker: LocalBroker | None = None
    _pg: PgCluster | None = None

    def broker(self) -> LocalBroker:
        if self._broker is None:
            self._broker = self.stack.enter_context(own_broker(self.lab.work / "own-broker"))
        self._broker.start()  # restarts it if a scenario failed with it down
        return self._broker

    def pg_cluster(self) -> PgCluster:
        if self._pg is None:
            self._pg = self.stack.enter_context(own_postgres())
        return self._pg


Scenario = Callable[[Campaign, bool], list[Outcome]]


def _sigkill(c: Campaign, quick: bool) -> list[Outcome]:
    from test_faults_kill import sigkill_scenario

    if quick:
        return [sigkill_scenario(c.lab, "sqlite", kills=2, n_valid=5000)]
    return run_concurrently(
        lambda: sigkill_scenario(c.lab, "sqlite"), lambda: sigkill_scenario(c.lab, "postgresql")
    )


def _broker_restart(c: Campaign, quick: bool) -> list[Outcome]:
    from test_faults_broker import broker_restart_scenario

    return [broker_restart_scenario(c.lab, c.broker())]


def _broker_outage(c: Campaign, quick: bool) -> list[Outcome]:
    from test_faults_broker import broker_outage_scenario

    return [broker_outage_scenario(c.lab, c.broker())]


def _postgres_restart(c: Campaign, quick: bool) -> list[Outcome]:
    from test_faults_database import postgres_restart_scenario

    return [postgres_restart_scenario(c.lab, c.pg_cluster())]


def _writes_refused(c: Campaign, quick: bool) -> list[Outcome]:
    from test_faults_database import postgres_read_only_scenario, sqlite_disk_full_scenario

    if quick:
        return [sqlite_disk_full_scenario(c.lab, n_valid=3000)]
    return [sqlite_disk_full_scenario(c.lab), postgres_read_only_scenario(c.lab)]


def _rebalance(c: Campaign, quick: bool) -> list[Outcome]:
    from test_faults_rebalance import rebalance_scenario

    return [rebalance_scenario(c.lab, n_valid=10_000 if quick else 20_000)]


def _reconcile(c: Campaign, quick: bool) -> list[Outcome]:
    from test_faults_reconcile import reconcile_kill_scenario

    return [reconcile_kill_scenario(c.lab)]


def _order(c: Campaign, quick: bool) -> list[Outcome]:
    from test_faults_order import order_scenario

    return [order_scenario(c.lab)]


# name -> (in --quick?, scenario)
SCENARIOS: dict[str, tuple[bool, Scenario]] = {
    "sigkill": (True, _sigkill),
    "broker-restart": (False, _broker_restart),
    "broker-outage": (False, _broker_outage),
    "postgres-restart": (False, _postgres_restart),
    "writes-refused": (True, _writes_refused),
    "rebalance": (True, _rebalance),
    "reconcile-kill": (False, _reconcile),
    "order": (True, _order),
}

COLUMNS = (
    "scenario",
    "faults",
    "sent",
    "stored",
    "dead-lettered",
    "lost",
    "duplicated",
    "recover s",
    "result",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a one-minute subset, smaller volumes")
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help=", ".join(SCENARIOS))
    args = parser.parse_args()
    chosen = [
        name
        for name, (in_quick, _) in SCENARIOS.items()
        if (not args.only or any(o in name for o in args.only)) and (in_quick or not args.quick)
    ]
    if not chosen:
        parser.error(f"no scenario matches {args.only}: choose among {', '.join(SCENARIOS)}")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # clients of a stopped broker complain loudly
    started = time.monotonic()
    outcomes: list[Outcome] = []
    with campaign() as c:
        for name in chosen:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            try:
                outcomes += SCENARIOS[name][1](c, args.quick)
            except Exception as exc:  # a scenario that could not finish is a failed row, not a crash
                outcomes.append(Outcome(name, 0, -1, -1, -1, -1, -1, None, (_one_line(exc),)))
        print(render(outcomes, time.monotonic() - started), flush=True)
    return 0 if all(o.ok for o in outcomes) else 1


def _one_line(exc: Exception) -> str:
    """The error's first line, and its last (a failed process's own last words) when they differ."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [""]
    return f"{type(exc).__name__}: " + (lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}")


@contextlib.contextmanager
def campaign() -> Iterator[Campaign]:
    work = Path(tempfile.mkdtemp(prefix="recon-reliability-"))
    try:
        with contextlib.ExitStack() as stack:
            bootstrap = os.environ.get("RECON_KAFKA_BOOTSTRAP_SERVERS")
            if not bootstrap:
                bootstrap = stack.enter_context(own_broker(work / "kafka")).bootstrap
            postgres = os.environ.get("RECON_TEST_POSTGRES_URL")
            if not postgres:
                postgres = stack.enter_context(own_postgres()).url
            lab = stack.enter_context(open_lab(bootstrap, work, postgres))
            yield Campaign(lab, stack)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def render(outcomes: list[Outcome], seconds: float) -> str:
    def n(value: int) -> str:
        return "-" if value < 0 else f"{value:,}"  # -1: the scenario could not finish, nothing measured

    rows = [
        (
            o.scenario,
            str(o.faults),
            n(o.sent),
            n(o.stored),
            n(o.dead_lettered),
            n(o.lost),
            n(o.duplicated),
            "-" if o.recover_seconds is None else f"{o.recover_seconds:.1f}",
            "ok" if o.ok else "FAIL",
        )
        for o in outcomes
    ]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]

    def line(cells: tuple[str, ...]) -> str:
        return (
            "| "
            + " | ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + " |"
        )

    out = [
        line(COLUMNS),
        "|" + "|".join(("-" * (w + 1) + ":") if i else "-" * (w + 2) for i, w in enumerate(widths)) + "|",
    ]
    out += [line(r) for r in rows]
    done = [o for o in outcomes if o.sent >= 0]
    totals = (
        f"{len(outcomes)} scenarios ({len(outcomes) - len(done)} could not finish), "
        f"{sum(o.faults for o in outcomes)} faults injected, {sum(o.sent for o in done):,} messages sent, "
        f"{sum(o.stored for o in done):,} stored, {sum(o.dead_lettered for o in done):,} dead-lettered, "
        f"lost {sum(o.lost for o in done)}, duplicated {sum(o.duplicated for o in done)}; {seconds:.0f} s"
    )
    out += ["", totals, ""]
    for o in outcomes:
        for note in o.notes:
            out.append(f"- {o.scenario}: {note}")
        for problem in o.problems:
            out.append(f"- {o.scenario}: PROBLEM: {problem}")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
