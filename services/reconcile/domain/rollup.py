"""Agreement figures rolled up by funder, region, province or branch.

Counts and rupiah amounts are sums over the group's agreements. A worker funded by two agreements
of one group (a province and a regency) is counted once per agreement: the double-funding rule, not
the roll-up, finds those. Ratios are recomputed from the sums; ``projected_overrun_rupiah`` is the
sum of each agreement's overrun (one agreement's slack does not offset another's overrun).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from recon.domain.events import Agreement, ClaimType, Programme
from reconcile.domain.figures import AgreementFigures, ClaimFigure


class RollupBy(StrEnum):
    FUNDER = "funder"  # funder_name
    REGION = "region"  # the agreement's region code as written (2 or 4 digits)
    PROVINCE = "province"  # the first two digits of the region code
    BRANCH = "branch"  # branch_code


_KEY: Final[Mapping[RollupBy, Callable[[Agreement], str]]] = {
    RollupBy.FUNDER: lambda a: a.funder_name,
    RollupBy.REGION: lambda a: a.region_code,
    RollupBy.PROVINCE: lambda a: a.region_code[:2],
    RollupBy.BRANCH: lambda a: a.branch_code,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RollupFigures:
    """The summed figures of a group of agreements (see the module docstring)."""

    by: RollupBy
    key: str
    agreement_ids: tuple[str, ...]
    quota: int
    enrolled: int
    active: int
    at_risk: int
    lapsed: int
    terminated: int
    planned: int
    utilisation: float | None
    contributions_due_rupiah: int
    contributions_paid_rupiah: int
    arrears_rupiah: int
    budget_rupiah: int
    committed_rupiah: int
    projected_overrun_rupiah: int
    claims: tuple[ClaimFigure, ...]
    target_population: int | None  # sum over the agreements that set one
    coverage_ratio: float | None  # active of those agreements / their target population
    region_mismatches: int
    branch_gap: int | None  # sum over the agreements with a branch report


def rollup(
    figures: Iterable[AgreementFigures], agreements: Mapping[str, Agreement], by: RollupBy | str
) -> dict[str, RollupFigures]:
    """Group ``figures`` by ``by`` (of their agreement in ``agreements``) and sum each group.

    Figures whose agreement is not in ``agreements`` are skipped.
    """
    kind = RollupBy(by)
    groups: dict[str, list[AgreementFigures]] = {}
    for f in figures:
        agreement = agreements.get(f.agreement_id)
        if agreement is not None:
            groups.setdefault(_KEY[kind](agreement), []).append(f)
    return {key: _sum(kind, key, group) for key, group in sorted(groups.items())}


def _sum(kind: RollupBy, key: str, group: list[AgreementFigures]) -> RollupFigures:
    quota = sum(f.quota for f in group)
    active = sum(f.active for f in group)
    targeted = [f for f in group if f.target_population is not None]
    target = sum(f.target_population or 0 for f in targeted) if targeted else None
    gaps = [f.branch_gap for f in group if f.branch_gap is not None]
    return RollupFigures(
        by=kind,
        key=key,
        agreement_ids=tuple(sorted(f.agreement_id for f in group)),
        quota=quota,
        enrolled=sum(f.enrolled for f in group),
        active=active,
        at_risk=sum(f.at_risk for f in group),
        lapsed=sum(f.lapsed for f in group),
        terminated=sum(f.terminated for f in group),
        planned=sum(f.planned for f in group),
        utilisation=active / quota if quota > 0 else None,
        contributions_due_rupiah=sum(f.contributions_due_rupiah for f in group),
        contributions_paid_rupiah=sum(f.contributions_paid_rupiah for f in group),
        arrears_rupiah=sum(f.arrears_rupiah for f in group),
        budget_rupiah=sum(f.budget_rupiah for f in group),
        committed_rupiah=sum(f.committed_rupiah for f in group),
        projected_overrun_rupiah=sum(f.projected_overrun_rupiah for f in group),
        claims=_merge_claims(f.claims for f in group),
        target_population=target,
        coverage_ratio=sum(f.active for f in targeted) / target if target else None,
        region_mismatches=sum(f.region_mismatches for f in group),
        branch_gap=sum(gaps) if gaps else None,
    )


def _merge_claims(groups: Iterable[tuple[ClaimFigure, ...]]) -> tuple[ClaimFigure, ...]:
    sums: dict[tuple[Programme, ClaimType], tuple[int, int, int]] = {}
    for claims in groups:
        for c in claims:
            n, claimed, paid = sums.get((c.programme, c.outcome), (0, 0, 0))
            sums[(c.programme, c.outcome)] = (n + c.count, claimed + c.claimed_rupiah, paid + c.paid_rupiah)
    return tuple(ClaimFigure(p, o, *totals) for (p, o), totals in sorted(sums.items()))
