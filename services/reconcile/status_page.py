"""The read-only status page the reconcile service serves at ``/``: one HTML document, nothing else.

``render`` is a pure function of the figures, the agreements and the alert states it is given. The
page is self-contained (inline CSS; no script, no external stylesheet, font or image), so it works
on an operations laptop without internet and in a locked-down browser, and refreshes itself every
10 seconds with ``<meta http-equiv="refresh">``.

What it shows: per agreement its funder, quota, active workers (and how many are in arrears),
utilisation as a bar with the ramp plan marked, planned workers, budget against projected spend,
arrears and how many alerts fire for it; then every firing alert with rule, severity, message and
runbook link. It never shows a worker: figures hold counts only, and as a safety net any NIK-shaped
16-digit number or worker-key-shaped 32-hex-digit word in an alert message is replaced by
``[redacted]``. Every value is HTML-escaped. Numbers use Indonesian grouping (``1.234.567``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from recon.domain.events import Agreement
from reconcile.domain import AgreementFigures, AlertState, AlertStatus, Severity

__all__ = ["CONTENT_TYPE", "REFRESH_SECONDS", "render"]

CONTENT_TYPE: Final = "text/html; charset=utf-8"
REFRESH_SECONDS: Final = 10
BELOW_PLAN_SHARE: Final = 0.9  # the bar turns amber below 90% of plan (the below_plan rule's default)

_PERSONAL: Final = re.compile(r"(?<![0-9])[0-9]{16}(?![0-9])|(?<![0-9a-fA-F])[0-9a-fA-F]{32}(?![0-9a-fA-F])")
_SCHEME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_SEVERITY_CLASS: Final = {Severity.CRITICAL: "crit", Severity.WARNING: "warn", Severity.INFO: "info"}

_CSS: Final = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;
color:#1d2430;background:#f4f6f9}
header{background:#123a63;color:#fff;padding:14px 24px}
header h1{font-size:20px;margin:0 0 4px}
header p{margin:0;opacity:.85}
main{padding:16px 24px}
.summary{display:flex;gap:12px;margin-bottom:16px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #d5dbe3;border-radius:6px;padding:10px 16px;min-width:150px}
.card b{display:block;font-size:22px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d5dbe3;margin-bottom:20px}
th,td{padding:7px 10px;border-bottom:1px solid #e4e8ee;text-align:left;vertical-align:top}
th{background:#e9eef4;font-weight:600;font-size:13px}
th.num{text-align:right}
td.who{min-width:250px}
td.nowrap{white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.sub{color:#5b6675;font-size:12px}
.bar{position:relative;width:180px;height:14px;background:#e4e8ee;border-radius:3px;overflow:hidden}
.fill{height:100%;background:#2e8b57}
.fill.below{background:#d89b1a}.fill.over{background:#c0392b}
.plan{position:absolute;top:0;bottom:0;width:2px;background:#123a63}
.over-budget{color:#c0392b;font-weight:600}
.sev{display:inline-block;padding:1px 7px;border-radius:3px;font-size:12px;font-weight:600;color:#fff}
.sev.crit{background:#c0392b}.sev.warn{background:#d89b1a}.sev.info{background:#5b6675}
.none{color:#5b6675;font-style:italic}
h2{font-size:16px;margin:18px 0 8px}
footer{padding:0 24px 20px;color:#5b6675;font-size:12px}
"""


def render(
    figures: Mapping[str, AgreementFigures],
    agreements: Mapping[str, Agreement],
    alerts: Sequence[AlertState],
    *,
    generated_at_ms: int,
    utc_offset_minutes: int = 0,
    runbook_base: str = "",
) -> str:
    """The page as a string. One row per agreement in ``agreements`` (by id), with its ``figures`` when
    computed; only FIRING ``alerts`` are shown. ``runbook_base`` is put before each alert's runbook
    path (e.g. the repository's web address); links with a scheme other than http(s) are not rendered.
    ``generated_at_ms`` is shown in the ``utc_offset_minutes`` zone (e.g. 480 for WITA).
    """
    firing = sorted(
        (a for a in alerts if a.status is AlertStatus.FIRING),
        key=lambda a: (-a.severity.rank, a.fired_at_ms, a.rule, a.fingerprint),
    )
    zone = timezone(timedelta(minutes=utc_offset_minutes))
    rows = "".join(_agreement_row(agreements[aid], figures.get(aid), firing) for aid in sorted(agreements))
    if not rows:
        rows = '<tr><td colspan="9" class="none">No agreements loaded yet.</td></tr>'
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>rentan-recon · coverage status</title>"
        f"<style>{_CSS}</style></head><body>"
        "<header><h1>Coverage status · pekerja rentan (JKK + JKM)</h1>"
        f"<p>Generated {_e(_when(generated_at_ms, zone))} · "
        f"refreshes every {REFRESH_SECONDS} s · read-only</p>"
        "</header><main>"
        f"{_summary(agreements, figures, firing)}"
        "<h2>Agreements</h2>"
        '<table><thead><tr><th>Agreement</th><th class="num">Quota</th><th class="num">Active</th>'
        '<th>Utilisation</th><th class="num">Planned</th><th class="num">Budget</th>'
        '<th class="num">Projected spend</th><th class="num">Arrears</th><th class="num">Alerts</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
        f"<h2>Firing alerts</h2>{_alerts_table(firing, zone, runbook_base)}"
        "</main><footer>Figures come from the ledger; workers are counted, never listed. "
        "Bar: green on plan, amber below 90% of plan, red over quota; the dark line marks the plan."
        "</footer></body></html>\n"
    )


