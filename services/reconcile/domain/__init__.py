"""Reconciliation's pure heart: coverage folds, figures per agreement, rules and the alert lifecycle.

Plain values in, plain values out: nothing here imports Kafka, SQL, HTTP or metrics, or reads the
clock (as-of dates and ``now_ms`` are parameters). The flow, per evaluation:

    states = coverage.apply(states, enrolment_events)            # incremental, order-independent
    figures = compute_figures(agreements, rows_by_agreement(states.values()), as_of, config, ...)
    signals = evaluate(RuleInputs(now_ms=now_ms, figures=figures, agreements=agreements, ...), ...)
    alert_states, records = evolve(previous_alert_states, signals, now_ms, policy)

docs/reconciliation.md defines every figure and rule. The public API is exactly ``__all__``.
"""

from reconcile.domain.alerts import (
    AlertRecord,
    AlertState,
    AlertStatus,
    episode_id,
    evolve,
    fingerprint,
    runbook_for,
)
from reconcile.domain.claims import ClaimState, apply_claims, claim_from_event, fold_claims, merge_claims
from reconcile.domain.coverage import WorkerCoverage, apply, fold, from_event, merge
from reconcile.domain.dates import month_index, month_label, parse_month
from reconcile.domain.figures import (
    AgreementFigures,
    ClaimFigure,
    active_count,
    compute_figures,
    planned_workers,
    rows_by_agreement,
)
from reconcile.domain.rollup import RollupBy, RollupFigures, rollup
from reconcile.domain.rules import (
    RuleInputs,
    below_plan,
    branch_silent,
    branch_totals_mismatch,
    budget_overrun,
    claim_outside_coverage,
    double_funding,
    evaluate,
    jkk_claim_expired,
    jkm_amount,
    orphan_events,
    over_quota,
    region_mismatch,
)
from reconcile.domain.rules_streams import OrphanBacklog
from reconcile.domain.rules_workers import CoverageWindow, funding_windows
from reconcile.domain.signals import Level, Rule, Severity, Signal, ThresholdPolicy, Thresholds
from reconcile.domain.status import CoverageStatus, StatusAt, WorkerRow, status_at, to_row

__all__ = [
    "AgreementFigures",
    "AlertRecord",
    "AlertState",
    "AlertStatus",
    "ClaimFigure",
    "ClaimState",
    "CoverageStatus",
    "CoverageWindow",
    "Level",
    "OrphanBacklog",
    "RollupBy",
    "RollupFigures",
    "Rule",
    "RuleInputs",
    "Severity",
    "Signal",
    "StatusAt",
    "ThresholdPolicy",
    "Thresholds",
    "WorkerCoverage",
    "WorkerRow",
    "active_count",
    "apply",
    "apply_claims",
    "below_plan",
    "branch_silent",
    "branch_totals_mismatch",
    "budget_overrun",
    "claim_from_event",
    "claim_outside_coverage",
    "compute_figures",
    "double_funding",
    "episode_id",
    "evaluate",
    "evolve",
    "fingerprint",
    "fold",
    "fold_claims",
    "from_event",
    "funding_windows",
    "jkk_claim_expired",
    "jkm_amount",
    "merge",
    "merge_claims",
    "month_index",
    "month_label",
    "orphan_events",
    "over_quota",
    "parse_month",
    "planned_workers",
    "region_mismatch",
    "rollup",
    "rows_by_agreement",
    "runbook_for",
    "status_at",
    "to_row",
]
