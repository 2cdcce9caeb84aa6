"""All rules, and ``evaluate``: one full evaluation from plain inputs to signals.

Usage:
    signals = evaluate(RuleInputs(figures=figures, agreements=agreements, now_ms=now_ms, ...), config, policy)
    states, changes = alerts.evolve(previous, signals, now_ms, policy)

The rules live in ``rules_agreement`` (figures), ``rules_claims``, ``rules_workers`` (double
funding) and ``rules_streams`` (branch silence, orphans); each is a plain function too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from recon.domain.config import DomainConfig
from recon.domain.events import Agreement
from reconcile.domain.claims import ClaimState
from reconcile.domain.coverage import WorkerCoverage
from reconcile.domain.dates import WIB_OFFSET_MINUTES
from reconcile.domain.figures import AgreementFigures
from reconcile.domain.rules_agreement import (
    below_plan,
    branch_totals_mismatch,
    budget_overrun,
    over_quota,
    region_mismatch,
)
from reconcile.domain.rules_claims import claim_outside_coverage, jkk_claim_expired, jkm_amount
from reconcile.domain.rules_streams import OrphanBacklog, branch_silent, orphan_events
from reconcile.domain.rules_workers import CoverageWindow, double_funding
from reconcile.domain.signals import Signal, ThresholdPolicy

__all__ = [
    "RuleInputs",
    "below_plan",
    "branch_silent",
    "branch_totals_mismatch",
    "budget_overrun",
    "claim_outside_coverage",
    "double_funding",
    "evaluate",
    "jkk_claim_expired",
    "jkm_amount",
    "orphan_events",
    "over_quota",
    "region_mismatch",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleInputs:
    """Everything one evaluation reads, as plain values.

    ``funding_windows``: per worker key, that worker's coverage windows (``rules_workers``);
    ``claim_coverages``: per worker key, the coverage states of the workers with claims;
    ``branch_last_event_ms``: per branch code, when its latest event was taken in;
    ``orphans``: per unknown agreement id, the events waiting for it.
    """

    now_ms: int
    figures: Mapping[str, AgreementFigures]
    agreements: Mapping[str, Agreement]
    funding_windows: Mapping[str, Sequence[CoverageWindow]] = field(default_factory=dict)
    claims: Sequence[ClaimState] = ()
    claim_coverages: Mapping[str, Sequence[WorkerCoverage]] = field(default_factory=dict)
    branch_last_event_ms: Mapping[str, int] = field(default_factory=dict)
    orphans: Mapping[str, OrphanBacklog] = field(default_factory=dict)


def evaluate(
    inputs: RuleInputs,
    config: DomainConfig,
    policy: ThresholdPolicy,
    *,
    utc_offset_minutes: int = WIB_OFFSET_MINUTES,
) -> list[Signal]:
    """Every rule's signals for ``inputs``, sorted by rule and subject (a complete evaluation: pass
    all of them to ``alerts.evolve``, whose absent fingerprints then count as clear)."""
    figures = list(inputs.figures.values())
    signals = [
        *over_quota(figures, policy),
        *below_plan(figures, policy),
        *budget_overrun(figures, policy),
        *region_mismatch(figures, policy),
        *branch_totals_mismatch(figures, policy),
        *double_funding(inputs.funding_windows, policy, inputs.agreements),
        *claim_outside_coverage(inputs.claims, inputs.claim_coverages, config, policy),
        *jkm_amount(inputs.claims, config, policy),
        *jkk_claim_expired(inputs.claims, config, policy),
        *branch_silent(
            inputs.branch_last_event_ms,
            inputs.agreements,
            inputs.now_ms,
            policy,
            utc_offset_minutes=utc_offset_minutes,
        ),
        *orphan_events(inputs.orphans, inputs.now_ms, policy),
    ]
    return sorted(signals, key=lambda s: (s.rule, s.subject))
