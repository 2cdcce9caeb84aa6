"""The coverage report and the alert list as plain rows: one place for what `recon status` and
`recon alerts` show, whatever the format (table for people, JSON or CSV for scripts).

Counts and money only: a row never holds a worker key or a NIK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from recon.domain.events import Agreement
from reconcile.domain import AgreementFigures, AlertState, AlertStatus

STATUS_COLUMNS = (
    "agreement_id",
    "funder",
    "branch",
    "quota",
    "active",
    "utilisation",
    "planned",
    "at_risk",
    "lapsed",
    "budget_rupiah",
    "paid_rupiah",
    "projected_rupiah",
    "arrears_rupiah",
    "claims",
    "branch_gap",
    "alerts_firing",
)
ALERT_TABLE_COLUMNS = ("state", "severity", "rule", "agreement_id", "fired_at", "resolved_at", "message")
ALERT_COLUMNS = (
    "state",
    "severity",
    "rule",
    "agreement_id",
    "observed",
    "expected",
    "fired_at",
    "resolved_at",
    "message",
    "runbook",
)


def status_rows(
    figures: Mapping[str, AgreementFigures], agreements: Mapping[str, Agreement], alerts: Sequence[AlertState]
) -> list[dict[str, Any]]:
    firing: dict[str, int] = {}
    for alert in alerts:
        if alert.status is AlertStatus.FIRING and alert.agreement_id:
            firing[alert.agreement_id] = firing.get(alert.agreement_id, 0) + 1
    rows = []
    for aid in sorted(figures):
        f, a = figures[aid], agreements[aid]
        rows.append(
            {
                "agreement_id": aid,
                "funder": a.funder_name,
                "branch": a.branch_code,
                "quota": f.quota,
                "active": f.active,
                "utilisation": None if f.utilisation is None else round(f.utilisation, 4),
                "planned": f.planned,
                "at_risk": f.at_risk,
                "lapsed": f.lapsed,
                "budget_rupiah": f.budget_rupiah,
                "paid_rupiah": f.contributions_paid_rupiah,
                "projected_rupiah": f.committed_rupiah,
                "arrears_rupiah": f.arrears_rupiah,
                "claims": sum(c.count for c in f.claims),
                "branch_gap": f.branch_gap,
                "alerts_firing": firing.get(aid, 0),
            }
        )
    return rows


def alert_rows(alerts: Sequence[AlertState], *, include_resolved: bool) -> list[dict[str, Any]]:
    chosen = [a for a in alerts if include_resolved or a.status is AlertStatus.FIRING]
    chosen.sort(
        key=lambda a: (a.status is not AlertStatus.FIRING, _severity_rank(str(a.severity)), a.rule, a.subject)
    )
    return [
        {
            "state": str(a.status),
            "severity": str(a.severity),
            "rule": str(a.rule),
            "agreement_id": a.agreement_id,
            "observed": a.observed,
            "expected": a.expected,
            "fired_at": _iso(a.fired_at_ms),
            "resolved_at": _iso(a.resolved_at_ms),
            "message": a.message,
            "runbook": a.runbook,
        }
        for a in chosen
    ]


def _severity_rank(severity: str) -> int:
    return {"CRITICAL": 0, "WARNING": 1, "INFO": 2}.get(severity, 3)


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
