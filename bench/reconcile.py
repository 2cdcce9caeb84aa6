"""Benchmark: a full reconciliation pass over 1,000,000 workers in 14 agreements, the same at national scale
(20,000,000 workers in 552 agreements on PostgreSQL), and the event-to-alert latency under a steady stream
through the real services on a real broker.

Usage:
    .venv/bin/python bench/reconcile.py [--workers 1000000] [--agreements 14] [--runs 3]
                                        [--latency-seconds 60] [--database-url URL] [--parts full,latency]
                                        [--stream-rate 500[,1000,2000]] [--trigger-interval 0.5]
                                        [--reconcile-interval 0.5] [--latency-preload 0] [--profile] [--json]
    .venv/bin/python bench/reconcile.py --national [--national-workers 1000000,5000000,20000000]
                                        [--database-url URL] [--runs 3] [--national-fill-only|-no-fill]

The issue's goals: a cold pass under 5 s (1M workers, SQLite and PostgreSQL), a national pass under 60 s
and 2 GiB, and an event-to-alert p99 under 2 s at 2,000 events/s. --json prints one JSON object with the
run's figures on stdout (cold_pass_s, p99_s, national_workers, national_pass_s, national_peak_rss_mib,
per store, per rate and per size), the report going to stderr.

1. Full pass, on SQLite (a temporary file) and on PostgreSQL when --database-url names a scratch database
   (its ledger tables are migrated and EMPTIED first). Setup, not timed: migrations, the agreements
   (Ledger.upsert_agreements), N folded coverages written straight into worker_coverage
   (reconcile.store.coverage_to_row, Core executemany in chunks): active, at risk, lapsed, terminated,
   ended, pending and not yet enrolled workers, with paid months, NIK regions sometimes outside the
   funder's, and a few thousand workers funded by a province and a regency at once (multiply_funded
   filled as the fold keeps it); claims through ReconcileStore.save_fold, branch activity, and branch
   totals through Ledger.write_batch. Then, in a child process of its own per store (so its peak RSS is
   the reconciler's alone): one untimed pass whose alert states are stored as a previous leader's; then
   R timed passes, each on a fresh ReconcileService, of what a reconciler does when it takes the lease:
   _load_state() (alert states, the row counts grouped by the database, the multiply funded workers'
   rows) and evaluate(now) (figures, rules, alert evolution). Prints the median of R for load, evaluate
   and their sum, the cyclic GC's share, the distinct rows kept and the peak RSS. When the median full
   pass misses 5 s (or with --profile): where the time goes, by timers around the parts and by cProfile.
   --national: the same pass over 552 agreements (38 provinces + 514 regencies/cities, real province
   codes from recon.domain.regions) on PostgreSQL, filled by binary COPY (then VACUUM ANALYZE), sizes
   log-normal, provinces also funding 1.5% of their regencies' workers (double funding), 1 claim per 500
   coverages, 2 branch reports per agreement; one fill and R timed passes per --national-workers size
   (against the 60 s goal). --national-fill-only fills and times nothing; --national-no-fill times what
   such a run left (one size per database).
2. Event-to-alert latency: a LocalBroker on free ports in a temporary home (or the broker named by
   RECON_KAFKA_BOOTSTRAP_SERVERS), fresh topics, a fresh SQLite ledger, and `recon ingest` and
   `recon reconcile` as subprocesses. K small agreements (quota 1, empty ramp, this year) each get one
   worker, then one big agreement takes a steady background stream (ENROLLED and CONTRIBUTION_PAID,
   --stream-rate events/s, its quota never reached; a comma-separated list runs once per rate). Every
   --trigger-interval seconds a trigger: the second worker of the next small agreement, so over_quota
   FIRES for it. Latency = when the bench's consumer of the alerts topic receives that agreement's FIRING
   alert - when the broker acknowledged the trigger. Prints count, median, p90, p99 and max, and, from
   the ledger's timestamps, the stages. --latency-preload N first writes part 1's N coverages (and
   agreements, claims, branch reports) into that ledger, before the services start: every reconcile step
   then evaluates N workers, as it would in production at that size.
Nothing printed holds a NIK (service logs are only shown on failure, with 16-digit numbers masked).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import random
import re
import resource
import signal
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
from datetime import date, timedelta
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path, and this file is called reconcile.py: it
# would shadow the service's `reconcile` package. The bench imports nothing from its own folder.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

from recon.domain.events import (
    Agreement,
    BranchTotals,
    BudgetSource,
    ClaimType,
    FunderLevel,
    Lineage,
    Programme,
    RampStep,
)
from reconcile.domain import WorkerCoverage
from reconcile.domain.dates import local_midnight_ms, month_index
from reconcile.domain.dates import month_first_day as first_day

REPO = Path(__file__).resolve().parents[1]
NIK_KEY = "bench-only-nik-hashing-key-32bytes"
PREMIUM = 16_800  # JKK 1% of Rp 1,000,000 + JKM Rp 6,800
GOAL_FULL_PASS = 5.0
GOAL_P99 = 2.0
CHUNK = 20_000
NIK_LIKE = re.compile(r"(?<!\d)\d{16}(?!\d)")
RESULT: dict[str, Any] = {}  # this run's figures, printed as one JSON object with --json


# --- the agreements of the full pass --------------------------------------------------------------------


@dataclass(frozen=True)
class Funder:
    region: str
    level: FunderLevel
    name: str
    branch: str
    weight: int  # share of the workers
    source: BudgetSource = BudgetSource.APBD
    quota_factor: float = 1.10  # quota = workers x this
    ramp_top: float = 0.80  # the ramp's last target, as a share of the quota
    budget_months: int = 12


_P, _R, _C = FunderLevel.PROVINCE, FunderLevel.REGENCY, FunderLevel.CITY
FUNDERS = (
    Funder("72", _P, "Pemerintah Provinsi Sulawesi Tengah", "PALU", 16, BudgetSource.APBD_P),
    Funder("7271", _C, "Pemerintah Kota Palu", "PALU", 10),
    Funder("7206", _R, "Pemerintah Kabupaten Morowali", "MOROWALI", 8, quota_factor=0.75),  # over quota
    Funder("7604", _R, "Pemerintah Kabupaten Polewali Mandar", "POLEWALI", 7),
    Funder("7201", _R, "Pemerintah Kabupaten Banggai", "LUWUK", 7),
    Funder("7202", _R, "Pemerintah Kabupaten Poso", "POSO", 6, ramp_top=1.0),  # behind its plan
    Funder("7203", _R, "Pemerintah Kabupaten Donggala", "PALU", 6),
    Funder("7208", _R, "Pemerintah Kabupaten Parigi Moutong", "PARIGI", 7),
    Funder("7210", _R, "Pemerintah Kabupaten Sigi", "PALU", 5, budget_months=6),  # budget overrun
    Funder("7204", _R, "Pemerintah Kabupaten Toli-Toli", "TOLITOLI", 5),
    Funder("7212", _R, "Pemerintah Kabupaten Morowali Utara", "MOROWALI", 5),
    Funder("76", _P, "Pemerintah Provinsi Sulawesi Barat", "MAMUJU", 8),
    Funder("7602", _R, "Pemerintah Kabupaten Mamuju", "MAMUJU", 5),
    Funder("7605", _R, "Pemerintah Kabupaten Majene", "MAMUJU", 5),
)
EXTRA_REGIONS = ("7205", "7207", "7209", "7211", "7601", "7603", "7606")
OUTSIDERS = ("7371", "7302", "7471")  # Makassar, Bulukumba, Kendari: NIKs issued outside the funder's region


def funders(count: int) -> list[Funder]:
    extra = [
        Funder(EXTRA_REGIONS[i % len(EXTRA_REGIONS)], _R, f"Pemerintah Kabupaten {i}", "PALU", 5)
        for i in range(max(0, count - len(FUNDERS)))
    ]
    return [*FUNDERS, *extra][:count]


@dataclass(frozen=True)
class Calendar:
    """Today in the branches' zone (WITA), and the month indexes the statuses turn on."""

    now_ms: int
    as_of: date
    cur_m: int
    due_m: int
    period_start: date
    period_end: date

    @classmethod
    def today(cls, utc_offset_minutes: int, due_day: int) -> Calendar:
        from reconcile.domain.dates import last_due_month, local_date, month_index

        now_ms = time.time_ns() // 1_000_000
        as_of = local_date(now_ms, utc_offset_minutes)
        return cls(
            now_ms=now_ms,
            as_of=as_of,
            cur_m=month_index(as_of),
            due_m=last_due_month(as_of, due_day),
            period_start=date(as_of.year, 1, 1),
            period_end=date(as_of.year, 12, 31),
        )


