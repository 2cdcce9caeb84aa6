"""Benchmark: the full figures pass over 1,000,000 synthetic workers in 14 agreements.

Usage:
    .venv/bin/python bench/reconcile_figures.py [--workers N] [--agreements K] [--runs R]

Prints the median wall time of R full passes (``reconcile.domain.figures.compute_figures``); the
target is well under 5 seconds for 1,000,000 workers on a 2-core machine.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import date

from recon.domain.config import DomainConfig
from recon.domain.events import (
    Agreement,
    BranchTotals,
    BudgetSource,
    FunderLevel,
    Lineage,
    Programme,
    RampStep,
)
from reconcile.domain.coverage import WorkerCoverage
from reconcile.domain.dates import month_index
from reconcile.domain.figures import compute_figures, rows_by_agreement
from reconcile.domain.status import OPEN_MONTH, OPEN_ORDINAL, WorkerRow

REGIONS = (
    "72",
    "7271",
    "7206",
    "7203",
    "7604",
    "7210",
    "7208",
    "73",
    "7371",
    "7602",
    "7201",
    "7202",
    "76",
    "7212",
)
AS_OF = date(2025, 11, 20)


def agreements(count: int, per_agreement: int) -> dict[str, Agreement]:
    result = {}
    for i in range(count):
        region = REGIONS[i % len(REGIONS)]
        agreement_id = f"PKS-{region}-2025-{i:02d}"
        result[agreement_id] = Agreement(
            agreement_id=agreement_id,
            version=1,
            funder_name=f"Funder {region}",
            funder_level=FunderLevel.PROVINCE if len(region) == 2 else FunderLevel.REGENCY,
            region_code=region,
            branch_code=f"B{i % 5:03d}",
            budget_source=BudgetSource.APBD,
            programmes=(Programme.JKK, Programme.JKM),
            quota_workers=per_agreement,
            budget_rupiah=per_agreement * 16_800 * 12,
            monthly_premium_rupiah=16_800,
            period_start=date(2025, 1, 1),
            period_end=date(2025, 12, 31),
            ramp=tuple(RampStep(f"2025-{m:02d}", per_agreement * m // 12) for m in range(1, 13)),
            target_population=per_agreement * 2,
            lineage=None,
        )
    return result


def worker_rows(rng: random.Random, count: int, funder_region: str) -> list[WorkerRow]:
    rows: list[WorkerRow] = []
    base = date(2024, 6, 1).toordinal()
    for _ in range(count):
        start = base + rng.randrange(540)  # coverage starts 2024-06 .. 2025-11
        start_day = date.fromordinal(start)
        start_m = month_index(start_day)
        months = max(1, month_index(AS_OF) - start_m + 2)
        mask = rng.getrandbits(months) | ((1 << months) - 1 if rng.random() < 0.7 else 0)
        ended = rng.random() < 0.05
        last = start + rng.randrange(30, 400) if ended else OPEN_ORDINAL
        last_m = month_index(date.fromordinal(last)) if ended else OPEN_MONTH
        home = funder_region if len(funder_region) == 4 else funder_region + "01"
        region = home if rng.random() < 0.9 else "7371"
        terminated = last + 1 if ended else OPEN_ORDINAL
        rows.append((start, last, terminated, start_m, last_m, mask, region))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1_000_000)
    parser.add_argument("--agreements", type=int, default=14)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--from-states", action="store_true", help="also time building the rows from WorkerCoverage states"
    )
    args = parser.parse_args()
    per = args.workers // args.agreements
    rng = random.Random(7)
    known = agreements(args.agreements, per)
    rows = {aid: worker_rows(rng, per, a.region_code) for aid, a in known.items()}
    reports = {
        aid: BranchTotals(
            event_id=f"bt-{aid}",
            occurred_at_ms=0,
            branch_code=a.branch_code,
            agreement_id=aid,
            as_of=date(2025, 10, 31),
            active_workers=per // 2,
            contributions_paid_rupiah=0,
            lineage=Lineage("branch-totals", 0, 0, "0" * 16, 1),
        )
        for aid, a in known.items()
    }
    config = DomainConfig()
    total = sum(len(r) for r in rows.values())
    for label, branch in (("figures", None), ("figures + branch gap at another date", reports)):
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            figures = compute_figures(known, rows, AS_OF, config, branch_totals=branch)
            times.append(time.perf_counter() - t0)
        active = sum(f.active for f in figures.values())
        print(
            f"{label}: {total:,} workers in {len(known)} agreements, median of {args.runs} runs "
            f"{statistics.median(times):.3f} s (min {min(times):.3f} s); {active:,} active"
        )
    if args.from_states:
        states = [
            _state(aid, i, row)
            for aid, agreement_rows in rows.items()
            for i, row in enumerate(agreement_rows)
        ]
        t0 = time.perf_counter()
        rebuilt = rows_by_agreement(states)
        print(f"rows_by_agreement over {len(states):,} coverage states: {time.perf_counter() - t0:.3f} s")
        assert compute_figures(known, rebuilt, AS_OF, config) == compute_figures(known, rows, AS_OF, config)


def _state(agreement_id: str, index: int, row: WorkerRow) -> WorkerCoverage:
    start, last, terminated, start_m, _, mask, region = row
    return WorkerCoverage(
        worker_key=f"{agreement_id}-{index}",
        agreement_id=agreement_id,
        nik_region=region,
        enrolled=True,
        coverage_start=date.fromordinal(start),
        coverage_end=None if last == OPEN_ORDINAL else date.fromordinal(last),
        programmes=(Programme.JKK, Programme.JKM),
        declared_income=1_000_000,
        terminated_on=None if terminated == OPEN_ORDINAL else date.fromordinal(terminated),
        paid_months=frozenset(start_m + i for i in range(mask.bit_length()) if mask >> i & 1),
        facts_from=(1, 0, "bench"),
    )


if __name__ == "__main__":
    main()
