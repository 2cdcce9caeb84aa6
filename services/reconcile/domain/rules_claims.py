"""Rules over claims: incident outside cover, JKM amount, JKK claim expiry.

Each counts the offending claims per agreement and returns one BREACH signal per agreement with
any (nothing for the others: a missing signal is a clear one). Rejected claims are left out: the
branch already refused them. Messages cite claim event ids (the claim's earliest event) and counts,
never a worker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from recon.domain.config import DomainConfig
from recon.domain.events import ClaimType, Programme
from reconcile.domain.claims import ClaimState
from reconcile.domain.coverage import WorkerCoverage
from reconcile.domain.dates import add_years
from reconcile.domain.signals import Rule, Severity, Signal, ThresholdPolicy, agreement_subject, count_level
from reconcile.domain.status import status_at

MAX_CITED_EVENTS = 5
UNATTRIBUTED = "unattributed"


def claim_outside_coverage(
    claims: Iterable[ClaimState],
    coverages: Mapping[str, Sequence[WorkerCoverage]],
    config: DomainConfig,
    policy: ThresholdPolicy,
) -> list[Signal]:
    """Claims whose incident date is not inside the worker's active cover (ACTIVE or AT_RISK on that
    date, see ``status``) under the claim's agreement, or under any of the worker's agreements when
    the claim names none. ``coverages`` maps worker key to that worker's coverage states (the
    workers with claims suffice). CRITICAL when one of them was already paid."""
    offending: dict[str | None, list[ClaimState]] = {}
    for claim in _live(claims):
        mine = [
            c
            for c in coverages.get(claim.worker_key, ())
            if claim.agreement_id is None or c.agreement_id == claim.agreement_id
        ]
        if not any(status_at(c, claim.incident_date, config).status.covered for c in mine):
            agreement = claim.agreement_id or _sole_agreement(mine)
            offending.setdefault(agreement, []).append(claim)
    return _signals(
        Rule.CLAIM_OUTSIDE_COVERAGE,
        offending,
        policy,
        "an incident date outside the worker's covered, paid period",
        lambda c: c.outcome is ClaimType.PAID,
    )


def jkm_amount(claims: Iterable[ClaimState], config: DomainConfig, policy: ThresholdPolicy) -> list[Signal]:
    """JKM claims whose amount (paid when known, else claimed) differs from the statutory benefit by
    more than ``jkm_amount_tolerance_rupiah``. CRITICAL when a paid amount differs."""
    offending: dict[str | None, list[ClaimState]] = {}
    for claim in _live(claims):
        if claim.programme is not Programme.JKM:
            continue
        amount = claim.amount_claimed if claim.amount_paid is None else claim.amount_paid
        if (
            abs(amount - config.jkm_benefit_rupiah)
            > policy.for_agreement(claim.agreement_id).jkm_amount_tolerance_rupiah
        ):
            offending.setdefault(claim.agreement_id, []).append(claim)
    return _signals(
        Rule.JKM_AMOUNT,
        offending,
        policy,
        f"a JKM amount other than the statutory Rp {config.jkm_benefit_rupiah:,}",
        lambda c: c.amount_paid is not None,
    )


def jkk_claim_expired(
    claims: Iterable[ClaimState], config: DomainConfig, policy: ThresholdPolicy
) -> list[Signal]:
    """JKK claims filed more than ``jkk_claim_expiry_years`` after the accident: filed after the
    anniversary (filing on the anniversary itself is in time). CRITICAL once approved or paid."""
    years = config.jkk_claim_expiry_years
    offending: dict[str | None, list[ClaimState]] = {}
    for claim in _live(claims):
        if claim.programme is Programme.JKK and claim.filed_on > add_years(claim.incident_date, years):
            offending.setdefault(claim.agreement_id, []).append(claim)
    return _signals(
        Rule.JKK_CLAIM_EXPIRED,
        offending,
        policy,
        f"been filed more than {years} years after the accident",
        lambda c: c.outcome in (ClaimType.APPROVED, ClaimType.PAID),
    )


def _live(claims: Iterable[ClaimState]) -> Iterable[ClaimState]:
    return (c for c in claims if c.outcome is not ClaimType.REJECTED)


def _sole_agreement(coverages: Sequence[WorkerCoverage]) -> str | None:
    ids = {c.agreement_id for c in coverages}
    return ids.pop() if len(ids) == 1 else None


def _signals(
    rule: Rule,
    offending: Mapping[str | None, list[ClaimState]],
    policy: ThresholdPolicy,
    what: str,
    critical: Callable[[ClaimState], bool],
) -> list[Signal]:
    signals = []
    for agreement_id, bad in sorted(offending.items(), key=lambda item: item[0] or ""):
        count = len(bad)
        urgent = sum(1 for c in bad if critical(c))
        cited = sorted(c.first_event_id for c in bad)
        more = f" and {count - MAX_CITED_EVENTS:,} more" if count > MAX_CITED_EVENTS else ""
        where = f"Agreement {agreement_id}" if agreement_id else "Claims without an agreement"
        message = (
            f"{where}: {count:,} claim(s) have {what} ({urgent:,} already "
            f"{'paid' if rule is not Rule.JKK_CLAIM_EXPIRED else 'approved or paid'}); claim events "
            f"{', '.join(cited[:MAX_CITED_EVENTS])}{more}."
        )
        signals.append(
            Signal(
                rule=rule,
                subject=agreement_subject(agreement_id) if agreement_id else UNATTRIBUTED,
                level=count_level(count, policy.for_agreement(agreement_id).claims_min_count),
                severity=Severity.CRITICAL if urgent else Severity.WARNING,
                observed=count,
                expected=0,
                message=message,
                agreement_id=agreement_id,
            )
        )
    return signals