def _summary(
    agreements: Mapping[str, Agreement], figures: Mapping[str, AgreementFigures], firing: Sequence[AlertState]
) -> str:
    active = sum(f.active for aid, f in figures.items() if aid in agreements)
    quota = sum(a.quota_workers for a in agreements.values())
    by_sev = {s: sum(1 for a in firing if a.severity is s) for s in Severity}
    cards = [
        ("Agreements", _n(len(agreements))),
        ("Active workers", _n(active)),
        ("Total quota", _n(quota)),
        ("Critical alerts", _n(by_sev[Severity.CRITICAL])),
        ("Warning alerts", _n(by_sev[Severity.WARNING])),
        ("Info alerts", _n(by_sev[Severity.INFO])),
    ]
    body = "".join(f'<div class="card"><b>{value}</b>{_e(label)}</div>' for label, value in cards)
    return f'<div class="summary">{body}</div>'


def _agreement_row(agreement: Agreement, fig: AgreementFigures | None, firing: Sequence[AlertState]) -> str:
    count = sum(1 for a in firing if a.agreement_id == agreement.agreement_id)
    who = (
        f'<b>{_e(agreement.funder_name)}</b><br><span class="sub">{_e(agreement.agreement_id)} · '
        f"{_e(agreement.funder_level)} {_e(agreement.region_code)}<br>{_e(agreement.budget_source)} · "
        f"{_e(agreement.period_start.isoformat())} → {_e(agreement.period_end.isoformat())}</span>"
    )
    alerts_cell = f'<td class="num">{_n(count)}</td>'
    if fig is None:
        return (
            f'<tr><td class="who">{who}</td><td class="num">{_n(agreement.quota_workers)}</td>'
            f'<td colspan="6" class="none">no figures yet</td>{alerts_cell}</tr>'
        )
    over_budget = fig.committed_rupiah > fig.budget_rupiah
    share = f" ({fig.committed_rupiah / fig.budget_rupiah:.0%})" if fig.budget_rupiah else ""
    return (
        f'<tr><td class="who">{who}</td>'
        f'<td class="num">{_n(fig.quota)}</td>'
        f'<td class="num">{_n(fig.active)}<br><span class="sub">{_n(fig.at_risk)} in arrears</span></td>'
        f"<td>{_bar(fig)}</td>"
        f'<td class="num">{_n(fig.planned)}</td>'
        f'<td class="num">{_rp(fig.budget_rupiah)}</td>'
        f'<td class="num{" over-budget" if over_budget else ""}">{_rp(fig.committed_rupiah)}{_e(share)}</td>'
        f'<td class="num">{_rp(fig.arrears_rupiah)}</td>'
        f"{alerts_cell}</tr>"
    )


def _bar(fig: AgreementFigures) -> str:
    if not fig.quota:
        return '<span class="none">no quota</span>'
    used = fig.active / fig.quota
    below_plan = fig.active < fig.planned * BELOW_PLAN_SHARE
    state = "over" if fig.active > fig.quota else "below" if below_plan else ""
    plan = min(fig.planned / fig.quota, 1.0)
    title = f"{_n(fig.active)} of {_n(fig.quota)} active; plan {_n(fig.planned)}"
    return (
        f'<div class="bar" title="{_e(title)}" role="img" aria-label="{_e(title)}">'
        f'<div class="fill {state}" style="width:{min(used, 1.0) * 100:.1f}%"></div>'
        f'<div class="plan" style="left:calc({plan * 100:.1f}% - 1px)"></div></div>'
        f'<span class="sub">{used * 100:.1f}% of quota</span>'
    )


def _alerts_table(firing: Sequence[AlertState], zone: timezone, runbook_base: str) -> str:
    if not firing:
        return '<p class="none">No alerts firing.</p>'
    rows = "".join(
        "<tr>"
        f'<td><span class="sev {_SEVERITY_CLASS[a.severity]}">{_e(a.severity)}</span></td>'
        f"<td>{_e(a.rule)}</td>"
        f"<td class='nowrap'>{_e(a.agreement_id or '—')}</td>"
        f"<td>{_e(_PERSONAL.sub('[redacted]', a.message))}</td>"
        f'<td class="num">{_e(_when(a.fired_at_ms, zone))}</td>'
        f"<td>{_runbook_link(runbook_base + a.runbook)}</td>"
        "</tr>"
        for a in firing
    )
    return (
        "<table><thead><tr><th>Severity</th><th>Rule</th><th>Agreement</th><th>Message</th>"
        f"<th>Firing since</th><th>Runbook</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _runbook_link(href: str) -> str:
    scheme = _SCHEME.match(href)
    if scheme and scheme.group(0).lower() not in ("http:", "https:"):
        return _e(href)
    return f'<a href="{_e(href)}">{_e(href.rsplit("/", 1)[-1])}</a>'


def _when(ms: int, zone: timezone) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(zone)
    offset = zone.utcoffset(None) // timedelta(minutes=1)
    hours, minutes = divmod(abs(offset), 60)
    label = f"UTC{'-' if offset < 0 else '+'}{hours}" + (f":{minutes:02d}" if minutes else "")
    return f"{moment:%Y-%m-%d %H:%M:%S} {'UTC' if offset == 0 else label}"


def _n(value: int) -> str:
    return f"{value:,}".replace(",", ".")


def _rp(value: int) -> str:
    return "Rp " + _n(value)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)
