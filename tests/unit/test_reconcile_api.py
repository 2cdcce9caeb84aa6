"""The reconcile domain's public API, its purity, and a whole evaluation that never names a worker."""

from __future__ import annotations

import ast
from dataclasses import replace
from datetime import date
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from test_reconcile_builders import agreement, branch_totals, claim_event, coverage, months, ms

import reconcile.domain as api
from recon.domain.config import DomainConfig
from recon.domain.events import ClaimType, Programme
from reconcile.domain import (
    Level,
    RuleInputs,
    ThresholdPolicy,
    compute_figures,
    evaluate,
    evolve,
    fold_claims,
    funding_windows,
    rows_by_agreement,
)
from reconcile.domain.rules_streams import OrphanBacklog

DOMAIN = Path(api.__file__).parent

PUBLIC = {
    "AgreementFigures", "AlertRecord", "AlertState", "AlertStatus", "ClaimFigure", "ClaimState",
    "CoverageStatus", "CoverageWindow", "Level", "OrphanBacklog", "RollupBy", "RollupFigures", "Rule",
    "RuleInputs", "Severity", "Signal", "StatusAt", "ThresholdPolicy", "Thresholds", "WorkerCoverage",
    "WorkerRow", "active_count", "apply", "apply_claims", "below_plan", "branch_silent",
    "branch_totals_mismatch", "budget_overrun", "claim_from_event", "claim_outside_coverage",
    "compute_figures", "double_funding", "episode_id", "evaluate", "evolve", "fingerprint", "fold",
    "fold_claims", "from_event", "funding_windows", "jkk_claim_expired", "jkm_amount", "merge",
    "merge_claims", "month_index", "month_label", "orphan_events", "over_quota", "parse_month",
    "planned_workers", "region_mismatch", "rollup", "rows_by_agreement", "runbook_for", "status_at",
    "to_row",
}  # fmt: skip

ALLOWED_IMPORTS = {
    "__future__", "collections", "dataclasses", "datetime", "enum", "hashlib", "itertools", "typing",
    "uuid", "recon", "reconcile",
}  # fmt: skip
CLOCK_CALLS = {"now", "today", "utcnow", "time", "time_ns", "monotonic", "perf_counter"}


def test_public_api_is_pinned() -> None:
    assert set(api.__all__) == PUBLIC
    assert all(hasattr(api, name) for name in api.__all__)


def test_domain_is_pure() -> None:
    for path in DOMAIN.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                if isinstance(node, ast.Attribute):
                    assert node.attr not in CLOCK_CALLS, f"{path.name}: reads a clock ({node.attr})"
                continue
            for name in names:
                assert name.split(".")[0] in ALLOWED_IMPORTS, f"{path.name} imports {name}"
                if name.startswith("recon."):
                    assert name.startswith("recon.domain."), f"{path.name} imports {name}"


def test_modules_stay_small() -> None:
    for path in DOMAIN.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 300, path.name


_keys = st.text("0123456789abcdef", min_size=32, max_size=32)


@settings(max_examples=50, deadline=None)
@given(keys=st.lists(_keys, min_size=4, max_size=4, unique=True))
def test_a_whole_evaluation_never_names_a_worker(keys: list[str]) -> None:
    config = DomainConfig()
    as_of = date(2025, 6, 20)
    now = ms(as_of, 18)
    known = {
        "PKS-72": agreement("PKS-72", region="72", funder="Pemprov Sulawesi Tengah", quota=1, budget=1),
        "PKS-7271": agreement("PKS-7271", region="7271", quota=1, branch="B02", ramp=[("2025-01", 10)]),
    }
    paid = months("2025-01", "2025-06")
    covs = [
        coverage(worker=keys[0], agreement="PKS-72", paid=paid, region="7371"),
        coverage(worker=keys[0], agreement="PKS-7271", paid=paid),
        coverage(worker=keys[1], agreement="PKS-72", paid=paid),
        coverage(worker=keys[2], agreement="PKS-7271", paid=paid, region="7206"),
    ]
    old = date(2019, 1, 1)
    jkm = Programme.JKM
    events = [
        claim_event("ev-1", claim="CL-1", worker=keys[3]),  # a worker without cover
        claim_event("ev-2", claim="CL-2", worker=keys[1], programme=jkm, claimed=1),
        claim_event("ev-3", ClaimType.PAID, claim="CL-2", worker=keys[1], programme=jkm, claimed=1, paid=1),
        claim_event("ev-4", claim="CL-3", worker=keys[1], incident=old, at=now),  # filed 6 years on
    ]
    claims = list(fold_claims([replace(e, agreement_id="PKS-72") for e in events]).values())
    reports = {"PKS-72": branch_totals("PKS-72", as_of, 500, 1)}
    figures = compute_figures(
        known, rows_by_agreement(covs), as_of, config, claims=claims, branch_totals=reports
    )
    inputs = RuleInputs(
        now_ms=now,
        figures=figures,
        agreements=known,
        funding_windows=funding_windows(covs, as_of, config),
        claims=claims,
        claim_coverages={k: [c for c in covs if c.worker_key == k] for k in keys},
        branch_last_event_ms={"B01": now - 3 * 86_400_000},
        orphans={"PKS-X": OrphanBacklog(3, now - 86_400_000)},
    )
    signals = evaluate(inputs, config, ThresholdPolicy())
    breached = {s.rule for s in signals if s.level is Level.BREACH}
    assert breached == {
        "over_quota", "below_plan", "budget_overrun", "double_funding", "region_mismatch",
        "claim_outside_coverage", "jkm_amount", "jkk_claim_expired", "branch_silent",
        "branch_totals_mismatch", "orphan_events",
    }  # fmt: skip
    assert signals == sorted(signals, key=lambda s: (s.rule, s.subject))
    _, records = evolve({}, signals, now, ThresholdPolicy())
    texts = [s.message for s in signals] + [str(r.to_avro()) for r in records]
    for key in keys:
        assert not any(key in text for text in texts)