@dataclass(frozen=True)
class Plan:
    """Who gets how many coverage rows; ``double`` rows of a province reuse its regencies' workers."""

    funders: list[Funder]
    agreement_ids: list[str]
    counts: list[int]
    double: dict[int, int]  # index of a province agreement -> its rows that reuse a regency's worker

    @classmethod
    def make(cls, workers: int, agreements: int, year: int) -> Plan:
        chosen = funders(agreements)
        weights = [f.weight for f in chosen]
        counts = [workers * w // sum(weights) for w in weights]
        counts[0] += workers - sum(counts)
        ids = [f"PKS-{f.region}-{year}-{i + 1:02d}" for i, f in enumerate(chosen)]
        double = {}
        provinces = [i for i, f in enumerate(chosen) if f.level is FunderLevel.PROVINCE]
        for i in provinces:
            inside = sum(
                c for j, c in enumerate(counts) if j != i and chosen[j].region[:2] == chosen[i].region
            )
            double[i] = min(inside // 10, counts[i], workers // 300 // max(1, len(provinces)))
        return cls(chosen, ids, counts, double)


def agreement_objects(plan: Plan, cal: Calendar) -> list[Agreement]:
    result = []
    year = cal.as_of.year
    for f, aid, count in zip(plan.funders, plan.agreement_ids, plan.counts, strict=True):
        quota = max(1, round(count * f.quota_factor))
        top = quota * f.ramp_top
        ramp = tuple(
            RampStep(f"{year}-{m:02d}", max(1, round(top * share)))
            for m, share in ((1, 0.3), (4, 0.55), (7, 0.8), (10, 1.0))
        )
        result.append(
            Agreement(
                agreement_id=aid,
                version=1,
                funder_name=f.name,
                funder_level=f.level,
                region_code=f.region,
                branch_code=f.branch,
                budget_source=f.source,
                programmes=(Programme.JKK, Programme.JKM),
                quota_workers=quota,
                budget_rupiah=quota * PREMIUM * f.budget_months,
                monthly_premium_rupiah=PREMIUM,
                period_start=cal.period_start,
                period_end=cal.period_end,
                ramp=ramp,
                target_population=count * 2,
                lineage=None,
            )
        )
    return result


# --- the coverages --------------------------------------------------------------------------------------


STATUS_SHARES = (  # (status intended at as_of, cumulative share); the rest is ACTIVE
    ("PENDING", 0.010),
    ("UNENROLLED", 0.015),
    ("TERMINATED", 0.065),
    ("ENDED", 0.085),
    ("LAPSED", 0.165),
    ("AT_RISK", 0.285),
)


def coverage(
    rng: random.Random, key: str, agreement_id: str, region: str, event_id: str, cal: Calendar
) -> Any:
    """One worker's folded coverage under one agreement, with a status drawn from STATUS_SHARES."""
    roll = rng.random()
    status = next((s for s, share in STATUS_SHARES if roll < share), "ACTIVE")
    enrolled, coverage_end, terminated_on = True, None, None
    as_ord = cal.as_of.toordinal()
    if status == "PENDING":
        s_m = cal.cur_m + 1
        start = first_day(s_m) + timedelta(days=rng.randrange(10))
        paid = {s_m} if rng.random() < 0.3 else set()
    else:
        s_m = cal.cur_m - min(int(rng.expovariate(1 / 7)), 22)  # most coverages are a few months old
        days = cal.as_of.day if s_m == cal.cur_m else 28
        start = first_day(s_m) + timedelta(days=rng.randrange(days))
        months = list(range(s_m, cal.due_m + 1))
        if status == "UNENROLLED":  # payments seen, the ENROLLED event not yet
            enrolled = False
            paid = set(months[: rng.randint(0, len(months))])
        elif status == "TERMINATED":
            terminated_on = date.fromordinal(rng.randint(min(start.toordinal() + 30, as_ord), as_ord))
            paid = set(range(s_m, month_index(terminated_on)))
        elif status == "ENDED":
            coverage_end = date.fromordinal(
                rng.randint(start.toordinal(), max(start.toordinal(), as_ord - 1))
            )
            paid = set(range(s_m, month_index(coverage_end) + 1))
        elif status in ("LAPSED", "AT_RISK"):
            trailing = rng.randint(3, max(3, len(months))) if status == "LAPSED" else rng.choice((1, 1, 2))
            paid = set(months[:-trailing])
        else:
            paid = set(months)
            if rng.random() < 0.2:  # paid ahead
                paid.update(range(cal.due_m + 1, cal.due_m + 1 + rng.randint(1, 2)))
        if len(months) > 3 and rng.random() < 0.05:  # a gap paid later, or never
            paid.discard(rng.choice(months[:-2]))
        if coverage_end is None and rng.random() < 0.25:
            coverage_end = max(cal.period_end, start)  # the PKS's term
    occurred = local_midnight_ms(start) + rng.randrange(8 * 3_600_000, 16 * 3_600_000)
    return WorkerCoverage(
        worker_key=key,
        agreement_id=agreement_id,
        nik_region=region,
        enrolled=enrolled,
        coverage_start=start,
        coverage_end=coverage_end,
        programmes=(Programme.JKK, Programme.JKM),
        declared_income=rng.choices((1_000_000, 1_500_000, 2_000_000), weights=(85, 10, 5))[0],
        terminated_on=terminated_on,
        paid_months=frozenset(paid),
        facts_from=(int(enrolled), occurred, event_id),
    )


def nik_region(rng: random.Random, funder: Funder, regencies: dict[str, list[str]]) -> str:
    if rng.random() < 0.05:
        return rng.choice(OUTSIDERS)
    if len(funder.region) == 2:
        return rng.choice(regencies.get(funder.region) or [funder.region + "01"])
    if rng.random() < 0.03:  # issued in a neighbouring regency of the same province
        return rng.choice(regencies.get(funder.region[:2]) or [funder.region])
    return funder.region


@dataclass
class Setup:
    """What the setup wrote, to print and to check."""

    rows: int = 0
    workers: int = 0
    double_funded: int = 0
    claims: int = 0
    branch_reports: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def coverage_rows(
    plan: Plan,
    cal: Calendar,
    seed: int,
    claim_sample: list[Any],
    regencies: dict[str, list[str]] | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Chunks of worker_coverage rows: regencies and cities first, then the provinces, whose first
    ``plan.double`` rows reuse workers of their regencies (double funding). ``regencies``: per
    province, the regency/city codes NIKs are drawn from (default: recon.domain.regions)."""
    from recon.domain.regions import REGENCIES
    from reconcile.store import coverage_to_row

    rng = random.Random(seed)
    if regencies is None:
        regencies = {}
        for code in REGENCIES:
            regencies.setdefault(code[:2], []).append(code)
    total = sum(plan.counts)
    every = max(1, total // max(1, total // 500))  # about one claim per 500 coverages
    # Per province with double funding: how many of its regencies' workers it funds too, and which.
    target = {plan.funders[i].region: n for i, n in plan.double.items()}
    regency_rows: Counter[str] = Counter()
    for f, c in zip(plan.funders, plan.counts, strict=True):
        if len(f.region) == 4:
            regency_rows[f.region[:2]] += c
    stride = {p: max(1, regency_rows[p] // max(1, n)) for p, n in target.items()}
    pools: dict[str, list[str]] = {p: [] for p in target}
    seen_in: Counter[str] = Counter()
    order = sorted(range(len(plan.funders)), key=lambda i: plan.funders[i].level is FunderLevel.PROVINCE)
    chunk: list[dict[str, Any]] = []
    seen = 0
    for i in order:
        funder, aid = plan.funders[i], plan.agreement_ids[i]
        reuse = pools.get(funder.region, []) if funder.level is FunderLevel.PROVINCE else []
        province = funder.region[:2] if funder.level is not FunderLevel.PROVINCE else None
        for n in range(plan.counts[i]):
            key = reuse[n] if n < len(reuse) else f"{rng.getrandbits(128):032x}"
            if province in pools:
                if seen_in[province] % stride[province] == 0 and len(pools[province]) < target[province]:
                    pools[province].append(key)
                seen_in[province] += 1
            region = nik_region(rng, funder, regencies)
            cov = coverage(rng, key, aid, region, f"{funder.branch}-{i:02d}-{n:08d}", cal)
            if seen % every == every // 2:
                claim_sample.append((key, aid, funder.branch, cov.coverage_start))
            seen += 1
            chunk.append(coverage_to_row(cov, cal.now_ms))
            if len(chunk) >= CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def claim_states(sample: list[Any], cal: Calendar, seed: int) -> list[Any]:
    """Claims for a sample of the workers: mostly inside their cover, some with an incident before it."""
    from reconcile.domain import ClaimState
    from reconcile.domain.dates import DAY_MS, local_date, local_midnight_ms

    rng = random.Random(seed + 1)
    stage = {ClaimType.FILED: 0, ClaimType.APPROVED: 1, ClaimType.REJECTED: 1, ClaimType.PAID: 2}
    as_ord = cal.as_of.toordinal()
    out = []
    for j, (key, aid, branch, start) in enumerate(sample):
        jkm = rng.random() < 0.35
        before = 60 if rng.random() < 0.05 else 0  # an incident before the cover began
        lo = min(start.toordinal() - before, as_ord)
        incident = date.fromordinal(rng.randint(lo, max(lo, as_ord - 1)))
        outcome = rng.choices(list(stage), weights=(30, 15, 10, 45))[0]
        claimed = 42_000_000 if jkm else rng.randrange(2_000_000, 60_000_000, 50_000)
        paid = None
        if outcome is ClaimType.PAID:
            paid = claimed if not jkm or rng.random() > 0.02 else 40_000_000
        filed_ms = min(local_midnight_ms(incident) + rng.randrange(1, 20) * DAY_MS, cal.now_ms - DAY_MS)
        last_ms = min(
            filed_ms + (rng.randrange(1, 30) * DAY_MS if outcome is not ClaimType.FILED else 0), cal.now_ms
        )
        claim_id = f"KLM-{branch}-{j:06d}"
        filed_id, last_id = f"clm-{claim_id}-filed", f"clm-{claim_id}-{outcome.lower()}"
        out.append(
            ClaimState(
                claim_id=claim_id,
                worker_key=key,
                agreement_id=aid if rng.random() > 0.05 else None,
                programme=Programme.JKM if jkm else Programme.JKK,
                incident_date=incident,
                amount_claimed=claimed,
                outcome=outcome,
                amount_paid=paid,
                filed_on=local_date(filed_ms, 480),
                first_event_id=filed_id,
                facts_from=(last_ms, last_id),
                outcome_from=(stage[outcome], last_ms, last_id),
                paid_from=(int(paid is not None), last_ms, last_id),
                filed_from=(0, filed_ms, filed_id),
                first_from=(filed_ms, filed_id),
            )
        )
    return out


def branch_reports(plan: Plan, cal: Calendar, seed: int) -> list[BranchTotals]:
    """Two reports per agreement: at the end of last month and yesterday, close to the ledger's count."""
    from reconcile.domain.dates import month_first_day

    rng = random.Random(seed + 2)
    out = []
    last_month_end = month_first_day(cal.cur_m) - timedelta(days=1)
    for i, (f, aid, count) in enumerate(zip(plan.funders, plan.agreement_ids, plan.counts, strict=True)):
        for k, as_of in enumerate((last_month_end, cal.as_of - timedelta(days=1))):
            active = round(count * 0.72 * rng.uniform(0.97, 1.03))
            out.append(
                BranchTotals(
                    event_id=f"bt-{aid}-{as_of:%Y%m%d}",
                    occurred_at_ms=cal.now_ms - (2 - k) * 86_400_000,
                    branch_code=f.branch,
                    agreement_id=aid,
                    as_of=as_of,
                    active_workers=active,
                    contributions_paid_rupiah=active * PREMIUM * 6,
                    lineage=Lineage("branch-totals", 0, 2 * i + k, "0" * 16, 1),
                )
            )
    return out


def setup_store(
    url: str,
    plan: Plan,
    cal: Calendar,
    seed: int,
    scratch_postgres: bool,
    *,
    copy: bool = False,
    regencies: dict[str, list[str]] | None = None,
) -> Setup:
    """Fill the ledger as the fold would have: agreements, coverages (Core executemany, or with
    ``copy`` PostgreSQL's binary COPY, then VACUUM ANALYZE as autovacuum would), claims, branch
    activity and reports."""
    from sqlalchemy import func, insert, select, text

    from recon.ledger import Batch, Ledger, create_engine_for, upgrade
    from recon.ledger import tables as t
    from reconcile.store import ReconcileStore

    started = time.perf_counter()
    upgrade(url)
    engine = create_engine_for(url)
    try:
        if scratch_postgres:
            with engine.begin() as conn:
                conn.execute(text("TRUNCATE " + ", ".join(f'"{x.name}"' for x in t.metadata.sorted_tables)))
        ledger = Ledger(engine)
        ledger.upsert_agreements(agreement_objects(plan, cal))
        sample: list[Any] = []
        done = Setup()
        chunks = coverage_rows(plan, cal, seed, sample, regencies)
        if copy:
            done.rows = copy_coverages(engine, chunks)
        else:
            for chunk in chunks:
                with engine.begin() as conn:
                    conn.execute(insert(t.worker_coverage), chunk)
                done.rows += len(chunk)
                if done.rows % 200_000 < CHUNK:
                    log(f"  {done.rows:,} coverages written")
        with engine.begin() as conn:  # what each fold keeps beside the coverages it writes
            conn.execute(
                text(
                    "INSERT INTO multiply_funded (worker_key, agreements) SELECT worker_key, count(*) "
                    "FROM worker_coverage GROUP BY worker_key HAVING count(*) > 1"
                )
            )
        claims = claim_states(sample, cal, seed)
        store = ReconcileStore(engine, holder="bench-setup")
        assert store.acquire_lease(cal.now_ms)
        branches = {f.branch: cal.now_ms - random.Random(seed).randrange(7_200_000) for f in plan.funders}
        store.save_fold(
            batch_ids=(), coverages=(), claims=claims, branch_activity=branches, now_ms=cal.now_ms
        )
        with engine.begin() as conn:  # hand the lease back, so the measured services may take it
            conn.execute(t.leases.delete())
        reports = branch_reports(plan, cal, seed)
        ledger.write_batch("bench-setup", Batch(branch_totals=reports))
        with engine.connect() as conn:
            wc = t.worker_coverage
            done.workers = conn.execute(select(func.count(func.distinct(wc.c.worker_key)))).scalar_one()
            rows = conn.execute(select(func.count()).select_from(wc)).scalar_one()
        assert rows == done.rows == sum(plan.counts), (rows, done.rows)
        done.double_funded = done.rows - done.workers
        done.claims, done.branch_reports = len(claims), len(reports)
    finally:
        engine.dispose()
    done.seconds = time.perf_counter() - started
    return done


def copy_coverages(engine: Any, chunks: Iterator[list[dict[str, Any]]]) -> int:
    """Binary COPY of the rows into worker_coverage, one transaction per million; then VACUUM ANALYZE."""
    from recon.ledger import tables as t
    from recon.ledger._pgcopy import _pg_types

    columns = [c.name for c in t.worker_coverage.columns]
    statement = f"COPY worker_coverage ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    types = _pg_types(t.worker_coverage, columns)
    rows = 0
    started = time.perf_counter()
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        pending = True
        while pending:
            pending = False
            with driver.cursor() as cursor, cursor.copy(statement) as copy:
                copy.set_types(types)
                for chunk in chunks:
                    for row in chunk:
                        copy.write_row([row[c] for c in columns])
                    rows += len(chunk)
                    if rows % 1_000_000 < CHUNK:
                        pending = True
                        break
            driver.commit()
            if pending or rows % 1_000_000:
                log(f"  {rows:,} coverages copied ({rows / (time.perf_counter() - started):,.0f} rows/s)")
        driver.autocommit = True
        try:
            driver.execute("VACUUM ANALYZE worker_coverage")
        finally:
            driver.autocommit = False
    return rows


# --- the timed pass, in a child process -----------------------------------------------------------------


class GcClock:
    """Seconds spent in the cyclic garbage collector while installed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections: Counter[int] = Counter()
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections[info["generation"]] += 1

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self)


def child_main() -> None:
    """``--child``: run the job read from stdin, print its result as one JSON line."""
    job = json.loads(sys.stdin.read())
    result = profile_child(job) if job["mode"] == "profile" else full_pass_child(job)
    result["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result), flush=True)


def make_service(engine: Any, holder: str) -> Any:
    from recon.clock import SystemClock
    from recon.ledger import Ledger
    from recon.settings import load_settings
    from reconcile.domain import ThresholdPolicy
    from reconcile.service import ReconcileService
    from reconcile.store import ReconcileStore

    settings = load_settings(
        overrides={"database_url": str(engine.url.render_as_string(hide_password=False))}
    )
    return ReconcileService(
        settings=settings,
        store=ReconcileStore(engine, holder=holder),
        ledger=Ledger(engine),
        relay=None,
        encode_alert=None,
        clock=SystemClock(),
        policy=ThresholdPolicy(),
    )


def one_pass(service: Any) -> tuple[float, float, int, Any]:
    started = time.perf_counter()
    n = service._load_state(time.time_ns() // 1_000_000)
    loaded = time.perf_counter()
    evaluation = service.evaluate(time.time_ns() // 1_000_000)
    return loaded - started, time.perf_counter() - loaded, n, evaluation


def full_pass_child(job: dict[str, Any]) -> dict[str, Any]:
    from recon.ledger import create_engine_for
    from reconcile.domain import AlertStatus

    engine = create_engine_for(job["url"])
    # Not timed: the previous leader's pass, whose alert states a successor finds in the ledger.
    service = make_service(engine, "bench-previous-leader")
    warm_load, warm_eval, _, evaluation = one_pass(service)
    now = time.time_ns() // 1_000_000
    assert service._store.acquire_lease(now)
    service._store.save_alerts(list(evaluation.alerts.values()), [], now)
    del service, evaluation
    gc.collect()
    loads, evals, gcs, changes = [], [], [], []
    summary: dict[str, Any] = {}
    for r in range(job["runs"]):
        service = make_service(engine, f"bench-successor-{r}")
        with GcClock() as gc_clock:
            load, evaluate, n, evaluation = one_pass(service)
        loads.append(load)
        evals.append(evaluate)
        gcs.append(gc_clock.seconds)
        changes.append(len(evaluation.changes))
        figures = evaluation.figures.values()
        summary = {
            "coverages": n,
            "cached_rows": service._counts.workers(),
            "distinct_rows": service._counts.distinct(),
            "multi": len(service._funding),
            "counts": {
                k: sum(getattr(f, k) for f in figures)
                for k in ("enrolled", "pending", "active", "at_risk", "lapsed", "terminated", "ended")
            },
            "firing": Counter(
                str(s.rule) for s in evaluation.alerts.values() if s.status is AlertStatus.FIRING
            ),
        }
        del service, evaluation
        gc.collect()
    engine.dispose()
    return {
        "warm": [warm_load, warm_eval],
        "loads": loads,
        "evals": evals,
        "gc": gcs,
        "changes": changes,
        "summary": summary,
    }


# (label, indent, owner, attribute): the parts of one pass, timed one call each; owner "store", "ledger",
# "cache" are the service's, "service" the reconcile.service module's imported names.
PARTS = (
    ("_load_state", 0, None, None),
    ("ReconcileStore.alert_states (JSON decode of each state)", 1, "store", "alert_states"),
    ("RowCounts.load(ReconcileStore.row_counts()) (GROUP BY rows)", 1, "counts", "load"),
    ("rows of the multiply funded (multiply_funded join)", 1, "svc", "_put_funding"),
    ("evaluate", 0, None, None),
    ("Ledger.agreements (load and evaluate)", 1, "ledger", "agreements"),
    ("ReconcileStore.claims (JSON decode of each claim)", 1, "store", "claims"),
    ("ReconcileStore.latest_branch_totals (load and evaluate)", 1, "store", "latest_branch_totals"),
    ("compute_figures (weighted rows)", 1, "service", "compute_figures"),
    ("ReconcileStore.coverages_of_workers (claims' workers)", 1, "store", "coverages_of_workers"),
    ("ReconcileStore.coverage_backlog (unknown agreements)", 1, "store", "coverage_backlog"),
    ("ReconcileStore.branch_activity", 1, "store", "branch_activity"),
    ("funding_windows_from_rows (double funding)", 1, "service", "funding_windows_from_rows"),
    ("evaluate (all rules)", 1, "service", "evaluate"),
    ("evolve (alert lifecycle)", 1, "service", "evolve"),
)


def timed_parts(service: Any) -> tuple[dict[str, float], float, float, GcClock]:
    """One pass with a timer around each part of PARTS (each called once or twice per pass)."""
    import reconcile.service as module

    owners = {
        "store": service._store,
        "ledger": service._ledger,
        "counts": service._counts,
        "service": module,
        "svc": service,
    }
    seconds: Counter[str] = Counter()
    undo: list[Callable[[], None]] = []
    for label, _, owner_name, attribute in PARTS:
        if owner_name is None:
            continue
        owner = owners[owner_name]
        original = getattr(owner, attribute)

        def timed(*args: Any, _f: Callable[..., Any] = original, _l: str = label, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return _f(*args, **kwargs)
            finally:
                seconds[_l] += time.perf_counter() - started

        setattr(owner, attribute, timed)
        undo.append(
            (lambda o=owner, a=attribute, f=original: setattr(o, a, f))
            if owner is module
            else (lambda o=owner, a=attribute: delattr(o, a))
        )
    try:
        with GcClock() as gc_clock:
            load, evaluate, _, _ = one_pass(service)
    finally:
        for step in undo:
            step()
    return dict(seconds), load, evaluate, gc_clock


def load_splits(engine: Any) -> dict[str, float]:
    """Where the load's time goes: its two queries through the driver alone, then through the store."""
    from reconcile.store import _MULTI_ROWS, _ROW_COUNTS, ReconcileStore

    out: dict[str, float] = {}
    floor = date.today()
    store = ReconcileStore(engine, holder="bench-splits")
    for label, query, params in (
        (
            "GROUP BY compacted rows, driver alone",
            _ROW_COUNTS,
            {"f": floor.toordinal(), "below": floor.toordinal() - 1},
        ),
        ("rows of the multiply funded, driver alone", _MULTI_ROWS, {}),
    ):
        started = time.perf_counter()
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql" and query is _ROW_COUNTS:
                conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
            result = conn.execute(query, params)
            while result.fetchmany(50_000):
                pass
        out[label] = time.perf_counter() - started
    started = time.perf_counter()
    groups = sum(1 for _ in store.row_counts(floor))
    out[f"ReconcileStore.row_counts ({groups:,} groups to tuples)"] = time.perf_counter() - started
    return out


def profile_child(job: dict[str, Any]) -> dict[str, Any]:
    from recon.ledger import create_engine_for

    engine = create_engine_for(job["url"])
    one_pass(make_service(engine, "bench-warm"))  # page cache and code warm, as in the timed runs
    gc.collect()
    parts, load, evaluate, gc_clock = timed_parts(make_service(engine, "bench-parts"))
    gc.collect()
    splits = load_splits(engine)
    gc.collect()
    service = make_service(engine, "bench-cprofile")
    profiler = cProfile.Profile()
    profiler.enable()
    p_load, p_eval, _, _ = one_pass(service)
    profiler.disable()
    del service
    text = io.StringIO()
    for order in ("cumulative", "tottime"):
        text.write(f"\n--- top 20 by {order} ---\n")
        pstats.Stats(profiler, stream=text).strip_dirs().sort_stats(order).print_stats(20)
    engine.dispose()
    return {
        "parts": parts,
        "load": load,
        "evaluate": evaluate,
        "gc": gc_clock.seconds,
        "gc_collections": dict(gc_clock.collections),
        "splits": splits,
        "cprofile": [p_load, p_eval],
        "cprofile_text": text.getvalue(),
    }


def run_child(job: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child"],
        input=json.dumps(job),
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"the {job['mode']} child failed (exit {done.returncode}); its error is above")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- part 1: the report -----------------------------------------------------------------------------------


def full_pass(args: argparse.Namespace, folder: Path) -> None:
    from recon.ledger import redact_url
    from recon.settings import Settings

    defaults = Settings()
    cal = Calendar.today(defaults.utc_offset_minutes, defaults.contribution_due_day)
    plan = Plan.make(args.workers, args.agreements, cal.as_of.year)
    stores = [("SQLite", f"sqlite:///{folder / 'full-pass.db'}", False)]
    if args.database_url:
        stores.append(("PostgreSQL", args.database_url, True))
    print(
        f"\n== 1. full reconciliation pass: {sum(plan.counts):,} coverages in {len(plan.agreement_ids)} "
        f"agreements, as of {cal.as_of} (WITA), {args.runs} timed run(s) per store"
    )
    for name, url, scratch in stores:
        where = redact_url(url) if scratch else "a temporary file"
        log(f"{name}: setting up {sum(plan.counts):,} coverages in {where}")
        done = setup_store(url, plan, cal, args.seed, scratch)
        result = run_child({"mode": "full", "url": url, "runs": args.runs})
        report_full(name, where, done, result, args.runs)
        full = statistics.median(a + b for a, b in zip(result["loads"], result["evals"], strict=True))
        RESULT.setdefault("cold_pass_s_by_store", {})[name.lower()] = round(full, 3)
        RESULT.setdefault("peak_rss_mib_by_store", {})[name.lower()] = round(result["peak_rss_kib"] / 1024, 1)
        RESULT.setdefault("distinct_rows", result["summary"]["distinct_rows"])
        RESULT["cold_pass_s"] = max(RESULT["cold_pass_s_by_store"].values())
        RESULT["workers"] = sum(plan.counts)
        if args.profile or full > GOAL_FULL_PASS:
            report_profile(name, run_child({"mode": "profile", "url": url}))
        if not scratch:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{folder / 'full-pass.db'}{suffix}").unlink(missing_ok=True)


def report_full(
    name: str, where: str, done: Setup, result: dict[str, Any], runs: int, goal: float = GOAL_FULL_PASS
) -> None:
    loads, evals = result["loads"], result["evals"]
    fulls = [a + b for a, b in zip(loads, evals, strict=True)]
    s = result["summary"]
    counts = s["counts"]
    print(f"\n{name} ({where}); setup {done.seconds:.0f} s, not timed:")
    print(
        f"  ledger: {done.rows:,} coverages of {done.workers:,} workers ({done.double_funded:,} workers "
        f"funded twice), {done.claims:,} claims, {done.branch_reports} branch reports"
    )
    print(
        f"  figures: {counts['enrolled']:,} enrolled = {counts['active']:,} active ({counts['at_risk']:,} "
        f"at risk) + {counts['lapsed']:,} lapsed + {counts['terminated']:,} terminated + {counts['ended']:,} "
        f"ended + {counts['pending']:,} pending; {done.rows - s['cached_rows']:,} not yet enrolled; "
        f"{s['multi']:,} multiply funded; in memory: {s['distinct_rows']:,} distinct compact rows"
    )
    firing = ", ".join(f"{rule} {n}" for rule, n in sorted(s["firing"].items())) or "none"
    print(f"  alerts firing: {firing}; changes per timed run: {result['changes']} (0: same as stored)")
    warm_load, warm_eval = result["warm"]
    print(f"  untimed first pass (previous leader): load {warm_load:.2f} s, evaluate {warm_eval:.2f} s")
    head = f"  {'':<34} {'median':>8}   each run"
    print(head)
    for label, values in (
        ("_load_state()", loads),
        ("evaluate(now)", evals),
        ("full pass (load + evaluate)", fulls),
        ("  of which cyclic GC", result["gc"]),
    ):
        each = "  ".join(f"{v:6.2f}" for v in values)
        print(f"  {label:<34} {statistics.median(values):6.2f} s   {each}")
    full = statistics.median(fulls)
    verdict = "met" if full < goal else "MISSED"
    print(f"  goal: full pass under {goal:.0f} s: {verdict} ({full:.2f} s, median of {runs})")
    print(f"  peak RSS of the measuring process: {result['peak_rss_kib'] / 1024:,.0f} MiB")


def report_profile(name: str, result: dict[str, Any]) -> None:
    full = result["load"] + result["evaluate"]
    print(f"\nwhere the time goes, {name}, one pass with timers around the parts (no profiler): {full:.2f} s")
    totals = {"_load_state": result["load"], "evaluate": result["evaluate"]}
    shown = 0.0
    for label, indent, _, _ in PARTS:
        seconds = totals.get(label, result["parts"].get(label, 0.0))
        shown += seconds if indent else 0.0
        print(f"  {'  ' * indent + label:<60} {seconds:6.2f} s  {seconds / full:4.0%}")
    rest = full - shown
    print(f"  {'  the rest (retry wrappers, glue)':<60} {rest:6.2f} s  {rest / full:4.0%}")
    runs = ", ".join(f"gen{g} x{n}" for g, n in sorted(result["gc_collections"].items()))
    label = f"  cyclic GC pauses, inside the parts above ({runs})"
    print(f"  {label:<60} {result['gc']:6.2f} s  {result['gc'] / full:4.0%}")
    print("  the load's queries:")
    for label, seconds in result["splits"].items():
        print(f"    {label:<58} {seconds:6.2f} s")
    p_load, p_eval = result["cprofile"]
    print(
        f"\ncProfile of one pass, {name} (load {p_load:.2f} s + evaluate {p_eval:.2f} s under the profiler, "
        "which inflates pure-Python code most):"
    )
    print(result["cprofile_text"])


# --- national scale: 552 agreements on PostgreSQL, filled by COPY ---------------------------------------

# Regencies + cities per province (Kemendagri, 2025): 514 in all. Sulawesi Tengah's and Sulawesi
# Barat's codes are recon.domain.regions'; elsewhere codes pp01.. (regencies) and pp71.. (cities).
REGENCY_COUNTS = {
    "11": 23, "12": 33, "13": 19, "14": 12, "15": 11, "16": 17, "17": 10, "18": 15, "19": 7, "21": 7,
    "31": 6, "32": 27, "33": 35, "34": 5, "35": 38, "36": 8, "51": 9, "52": 10, "53": 22, "61": 14,
    "62": 14, "63": 13, "64": 10, "65": 5, "71": 15, "72": 13, "73": 24, "74": 17, "75": 6, "76": 6,
    "81": 11, "82": 10, "91": 9, "92": 7, "93": 4, "94": 8, "95": 8, "96": 6,
}  # fmt: skip


def national_regions() -> dict[str, list[str]]:
    """Per province code (all 38 of recon.domain.regions), its regency and city codes."""
    from recon.domain.regions import PROVINCES, REGENCIES

    assert set(REGENCY_COUNTS) == set(PROVINCES) and sum(REGENCY_COUNTS.values()) == 514
    out: dict[str, list[str]] = {}
    for province, n in REGENCY_COUNTS.items():
        listed = sorted(c for c in REGENCIES if c.startswith(province))
        if len(listed) >= n:
            out[province] = listed[:n]
            continue
        cities = max(1, n // 6)
        out[province] = [f"{province}{i:02d}" for i in range(1, n - cities + 1)]
        out[province] += [f"{province}{71 + i:02d}" for i in range(cities)]
    return out


def national_plan(workers: int, cal: Calendar, seed: int) -> tuple[Plan, dict[str, list[str]]]:
    """552 agreements (38 provinces + 514 regencies/cities) sharing ``workers`` coverage rows: sizes
    drawn log-normally, provinces funding a fifth of their region's workers, each province also
    funding 1.5% of its regencies' workers (double funding); a few over quota, behind plan or over
    budget."""
    from recon.domain.regions import PROVINCES

    rng = random.Random(seed + 3)
    regions = national_regions()
    chosen: list[Funder] = []
    for province, codes in regions.items():
        for code in codes:
            level = _C if int(code[2:]) >= 71 else _R
            kind = "Kota" if level is _C else "Kabupaten"
            roll = rng.random()
            chosen.append(
                Funder(
                    code,
                    level,
                    f"Pemerintah {kind} {code}",
                    f"BR{code}",
                    max(1, round(rng.lognormvariate(0, 0.8) * 100)),
                    quota_factor=0.8 if roll < 0.05 else 1.1,
                    ramp_top=1.0 if roll > 0.95 else 0.8,
                    budget_months=6 if 0.5 < roll < 0.53 else 12,
                )
            )
        inside = sum(f.weight for f in chosen if f.region[:2] == province)
        chosen.append(
            Funder(province, _P, f"Pemerintah Provinsi {PROVINCES[province]}", f"BR{province}", inside // 4)
        )
    weights = [f.weight for f in chosen]
    counts = [workers * w // sum(weights) for w in weights]
    counts[0] += workers - sum(counts)
    ids = [f"PKS-{f.region}-{cal.as_of.year}-01" for f in chosen]
    double = {}
    for i, f in enumerate(chosen):
        if f.level is FunderLevel.PROVINCE:
            inside_rows = sum(
                c for g, c in zip(chosen, counts, strict=True) if g.region[:2] == f.region and g is not f
            )
            double[i] = min(counts[i], inside_rows * 15 // 1000)
    return Plan(chosen, ids, counts, double), regions


def national(args: argparse.Namespace, folder: Path, stack: contextlib.ExitStack) -> None:
    from recon.ledger import redact_url
    from recon.settings import Settings

    url = args.database_url or start_postgres(stack)
    defaults = Settings()
    cal = Calendar.today(defaults.utc_offset_minutes, defaults.contribution_due_day)
    sizes = [int(n) for n in args.national_workers.split(",")]
    print(
        f"\n== 3. national scale: PostgreSQL ({redact_url(url)}), 552 agreements (38 provinces + 514 "
        f"regencies/cities), filled by COPY; sizes {', '.join(f'{n:,}' for n in sizes)}; "
        f"{args.runs} timed run(s) each"
    )
    RESULT.setdefault("national", [])
    for workers in sizes:
        plan, regions = national_plan(workers, cal, args.seed)
        if args.national_no_fill:
            done = ledger_setup(url, plan)
        else:
            log(f"national: setting up {workers:,} coverages")
            done = setup_store(url, plan, cal, args.seed, True, copy=True, regencies=regions)
            log(f"national: setup {done.seconds:.0f} s; timing the pass")
            if args.national_fill_only:
                print(f"  filled {done.rows:,} coverages of {done.workers:,} workers in {done.seconds:.0f} s")
                continue
        result = run_child({"mode": "full", "url": url, "runs": args.runs})
        report_full(f"national, {workers:,} workers", redact_url(url), done, result, args.runs, goal=60.0)
        fulls = [a + b for a, b in zip(result["loads"], result["evals"], strict=True)]
        entry = {
            "workers": workers,
            "agreements": len(plan.agreement_ids),
            "pass_s": round(statistics.median(fulls), 3),
            "load_s": round(statistics.median(result["loads"]), 3),
            "evaluate_s": round(statistics.median(result["evals"]), 3),
            "runs": [round(x, 3) for x in fulls],
            "peak_rss_mib": round(result["peak_rss_kib"] / 1024, 1),
            "distinct_rows": result["summary"]["distinct_rows"],
            "multiply_funded": result["summary"]["multi"],
            "setup_s": round(done.seconds, 1),
        }
        RESULT["national"].append(entry)
        RESULT.update(
            national_workers=workers,
            national_pass_s=entry["pass_s"],
            national_peak_rss_mib=entry["peak_rss_mib"],
        )
        if args.profile:
            report_profile(f"national, {workers:,} workers", run_child({"mode": "profile", "url": url}))
    if len(sizes) > 1:
        print("\n  growth (workers: median pass, peak RSS, distinct compact rows in memory):")
        for e in RESULT["national"]:
            rss, rows = e["peak_rss_mib"], e["distinct_rows"]
            print(f"    {e['workers']:>12,}: {e['pass_s']:6.1f} s  {rss:6,.0f} MiB  {rows:,}")


def ledger_setup(url: str, plan: Plan) -> Setup:
    """--national-no-fill: what an earlier --national run of this size left in the ledger."""
    from sqlalchemy import text

    from recon.ledger import create_engine_for, upgrade

    upgrade(url)  # a ledger filled by an older bench gets the newer migrations (0006 fills multiply_funded)
    engine = create_engine_for(url)
    try:
        with engine.connect() as conn:
            done = Setup()
            done.rows = conn.execute(text("SELECT count(*) FROM worker_coverage")).scalar_one()
            done.workers = conn.execute(
                text("SELECT count(DISTINCT worker_key) FROM worker_coverage")
            ).scalar_one()
            done.claims = conn.execute(text("SELECT count(*) FROM claim_states")).scalar_one()
            done.branch_reports = conn.execute(text("SELECT count(*) FROM branch_totals")).scalar_one()
    finally:
        engine.dispose()
    if done.rows != sum(plan.counts):
        sys.exit(f"--national-no-fill: the ledger holds {done.rows:,} coverages, not {sum(plan.counts):,}")
    done.double_funded = done.rows - done.workers
    return done


def start_postgres(stack: contextlib.ExitStack) -> str:
    """A PostgreSQL of our own (scripts/postgres.sh) in a temporary folder on a free port."""
    import shutil

    script = REPO / "scripts" / "postgres.sh"
    # Not under our temporary folder: postgres.sh chowns its folder to `postgres`, who must reach it.
    pg_folder = tempfile.mkdtemp(prefix="recon-bench-pg-")
    stack.callback(shutil.rmtree, pg_folder, True)
    from recon.broker import free_ports

    env = {**os.environ, "RECON_PG_PORT": str(free_ports(1)[0])}

    def sh(*argv: str) -> str:
        done = subprocess.run([str(script), *argv], capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            sys.exit(f"scripts/postgres.sh {' '.join(argv)} failed:\n{done.stderr}")
        return done.stdout.strip()

    stack.callback(sh, "stop", pg_folder)
    return sh("start", pg_folder).splitlines()[-1]


# --- part 2: event-to-alert latency ---------------------------------------------------------------------


def start_broker(stack: contextlib.ExitStack, folder: Path) -> str:
    from recon.broker import LocalBroker, free_ports

    port, controller_port = free_ports(2)
    broker = LocalBroker(home=folder / "kafka", port=port, controller_port=controller_port)
    stack.callback(broker.stop)
    return broker.start()


def nik(region4: str, index: int) -> str:
    """A valid NIK, different for every index: serial, then birth day and month, then district."""
    serial = index % 9999 + 1
    day, month = (index // 9999) % 28 + 1, (index // (9999 * 28)) % 12 + 1
    district = index // (9999 * 28 * 12) % 99 + 1
    female = (index // 7) % 2
    return f"{region4}{district:02d}{day + 40 * female:02d}{month:02d}88{serial:04d}"


@dataclass
class Stream:
    """The latency run's shared state: what was sent, acknowledged and received, and when (epoch s)."""

    triggers: dict[str, tuple[str, float]] = field(default_factory=dict)  # agreement -> (event id, ack)
    arrivals: dict[str, float] = field(default_factory=dict)  # agreement -> FIRING alert received
    other_alerts: Counter[str] = field(default_factory=Counter)
    background_sent: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)


class Events:
    """Enrolment records for the latency run, encoded with the current schema."""

    def __init__(self, catalogue: Any, cal: Calendar) -> None:
        self.catalogue = catalogue
        self.month_start = date(cal.as_of.year, cal.as_of.month, 1)
        self.month = f"{cal.as_of:%Y-%m}"
        self.seq = 0

    def enrolment(
        self, nik_: str, agreement_id: str, event_type: str = "ENROLLED"
    ) -> tuple[bytes, bytes, str]:
        self.seq += 1
        event_id = f"bench-{uuid.uuid4().hex[:8]}-{self.seq:09d}"
        paid = [self.month] if event_type == "CONTRIBUTION_PAID" else []
        record = {
            "event_id": event_id,
            "event_type": event_type,
            "occurred_at": time.time_ns() // 1_000_000,
            "branch_code": "PALU" if agreement_id.startswith("PKS-7271") else "MOROWALI",
            "agreement_id": agreement_id,
            "nik": nik_,
            "programmes": ["JKK", "JKM"],
            "declared_income": 1_000_000,
            "coverage_start": self.month_start,
            "coverage_end": None,
            "paid_months": paid,
            "amount": PREMIUM * len(paid),
            "termination_reason": None,
            "source_system": "SMILE 2.1",
        }
        return nik_.encode(), self.catalogue.encode("enrolment", record), event_id


def agreement_record(agreement_id: str, quota: int, region: str, cal: Calendar, name: str) -> dict[str, Any]:
    return {
        "agreement_id": agreement_id,
        "version": 1,
        "funder_name": name,
        "funder_level": "CITY" if region == "7271" else "REGENCY",
        "region_code": region,
        "branch_code": "PALU" if region == "7271" else "MOROWALI",
        "budget_source": "APBD",
        "programmes": ["JKK", "JKM"],
        "quota_workers": quota,
        "budget_rupiah": quota * PREMIUM * 12 * 2,
        "monthly_premium_rupiah": PREMIUM,
        "period_start": cal.period_start,
        "period_end": cal.period_end,
        "ramp": [],
        "target_population": None,
    }


def service_env(overrides: dict[str, Any]) -> dict[str, str]:
    """The environment of a `recon` subprocess: none of ours RECON_*, then the bench's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECON_")}
    env.update({f"RECON_{k.upper()}": str(v) for k, v in overrides.items()})
    return env


class Services:
    """`recon ingest` and `recon reconcile` as subprocesses, their logs in files; stopped with SIGTERM."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        for command in ("ingest", "reconcile"):
            path = folder / f"{command}.log"
            with path.open("wb") as out:
                self.procs[command] = subprocess.Popen(
                    [sys.executable, "-m", "recon", command], env=env, cwd=REPO, stdout=out, stderr=out
                )
            self.logs[command] = path

    def check(self) -> None:
        for command, proc in self.procs.items():
            if proc.poll() is not None:
                self.fail(f"`recon {command}` exited with {proc.returncode}")

    def fail(self, message: str) -> None:
        for command, path in self.logs.items():
            tail = path.read_text(errors="replace").splitlines()[-15:]
            log(f"--- last lines of `recon {command}` (16-digit numbers masked) ---")
            for line in tail:
                log(NIK_LIKE.sub("<16 digits>", line)[:400])
        sys.exit(message)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def wait_for(predicate: Callable[[], bool], what: str, services: Services, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        services.check()
        if time.monotonic() > deadline:
            services.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def scalar(engine: Any, sql: str) -> Any:
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def consume_alerts(settings: Any, catalogue: Any, state: Stream, ready: threading.Event) -> None:
    """Record when each small agreement's over_quota FIRING alert arrives (epoch seconds)."""
    from kafka import TopicPartition

    from recon.kafka.clients import make_consumer

    consumer = make_consumer(settings, group_id=None, client_id="recon-bench-alerts")
    try:
        tps = [
            TopicPartition(settings.topic_alerts, p)
            for p in sorted(consumer.partitions_for_topic(settings.topic_alerts) or [])
        ]
        consumer.assign(tps)
        consumer.seek_to_end(*tps)
        for tp in tps:
            consumer.position(tp)  # resolve the end offsets now, before any trigger is sent
        ready.set()
        while not state.stop.is_set():
            for records in consumer.poll(timeout_ms=100).values():
                arrived = time.time()
                for record in records:
                    alert = catalogue.decode(record.value, "alert").record
                    aid = alert["agreement_id"]
                    if alert["rule"] == "over_quota" and alert["state"] == "FIRING" and aid in state.triggers:
                        state.arrivals.setdefault(aid, arrived)
                    else:
                        state.other_alerts[f"{alert['rule']}:{alert['state']}"] += 1
    except Exception as exc:  # the main thread reports it
        state.errors.append(f"alerts consumer: {exc!r}")
        ready.set()
    finally:
        consumer.close()


def background(settings: Any, events: Events, big_id: str, rate: float, state: Stream) -> None:
    """ENROLLED for new workers and CONTRIBUTION_PAID for enrolled ones, ``rate`` events/s, paced."""
    from recon.kafka.clients import make_producer

    producer = make_producer(settings, client_id="recon-bench-stream")
    rng = random.Random(500)
    enrolled = 0
    started = time.perf_counter()
    try:
        while not state.stop.is_set():
            due = int((time.perf_counter() - started) * rate)
            while state.background_sent < due:
                if enrolled < 10 or rng.random() < 0.4:
                    key, value, _ = events.enrolment(nik("7271", enrolled), big_id)
                    enrolled += 1
                else:
                    key, value, _ = events.enrolment(
                        nik("7271", rng.randrange(enrolled)), big_id, "CONTRIBUTION_PAID"
                    )
                producer.send(settings.topic_enrolments, key=key, value=value)
                state.background_sent += 1
            time.sleep(0.01)
        producer.flush()
    except Exception as exc:
        state.errors.append(f"background stream: {exc!r}")
    finally:
        producer.close(timeout=10)


def latency(args: argparse.Namespace, folder: Path) -> None:
    from recon.avro import SchemaCatalogue
    from recon.kafka.clients import make_producer
    from recon.kafka.topics import ensure_topics
    from recon.ledger import create_engine_for, upgrade
    from recon.settings import load_settings

    with contextlib.ExitStack() as stack:
        external = os.environ.get("RECON_KAFKA_BOOTSTRAP_SERVERS")
        log("latency: starting the broker" if not external else f"latency: broker {external}")
        bootstrap = external or start_broker(stack, folder)
        prefix = f"bench{uuid.uuid4().hex[:6]}-"
        url = f"sqlite:///{folder / 'latency.db'}"
        topics = ("enrolments", "claims", "agreements", "branch-totals", "coverage-alerts", "dead-letters")
        fields_ = ("enrolments", "claims", "agreements", "branch_totals", "alerts", "dead_letters")
        overrides: dict[str, Any] = {
            "kafka_bootstrap_servers": bootstrap,
            **{f"topic_{f}": prefix + t for f, t in zip(fields_, topics, strict=True)},
            "database_url": url,
            "nik_hash_key": NIK_KEY,
            "consumer_group": f"{prefix}ingest",
            "reconcile_interval_seconds": args.reconcile_interval,
            "ingest_http_port": 0,
            "reconcile_http_port": 0,
        }
        settings = load_settings(overrides=overrides)
        created = ensure_topics(bootstrap, settings)
        if external:
            stack.callback(delete_topics, bootstrap, created)
        upgrade(url)
        engine = create_engine_for(url)
        stack.callback(engine.dispose)
        catalogue = SchemaCatalogue.load(settings.schemas_dir)
        cal = Calendar.today(settings.utc_offset_minutes, settings.contribution_due_day)
        preloaded = 0
        if args.latency_preload:
            log(f"latency: preloading {args.latency_preload:,} coverages into the ledger")
            plan = Plan.make(args.latency_preload, args.agreements, cal.as_of.year)
            setup_store(url, plan, cal, args.seed, False)
            preloaded = len(plan.agreement_ids)
        events = Events(catalogue, cal)
        k = int(args.latency_seconds / args.trigger_interval) + 10
        small = [f"PKS-7206-{cal.as_of.year}-P{i:03d}" for i in range(k)]
        big_id = f"PKS-7271-{cal.as_of.year}-001"
        big_quota = max(45_778, int(args.stream_rate * (args.latency_seconds + 120)))

        services = Services(service_env(overrides), folder)
        stack.callback(services.stop)
        producer = make_producer(settings, client_id="recon-bench-setup", linger_ms=0)
        stack.callback(producer.close, 10)
        # Each small agreement's first worker before the agreements: at its first evaluation an
        # agreement has 1 active of 1 planned, so below_plan never fires for it.
        for i, aid in enumerate(small):
            key, value, _ = events.enrolment(nik("7206", 2 * i), aid)
            producer.send(settings.topic_enrolments, key=key, value=value)
        producer.flush()
        firsts = "SELECT count(*) FROM worker_coverage WHERE agreement_id LIKE 'PKS-7206-%-P%'"
        # A preloaded ledger: the reconciler first loads every coverage (its _become_leader).
        wait_for(lambda: scalar(engine, firsts) >= k, "the first workers folded", services, 300)
        records = [agreement_record(aid, 1, "7206", cal, "Pemerintah Kabupaten Morowali") for aid in small]
        records.append(agreement_record(big_id, big_quota, "7271", cal, "Pemerintah Kota Palu"))
        for record in records:
            producer.send(
                settings.topic_agreements,
                key=record["agreement_id"].encode(),
                value=catalogue.encode("agreement", record),
            )
        producer.flush()
        wait_for(
            lambda: scalar(engine, "SELECT count(*) FROM agreements") == k + 1 + preloaded,
            "the agreements stored",
            services,
        )
        unfolded = "SELECT count(*) FROM ingest_batches WHERE folded_at_ms IS NULL"
        wait_for(lambda: scalar(engine, unfolded) == 0, "the agreements folded", services, 300)
        time.sleep(2.0)  # the evaluation after that fold, and its alerts (below_plan of the big agreement)

        state = Stream()
        ready = threading.Event()
        threads = [
            threading.Thread(target=consume_alerts, args=(settings, catalogue, state, ready), daemon=True),
            threading.Thread(
                target=background, args=(settings, events, big_id, args.stream_rate, state), daemon=True
            ),
        ]
        threads[0].start()
        ready.wait(60)
        threads[1].start()
        log(f"latency: {k} small agreements ready; stream at {args.stream_rate:.0f} events/s, warming up 5 s")
        time.sleep(5.0)
        stream_started = time.perf_counter() - 5.0
        trigger_producer = make_producer(settings, client_id="recon-bench-triggers", linger_ms=0)
        stack.callback(trigger_producer.close, 10)
        started = time.perf_counter()
        for i, aid in enumerate(small):
            slot = started + i * args.trigger_interval
            if slot - started >= args.latency_seconds:
                break
            time.sleep(max(0.0, slot - time.perf_counter()))
            key, value, event_id = events.enrolment(nik("7206", 2 * i + 1), aid)
            trigger_producer.send(settings.topic_enrolments, key=key, value=value).get(timeout=30)
            state.triggers[aid] = (event_id, time.time())
            services.check()
            if state.errors:
                services.fail("; ".join(state.errors))
        sent_by = time.perf_counter()
        deadline = time.monotonic() + 30.0
        while len(state.arrivals) < len(state.triggers) and time.monotonic() < deadline and not state.errors:
            time.sleep(0.1)
        stream_seconds = time.perf_counter() - stream_started
        state.stop.set()
        for thread in threads:
            thread.join(timeout=30)
        stored = scalar(engine, "SELECT count(*) FROM enrolment_events")
        backlog = scalar(engine, unfolded)
        dead = scalar(engine, "SELECT count(*) FROM outbox WHERE kind = 'dead_letter'")
        services.stop()
        stages = ledger_stages(engine, state)
        ledger = {
            "stored": stored,
            "unfolded": backlog,
            "dead": dead,
            "k": k,
            "preloaded": args.latency_preload,
        }
        report_latency(args, state, stages, sent_by - started, stream_seconds, ledger)


def ledger_stages(engine: Any, state: Stream) -> dict[str, list[float]]:
    """Per trigger, the seconds between the ledger's timestamps on the way to its alert."""
    from sqlalchemy import bindparam, text

    from reconcile.domain import fingerprint

    by_event = {event_id: aid for aid, (event_id, _) in state.triggers.items()}
    by_fp = {fingerprint("over_quota", f"agreement:{aid}"): aid for aid in state.triggers}
    batches = text(
        "SELECT e.event_id, b.committed_at_ms, b.folded_at_ms FROM enrolment_events e "
        "JOIN ingest_batches b ON b.id = e.batch_id WHERE e.event_id IN :ids"
    ).bindparams(bindparam("ids", expanding=True))
    outbox = text(
        "SELECT key, created_at_ms, sent_at_ms FROM outbox WHERE kind = 'alert' AND key IN :keys ORDER BY id"
    ).bindparams(bindparam("keys", expanding=True))
    committed: dict[str, tuple[int, int | None]] = {}
    alerts: dict[str, tuple[int, int | None]] = {}
    with engine.connect() as conn:
        for event_id, c_ms, f_ms in conn.execute(batches, {"ids": list(by_event)}):
            committed[by_event[event_id]] = (c_ms, f_ms)
        for key, c_ms, s_ms in conn.execute(outbox, {"keys": [fp.encode() for fp in by_fp]}):
            alerts.setdefault(by_fp[bytes(key).decode()], (c_ms, s_ms))
    stages: dict[str, list[float]] = {name: [] for name, _ in STAGES}
    for aid, (_, ack) in state.triggers.items():
        if aid not in committed or aid not in alerts or aid not in state.arrivals:
            continue
        (c_ms, f_ms), (o_ms, s_ms) = committed[aid], alerts[aid]
        if f_ms is None or s_ms is None:
            continue
        marks = [ack, c_ms / 1000, f_ms / 1000, o_ms / 1000, s_ms / 1000, state.arrivals[aid]]
        for (name, _), a, b in zip(STAGES, marks, marks[1:], strict=False):
            stages[name].append(b - a)
    return stages


STAGES = (
    ("trigger acked -> ingest batch committed", "ingest: poll, decode, validate, write_batch"),
    ("-> folded (ingest_batches.folded_at_ms)", "reconcile: step wait, lease, read, fold"),
    ("-> evaluation started (outbox.created_at_ms)", "save_fold, cache, multi-funded count"),
    ("-> alert marked sent (outbox.sent_at_ms)", "evaluate, save_alerts, relay publish + ack"),
    ("-> received by the bench's consumer", "broker to consumer"),
)


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report_latency(
    args: argparse.Namespace,
    state: Stream,
    stages: dict[str, list[float]],
    trigger_seconds: float,
    stream_seconds: float,
    ledger: dict[str, int],
) -> None:
    latencies = sorted(
        state.arrivals[a] - ack for a, (_, ack) in state.triggers.items() if a in state.arrivals
    )
    missing = len(state.triggers) - len(latencies)
    which = "the default" if args.reconcile_interval == 0.5 else "not the default 0.5"
    print(
        "\n== 2. event-to-alert latency, SQLite ledger, `recon ingest` + `recon reconcile`, real broker\n"
        f"  RECON_RECONCILE_INTERVAL_SECONDS={args.reconcile_interval:g} ({which}); "
        f"background stream {state.background_sent / stream_seconds:,.0f} events/s "
        f"(asked {args.stream_rate:g}; ENROLLED and CONTRIBUTION_PAID, one big agreement); "
        f"{len(state.triggers)} triggers over {trigger_seconds:.1f} s, one per {args.trigger_interval:g} s, "
        f"each the 2nd worker of one of {ledger['k']} quota-1 agreements"
    )
    sent = state.background_sent + len(state.triggers) + ledger["k"]
    if ledger["preloaded"]:
        print(f"  ledger preloaded with {ledger['preloaded']:,} coverages (as part 1's) before the start")
    print(
        f"  ledger at the end: {ledger['stored']:,} enrolment events stored of {sent:,} sent, "
        f"{ledger['dead']} dead letters, {ledger['unfolded']} batches not yet folded"
    )
    other = ", ".join(f"{name} {n}" for name, n in sorted(state.other_alerts.items())) or "none"
    print(f"  other alert records seen meanwhile: {other}")
    if state.errors:
        print(f"  ERRORS: {'; '.join(state.errors)}")
    print(
        f"  alerts received {len(latencies)} of {len(state.triggers)} ({missing} missing after a 30 s wait)"
    )
    if not latencies:
        return
    RESULT.setdefault("latency", {})[f"{args.stream_rate:g}"] = {
        "median_s": round(statistics.median(latencies), 3),
        "p90_s": round(pct(latencies, 90), 3),
        "p99_s": round(pct(latencies, 99), 3),
        "max_s": round(latencies[-1], 3),
        "received": len(latencies),
        "due": len(state.triggers),
        "background_events_per_s": round(state.background_sent / stream_seconds),
    }
    RESULT["p99_s"] = RESULT["latency"][f"{args.stream_rate:g}"]["p99_s"]
    print(
        f"  latency: median {statistics.median(latencies):.3f} s   p90 {pct(latencies, 90):.3f} s   "
        f"p99 {pct(latencies, 99):.3f} s   max {latencies[-1]:.3f} s   min {latencies[0]:.3f} s"
    )
    verdict = "met" if pct(latencies, 99) < GOAL_P99 and not missing else "MISSED"
    print(f"  goal: p99 under {GOAL_P99:.0f} s: {verdict}")
    print("  stages, from the ledger's timestamps (ms resolution; per trigger):")
    print(f"    {'stage':<46} {'median':>8} {'p90':>8} {'p99':>8}   what runs")
    for name, what in STAGES:
        values = stages[name]
        if values:
            print(
                f"    {name:<46} {statistics.median(values):7.3f}s {pct(values, 90):7.3f}s "
                f"{pct(values, 99):7.3f}s   {what}"
            )


def delete_topics(bootstrap: str, names: list[str]) -> None:
    from kafka import KafkaAdminClient

    from recon.kafka.clients import client_config
    from recon.settings import load_settings

    options = {**client_config(load_settings()), "bootstrap_servers": bootstrap.split(",")}
    admin = KafkaAdminClient(**options, client_id="recon-bench")
    try:
        admin.delete_topics(names, raise_errors=False)
    finally:
        admin.close()


# --- main -----------------------------------------------------------------------------------------------


def machine(database_url: str | None) -> None:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    versions = []
    for dist in ("SQLAlchemy", "psycopg", "kafka-python", "crc32c", "pydantic"):
        try:
            versions.append(f"{dist} {importlib_metadata.version(dist)}")
        except importlib_metadata.PackageNotFoundError:
            versions.append(f"{dist} absent")
    import sqlite3

    from recon.broker import kafka_version

    print(f"machine: {os.cpu_count()} cores, {model}, {platform.system()} {platform.release()}")
    print(
        f"versions: Python {platform.python_version()}, {', '.join(versions)}, "
        f"SQLite {sqlite3.sqlite_version}, Kafka {kafka_version()} (pom)"
    )
    if database_url:
        from sqlalchemy import text

        from recon.ledger import create_engine_for

        engine = create_engine_for(database_url)
        try:
            with engine.connect() as conn:
                print(f"PostgreSQL {conn.execute(text('SHOW server_version')).scalar_one()}")
        finally:
            engine.dispose()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=1_000_000, help="coverage rows (default 1,000,000)")
    parser.add_argument("--agreements", type=int, default=14)
    parser.add_argument("--runs", type=int, default=3, help="timed full passes per store (default 3)")
    parser.add_argument("--latency-seconds", type=float, default=60.0, help="how long triggers are sent")
    parser.add_argument(
        "--database-url", help="also a PostgreSQL scratch database (its ledger tables are EMPTIED)"
    )
    parser.add_argument("--parts", default="full,latency", help="comma-separated: full, latency")
    parser.add_argument(
        "--stream-rate",
        default="500",
        help="background events/s (default 500); comma-separated rates run the latency part once per rate",
    )
    parser.add_argument(
        "--national",
        action="store_true",
        help="only the national scale: 552 agreements on PostgreSQL filled by COPY (--database-url, "
        "EMPTIED, or a server of our own), a full pass and its peak RSS per --national-workers size",
    )
    parser.add_argument(
        "--national-workers",
        default="20000000",
        help="coverage rows, comma-separated sizes (default 20,000,000)",
    )
    parser.add_argument(
        "--national-fill-only",
        action="store_true",
        help="fill the ledger for --national and time nothing (then time it with --national-no-fill)",
    )
    parser.add_argument(
        "--national-no-fill",
        action="store_true",
        help="time the pass over what an earlier --national run of the same size left (one size)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object with the figures on stdout (the report: stderr)",
    )
    parser.add_argument("--trigger-interval", type=float, default=0.5, help="seconds between triggers")
    parser.add_argument(
        "--reconcile-interval", type=float, default=0.5, help="RECON_RECONCILE_INTERVAL_SECONDS (default 0.5)"
    )
    parser.add_argument(
        "--latency-preload", type=int, default=0, help="coverages written into the latency run's ledger first"
    )
    parser.add_argument("--profile", action="store_true", help="profile the full pass even when it meets 5 s")
    parser.add_argument("--seed", type=int, default=72)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main()
        return
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts or parts - {"full", "latency"}:
        parser.error("--parts takes full, latency or both")
    if args.latency_seconds / args.trigger_interval < 1:
        parser.error("--latency-seconds must cover at least one --trigger-interval")
    try:
        rates = [float(r) for r in args.stream_rate.split(",")]
        [int(n) for n in args.national_workers.split(",")]
    except ValueError:
        parser.error("--stream-rate and --national-workers take comma-separated numbers, e.g. 500,1000,2000")
    if args.json:
        with contextlib.redirect_stdout(sys.stderr):
            run(args, parts, rates)
        print(json.dumps(RESULT, sort_keys=True))
    else:
        run(args, parts, rates)


def run(args: argparse.Namespace, parts: set[str], rates: list[float]) -> None:
    machine(args.database_url if "full" in parts or args.national else None)
    with (
        tempfile.TemporaryDirectory(prefix="recon-bench-reconcile-") as folder,
        contextlib.ExitStack() as stack,
    ):
        if args.national:
            national(args, Path(folder), stack)
            return
        if "full" in parts:
            full_pass(args, Path(folder))
        if "latency" in parts:
            for rate in rates:
                here = Path(folder) / f"latency-{rate:g}"
                here.mkdir()
                latency(argparse.Namespace(**{**vars(args), "stream_rate": rate}), here)


if __name__ == "__main__":
    main()
