"""The demo scenario: agreements drawn from real Sulawesi PKS figures, synthetic workers and events.

Real figures (public news 2022-2025, see DESIGN.md): Pemprov Sulawesi Tengah funds 100,402 workers
from APBD-P, Pemkot Palu 45,778, Pemkab Morowali 28,000, Pemkab Polewali Mandar signed a PKS on
16 May 2025. Periods are moved to the demo's current year so the rules see an active period.
Everything else is synthetic and deterministic (seeded): the NIKs are well formed but made up.

Planted drift, so the run has something to show:
- Morowali enrols beyond its quota (over_quota); Polewali Mandar lags its ramp (below_plan);
- the province's budget is set below what its active workers cost (budget_overrun);
- some Palu workers are also funded by the province (double_funding);
- some Palu workers hold NIKs issued in Sulawesi Selatan (region_mismatch, a warning);
- arrears and lapses; JKK and JKM claims, some wrong (JKM amount, outside coverage, expired JKK);
- Palu's branch reports totals that disagree with the ledger (branch_totals_mismatch);
- a handful of malformed messages and invalid events (dead letters).
Nothing here is known to the services: it all goes through Kafka like real traffic.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

PREMIUM = 16_800  # JKK 1% of Rp 1,000,000 + JKM Rp 6,800
JKM_BENEFIT = 42_000_000


@dataclass(frozen=True, slots=True)
class AgreementPlan:
    agreement_id: str
    funder_name: str
    funder_level: str
    region_code: str
    branch_code: str
    budget_source: str
    quota: int
    start_month: int  # month of the demo year the period starts
    enrol_share: float  # workers enrolled by "today", as a share of quota
    budget_share: float  # budget as a share of quota x premium x months
    nik_regions: tuple[str, ...]  # where the workers' NIKs were issued
    target_population: int | None = None


# Palu comes first: the province then funds some of Palu's workers again (double funding).
PLANS = (
    AgreementPlan(
        "PKS-7271-PALU", "Pemkot Palu", "CITY", "7271", "PALU", "APBD", 45_778, 1, 0.96, 1.10, ("7271",)
    ),
    AgreementPlan(
        "PKS-72-SULTENG",
        "Pemprov Sulawesi Tengah",
        "PROVINCE",
        "72",
        "PALU",
        "APBD_P",
        100_402,
        7,
        0.97,
        0.80,
        (
            "7271",
            "7201",
            "7202",
            "7203",
            "7204",
            "7205",
            "7206",
            "7207",
            "7208",
            "7209",
            "7210",
            "7211",
            "7212",
        ),
        978_084,
    ),
    AgreementPlan(
        "PKS-7206-MOROWALI",
        "Pemkab Morowali",
        "REGENCY",
        "7206",
        "LUWUK",
        "APBD",
        28_000,
        1,
        1.03,
        1.15,
        ("7206",),
    ),
    AgreementPlan(
        "PKS-7604-POLMAN",
        "Pemkab Polewali Mandar",
        "REGENCY",
        "7604",
        "MAMUJU",
        "APBD",
        12_000,
        6,
        0.55,
        1.10,
        ("7604",),
    ),
)


@dataclass(slots=True)
class Scenario:
    """Records per subject, in the JSON shape `recon publish` takes, plus raw malformed payloads."""

    agreements: list[dict[str, Any]] = field(default_factory=list)
    enrolments: list[dict[str, Any]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    branch_totals: list[dict[str, Any]] = field(default_factory=list)
    malformed: list[bytes] = field(default_factory=list)
    invalid_enrolments: list[dict[str, Any]] = field(default_factory=list)


def build(today: date, *, scale: float = 1.0, seed: int = 7271) -> Scenario:
    """The whole scenario as of ``today``; ``scale`` shrinks quotas and workers alike (0 < scale <= 1)."""
    rng = random.Random(seed)
    gen = _Generator(today, rng)
    out = Scenario()
    palu_workers: list[str] = []
    for plan in PLANS:
        quota = max(10, round(plan.quota * scale))
        out.agreements.append(gen.agreement(plan, quota))
        workers = [gen.nik(rng.choice(plan.nik_regions)) for _ in range(round(quota * plan.enrol_share))]
        if plan.agreement_id == "PKS-7271-PALU":
            palu_workers = workers
            workers += [gen.nik("7371") for _ in range(max(1, quota // 150))]  # NIKs issued in Makassar
        if plan.agreement_id == "PKS-72-SULTENG":
            workers += palu_workers[: max(1, len(palu_workers) // 300)]  # funded twice
        for nik in workers:
            out.enrolments.extend(gen.worker_events(plan, nik))
    out.claims = gen.claims(out.enrolments)
    out.branch_totals = gen.branch_totals(out.agreements)
    out.malformed = _malformed(rng)
    out.invalid_enrolments = gen.invalid_enrolments(out.enrolments)
    return out


class _Generator:
    def __init__(self, today: date, rng: random.Random) -> None:
        self.today = today
        self.rng = rng
        self.year = today.year
        self._seq = 0
        self._niks: set[str] = set()
        # What each branch's own system counts, to report as branch totals.
        self.active: dict[str, int] = {}
        self.paid: dict[str, int] = {}

    def event_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}-{self._seq:08d}"

    def nik(self, region4: str) -> str:
        while True:
            day = self.rng.randint(1, 28) + (40 if self.rng.random() < 0.5 else 0)
            born = f"{day:02d}{self.rng.randint(1, 12):02d}{self.rng.randint(60, 99):02d}"
            nik = f"{region4}{self.rng.randint(1, 20):02d}{born}{self.rng.randint(1, 9999):04d}"
            if nik not in self._niks:
                self._niks.add(nik)
                return nik

    def agreement(self, plan: AgreementPlan, quota: int) -> dict[str, Any]:
        start = date(self.year, plan.start_month, 1)
        months = 13 - plan.start_month
        steps = min(months, 6)
        ramp = [
            {"month": f"{self.year}-{plan.start_month + i:02d}", "target_workers": quota * (i + 1) // steps}
            for i in range(steps)
        ]
        return {
            "agreement_id": plan.agreement_id,
            "version": 1,
            "funder_name": plan.funder_name,
            "funder_level": plan.funder_level,
            "region_code": plan.region_code,
            "branch_code": plan.branch_code,
            "budget_source": plan.budget_source,
            "programmes": ["JKK", "JKM"],
            "quota_workers": quota,
            "budget_rupiah": round(quota * PREMIUM * months * plan.budget_share),
            "monthly_premium_rupiah": PREMIUM,
            "period_start": start.isoformat(),
            "period_end": date(self.year, 12, 31).isoformat(),
            "ramp": ramp,
            "target_population": plan.target_population,
        }

    def worker_events(self, plan: AgreementPlan, nik: str) -> Iterator[dict[str, Any]]:
        first = plan.start_month + min(int(self.rng.expovariate(1.2)), 5)
        last_due = self.today.month if self.today.day >= 15 else self.today.month - 1
        first = min(first, max(plan.start_month, last_due))
        start = date(self.year, first, 1)
        base = self._base(plan, nik, start)
        yield {
            **base,
            "event_id": self.event_id("enr"),
            "event_type": "ENROLLED",
            "occurred_at": _ts(start, 8),
        }
        months = list(range(first, last_due + 1))
        fate = self.rng.random()
        lapsed = fate < 0.02 and len(months) > 3
        terminated = fate > 0.995 and last_due > first
        if lapsed:
            months = months[:-3]  # lapsed: three months unpaid
        elif fate < 0.06:
            months = months[:-1]  # at risk: one month unpaid, still covered
        aid = plan.agreement_id
        self.active[aid] = self.active.get(aid, 0) + (not (lapsed or terminated))
        self.paid[aid] = self.paid.get(aid, 0) + PREMIUM * len(months)
        for chunk_start in range(0, len(months), 3):
            chunk = months[chunk_start : chunk_start + 3]
            paid_on = date(self.year, chunk[0], self.rng.randint(1, 14))
            yield {
                **base,
                "event_id": self.event_id("pay"),
                "event_type": "CONTRIBUTION_PAID",
                "occurred_at": _ts(paid_on, 10),
                "paid_months": [f"{self.year}-{m:02d}" for m in chunk],
                "amount": PREMIUM * len(chunk),
            }
        if terminated:
            yield {
                **base,
                "event_id": self.event_id("trm"),
                "event_type": "TERMINATED",
                "occurred_at": _ts(min(self.today, date(self.year, last_due, 20)), 1),
                "termination_reason": "moved away",
            }

    def _base(self, plan: AgreementPlan, nik: str, start: date) -> dict[str, Any]:
        return {
            "branch_code": plan.branch_code,
            "agreement_id": plan.agreement_id,
            "nik": nik,
            "programmes": ["JKK", "JKM"],
            "declared_income": 1_000_000,
            "coverage_start": start.isoformat(),
            "coverage_end": None,
            "paid_months": [],
            "amount": 0,
            "termination_reason": None,
        }

    def claims(self, enrolments: list[dict[str, Any]]) -> list[dict[str, Any]]:
        enrolled = [e for e in enrolments if e["event_type"] == "ENROLLED"]
        picks = self.rng.sample(enrolled, min(len(enrolled), 60))
        out: list[dict[str, Any]] = []
        for i, e in enumerate(picks):
            programme = "JKM" if i % 3 == 0 else "JKK"
            incident = max(date.fromisoformat(e["coverage_start"]), date(self.year, 1, 5))
            incident = min(incident.replace(day=10), self.today)
            amount = JKM_BENEFIT if programme == "JKM" else 48 * 1_000_000
            if i in (1, 2):
                incident = date(self.year - 6, 3, 1)  # JKK more than 5 years ago, outside coverage
            if i == 3:
                amount = 35_000_000  # JKM amount other than the statutory benefit
            claim_id = f"KLM-{e['branch_code']}-{i:04d}"
            base = {
                "claim_id": claim_id,
                "nik": e["nik"],
                "agreement_id": e["agreement_id"],
                "branch_code": e["branch_code"],
                "programme": programme,
                "incident_date": incident.isoformat(),
                "amount_claimed": amount,
                "amount_paid": None,
            }
            filed = min(self.today, incident.replace(day=20) if incident.year == self.year else self.today)
            out.append(
                {
                    **base,
                    "event_id": self.event_id("clm"),
                    "event_type": "FILED",
                    "occurred_at": _ts(filed, 9),
                }
            )
            if i % 2 == 0:
                out.append(
                    {
                        **base,
                        "event_id": self.event_id("clm"),
                        "event_type": "APPROVED",
                        "occurred_at": _ts(filed, 15),
                    }
                )
                out.append(
                    {
                        **base,
                        "event_id": self.event_id("clm"),
                        "event_type": "PAID",
                        "occurred_at": _ts(filed, 16),
                        "amount_paid": amount,
                    }
                )
        bad = dict(
            out[0], event_id=self.event_id("clm"), incident_date=(self.today.replace(day=1)).isoformat()
        )
        bad["occurred_at"] = _ts(date(self.today.year, 1, 1), 9)  # incident after the report: refused
        out.append(bad)
        return out

    def branch_totals(self, agreements: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for a in agreements:
            aid = a["agreement_id"]
            reported, paid = self.active.get(aid, 0), self.paid.get(aid, 0)
            if aid == "PKS-7271-PALU":  # the branch counts workers the ledger does not know
                reported, paid = round(reported * 1.06), round(paid * 1.06)
            out.append(
                {
                    "event_id": self.event_id("tot"),
                    "occurred_at": _ts(self.today, 6),
                    "branch_code": a["branch_code"],
                    "agreement_id": a["agreement_id"],
                    "as_of": self.today.isoformat(),
                    "active_workers": reported,
                    "contributions_paid_rupiah": paid,
                }
            )
        return out

    def invalid_enrolments(self, enrolments: list[dict[str, Any]]) -> list[dict[str, Any]]:
        sample = enrolments[0]
        bad_nik = dict(
            sample, event_id=self.event_id("bad"), nik=sample["nik"][:6] + "320299" + sample["nik"][12:]
        )
        bad_dates = dict(sample, event_id=self.event_id("bad"), coverage_end=f"{self.year - 1}-01-01")
        short_nik = dict(sample, event_id=self.event_id("bad"), nik=sample["nik"][:15])
        return [bad_nik, bad_dates, short_nik]


def _malformed(rng: random.Random) -> list[bytes]:
    """Bytes a broken producer might send: no framing, unknown fingerprint, truncated body."""
    return [b'{"json": "not avro"}', b"\xc3\x01" + bytes(8) + b"\x02", b"\xc3", rng.randbytes(40)]


def _ts(day: date, hour: int) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp() * 1000)
