"""What a rule reports (a Signal) and the thresholds it compares with (Thresholds, ThresholdPolicy).

A rule reports, per subject (an agreement, an agreement pair, a branch), a *level*:
BREACH when the value is past the firing threshold, HOLD when it is back inside the threshold but
not yet past the hysteresis margin, CLEAR when it is past the margin. The alert lifecycle
(``alerts.evolve``) fires on BREACH, keeps a firing alert on HOLD, and resolves on CLEAR (or when a
rule reports nothing for a subject) once it has stayed clear for ``resolve_after_ms``. A value
hovering at the threshold therefore moves between BREACH and HOLD, never to CLEAR, and cannot flap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any, Final


class Severity(StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK: Final = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class Level(StrEnum):
    BREACH = "BREACH"
    HOLD = "HOLD"
    CLEAR = "CLEAR"


class Rule(StrEnum):
    """Every rule's name: the ``rule`` of its signals and alerts, and its runbook's file name."""

    OVER_QUOTA = "over_quota"
    BELOW_PLAN = "below_plan"
    BUDGET_OVERRUN = "budget_overrun"
    DOUBLE_FUNDING = "double_funding"
    REGION_MISMATCH = "region_mismatch"
    CLAIM_OUTSIDE_COVERAGE = "claim_outside_coverage"
    JKM_AMOUNT = "jkm_amount"
    JKK_CLAIM_EXPIRED = "jkk_claim_expired"
    BRANCH_SILENT = "branch_silent"
    BRANCH_TOTALS_MISMATCH = "branch_totals_mismatch"
    ORPHAN_EVENTS = "orphan_events"


@dataclass(frozen=True, slots=True, kw_only=True)
class Signal:
    """One rule's finding about one subject. ``message`` names agreements and numbers, never a worker.

    ``observed`` is what the rule measured; ``expected`` the reference it compared it with (the quota,
    the plan, the budget, the branch's figure; 0 for counts of things that should not exist).
    """

    rule: str
    subject: str
    level: Level
    severity: Severity
    observed: float
    expected: float
    message: str
    agreement_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Thresholds:
    """Every rule's thresholds. Ratios are fractions (0.02 = 2 %); times are milliseconds.

    Usage:
        policy = ThresholdPolicy(per_agreement={"PKS-7271-2025": Thresholds(over_quota_tolerance=0.05)})
        policy = ThresholdPolicy().override("PKS-7271-2025", over_quota_tolerance=0.05)
    """

    # over_quota: fires when active > quota * (1 + tolerance); resolves below quota * (1 + tolerance
    # - hysteresis); CRITICAL above quota * (1 + critical).
    over_quota_tolerance: float = 0.0
    over_quota_hysteresis: float = 0.02
    over_quota_critical: float = 0.10
    # below_plan: fires when active < planned * (1 - tolerance); resolves above planned * (1 -
    # tolerance + hysteresis).
    below_plan_tolerance: float = 0.10
    below_plan_hysteresis: float = 0.02
    # budget_overrun: fires when committed > budget * (1 + tolerance); resolves below budget * (1 +
    # tolerance - hysteresis). CRITICAL once contributions paid alone exceed the budget.
    budget_tolerance: float = 0.0
    budget_hysteresis: float = 0.01
    # Counting rules fire at this many subjects (workers, claims), hold below it, clear at zero.
    region_mismatch_min_workers: int = 1
    region_mismatch_warning_ratio: float = 0.05  # INFO up to this share of active workers
    double_funding_min_workers: int = 1
    claims_min_count: int = 1
    jkm_amount_tolerance_rupiah: int = 0
    # branch_silent: fires after this long without an event during an active period.
    branch_silence_ms: int = 24 * 3_600_000
    # branch_totals_mismatch: fires when |ledger - reported| > max(absolute, relative * reported);
    # resolves when it is at most that tolerance * (1 - hysteresis).
    branch_active_abs_tolerance: int = 10
    branch_active_rel_tolerance: float = 0.01
    branch_paid_abs_tolerance_rupiah: int = 1_000_000
    branch_paid_rel_tolerance: float = 0.01
    branch_totals_hysteresis: float = 0.2
    # orphan_events: fires when events have waited this long for an unknown agreement.
    orphan_grace_ms: int = 6 * 3_600_000
    # Every rule: a firing alert resolves only after being clear this long.
    resolve_after_ms: int = 10 * 60_000

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"Thresholds.{f.name} must be a number of 0 or more")
        if self.over_quota_critical < self.over_quota_tolerance:
            raise ValueError("Thresholds.over_quota_critical must not be below over_quota_tolerance")


@dataclass(frozen=True, slots=True)
class ThresholdPolicy:
    """Default thresholds and per-agreement overrides (a whole Thresholds per agreement)."""

    defaults: Thresholds = field(default_factory=Thresholds)
    per_agreement: Mapping[str, Thresholds] = field(default_factory=dict)

    def for_agreement(self, agreement_id: str | None) -> Thresholds:
        """The agreement's thresholds, or the defaults when it has none (or for None)."""
        if agreement_id is None:
            return self.defaults
        return self.per_agreement.get(agreement_id, self.defaults)

    def override(self, agreement_id: str, **changes: Any) -> ThresholdPolicy:
        """A policy where ``agreement_id`` uses the defaults with ``changes`` applied."""
        base = self.for_agreement(agreement_id)
        return ThresholdPolicy(self.defaults, {**self.per_agreement, agreement_id: replace(base, **changes)})


def band_above(observed: float, fire_above: float, resolve_below: float) -> Level:
    """BREACH above ``fire_above``, CLEAR below ``resolve_below``, HOLD in between (both included)."""
    if observed > line(fire_above):
        return Level.BREACH
    return Level.CLEAR if observed < line(resolve_below) else Level.HOLD


def band_below(observed: float, fire_below: float, resolve_above: float) -> Level:
    """BREACH below ``fire_below``, CLEAR above ``resolve_above``, HOLD in between (both included)."""
    if observed < line(fire_below):
        return Level.BREACH
    return Level.CLEAR if observed > line(resolve_above) else Level.HOLD


def count_level(count: int, fire_at: int) -> Level:
    """For counts of things that should not exist: BREACH from ``fire_at`` (at least 1), HOLD below
    it, CLEAR at zero."""
    if count >= max(fire_at, 1):
        return Level.BREACH
    return Level.HOLD if count > 0 else Level.CLEAR


def line(value: float) -> float:
    """A threshold rounded to 6 decimals, so 100,000 * (1 + 0.0 - 0.02) is 98,000, not 98,000.00000000001."""
    return round(value, 6)


def agreement_subject(agreement_id: str) -> str:
    """The subject of a per-agreement rule."""
    return f"agreement:{agreement_id}"
