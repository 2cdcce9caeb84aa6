"""reconcile.status_page.render: what an operations team reads at a glance, and what it must never show."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser

from test_reconcile_builders import agreement, figures

from reconcile.domain import (
    AlertState,
    AlertStatus,
    Level,
    Severity,
    Signal,
    ThresholdPolicy,
    Thresholds,
    evolve,
)
from reconcile.status_page import CONTENT_TYPE, render

NOW_MS = int(datetime(2025, 6, 20, 2, 30, tzinfo=UTC).timestamp() * 1000)
NIK = "7271011506900001"
WORKER_KEY = "0123456789abcdef0123456789abcdef"


class Page(HTMLParser):
    """The parts of the page a test asserts on: table rows as cell texts, links, tags and attributes."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.links: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._cell: list[str] | None = None
        self._text: list[str] = []
        self.feed(text)

    @property
    def text(self) -> str:
        return " ".join(self._text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "a":
            self.links.append(dict(attrs).get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        self._text.append(data)
        if self._cell is not None:
            self._cell.append(data + " ")

    def row(self, first_cell_contains: str) -> list[str]:
        return next(r for r in self.rows if r and first_cell_contains in r[0])


def signal(
    rule: str, agreement_id: str | None, severity: Severity, message: str, subject: str = ""
) -> Signal:
    return Signal(
        rule=rule,
        subject=subject or f"agreement:{agreement_id}",
        level=Level.BREACH,
        severity=severity,
        observed=1,
        expected=0,
        message=message,
        agreement_id=agreement_id,
    )


def firing(*signals: Signal) -> list[AlertState]:
    states, _ = evolve({}, signals, NOW_MS - 600_000, ThresholdPolicy())
    return list(states.values())


PALU = agreement("PKS-7271-2025", funder="Pemkot Palu", quota=45_778, budget=9_228_844_800)
SULTENG = agreement("PKS-72-2025", funder="Pemprov Sulawesi Tengah", region="72", quota=100_402)
AGREEMENTS = {a.agreement_id: a for a in (PALU, SULTENG)}
FIGURES = {
    "PKS-7271-2025": figures(
        agreement_id="PKS-7271-2025",
        quota=45_778,
        active=47_001,
        at_risk=1_204,
        planned=45_000,
        budget_rupiah=9_228_844_800,
        committed_rupiah=9_500_000_000,
        arrears_rupiah=20_227_200,
    ),
    "PKS-72-2025": figures(
        agreement_id="PKS-72-2025", quota=100_402, active=60_000, planned=90_000, budget_rupiah=20_240_563_200
    ),
}


def page(alerts: list[AlertState] | None = None, **kwargs: object) -> Page:
    return Page(render(FIGURES, AGREEMENTS, alerts or [], generated_at_ms=NOW_MS, **kwargs))  # type: ignore[arg-type]


def test_one_row_per_agreement_with_its_figures_in_indonesian_grouping() -> None:
    palu = page().row("Pemkot Palu")
    assert "PKS-7271-2025" in palu[0]
    quota, active, utilisation, planned, budget, spend, arrears, alert_count = palu[1:]
    assert quota == "45.778"
    assert active == "47.001 1.204 in arrears"
    assert utilisation == "102.7% of quota"
    assert planned == "45.000"
    assert budget == "Rp 9.228.844.800"
    assert spend == "Rp 9.500.000.000 (103%)"
    assert arrears == "Rp 20.227.200"
    assert alert_count == "0"
    assert page().row("Pemprov Sulawesi Tengah")[3] == "59.8% of quota"


def test_bar_colour_and_plan_marker_follow_quota_and_plan() -> None:
    styles = [(attrs.get("class"), attrs.get("style")) for tag, attrs in page().tags if tag == "div"]
    fills = [s for s in styles if s[0] and s[0].startswith("fill")]
    plans = [s[1] for s in styles if s[0] == "plan"]
    # Rows are sorted by agreement id: PKS-72 (below plan) then PKS-7271 (over quota, bar capped at 100%).
    assert fills == [("fill below", "width:59.8%"), ("fill over", "width:100.0%")]
    assert plans == ["left:calc(89.6% - 1px)", "left:calc(98.3% - 1px)"]


def test_projected_spend_over_budget_is_flagged() -> None:
    cells = [attrs.get("class") for tag, attrs in page().tags if tag == "td"]
    assert cells.count("num over-budget") == 1


def test_firing_alerts_are_listed_most_severe_first_with_runbook_links_and_counted_per_agreement() -> None:
    alerts = firing(
        signal("below_plan", "PKS-72-2025", Severity.WARNING, "PKS-72-2025 is 30,000 workers below plan."),
        signal("over_quota", "PKS-7271-2025", Severity.CRITICAL, "PKS-7271-2025 is over quota."),
        signal("branch_silent", None, Severity.WARNING, "Branch PALU sent nothing for 26 h.", "branch:PALU"),
    )
    shown = page(alerts, runbook_base="https://git.example.org/recon/blob/main/")
    listed = [r for r in shown.rows if r and r[0] in ("CRITICAL", "WARNING", "INFO")]
    assert [(r[0], r[1], r[2]) for r in listed] == [
        ("CRITICAL", "over_quota", "PKS-7271-2025"),
        ("WARNING", "below_plan", "PKS-72-2025"),
        ("WARNING", "branch_silent", "—"),
    ]
    assert listed[0][3] == "PKS-7271-2025 is over quota."
    assert listed[0][4] == "2025-06-20 02:20:00 UTC"
    assert "https://git.example.org/recon/blob/main/docs/runbooks/over_quota.md" in shown.links
    assert shown.row("Pemkot Palu")[-1] == "1"
    assert shown.row("Pemprov Sulawesi Tengah")[-1] == "1"
    assert "Critical alerts" in shown.text


def test_resolved_alerts_are_not_shown() -> None:
    at_once = ThresholdPolicy(Thresholds(resolve_after_ms=0))
    over = signal("over_quota", "PKS-7271-2025", Severity.WARNING, "over")
    states, _ = evolve({}, [over], NOW_MS, at_once)
    resolved, _ = evolve(states, [], NOW_MS + 60_000, at_once)
    assert [s.status for s in resolved.values()] == [AlertStatus.RESOLVED]
    shown = page(list(resolved.values()))
    assert "No alerts firing." in shown.text
    assert shown.row("Pemkot Palu")[-1] == "0"


def test_everything_is_escaped() -> None:
    evil = agreement("PKS-<b>", funder='<script>alert("x")</script>', quota=10)
    alerts = firing(signal("over_quota", "PKS-<b>", Severity.WARNING, "<img src=x onerror=alert(1)>"))
    text = render({}, {"PKS-<b>": evil}, alerts, generated_at_ms=NOW_MS)
    assert "<script" not in text and "<img" not in text and "PKS-<b>" not in text
    assert "PKS-&lt;b&gt;" in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text


def test_no_nik_or_worker_key_ever_reaches_the_page() -> None:
    alerts = firing(
        signal(
            "double_funding", "PKS-72-2025", Severity.CRITICAL, f"worker {NIK} / {WORKER_KEY} funded twice"
        )
    )
    text = render(FIGURES, AGREEMENTS, alerts, generated_at_ms=NOW_MS)
    assert NIK not in text and WORKER_KEY not in text
    assert "worker [redacted] / [redacted] funded twice" in text


def test_links_with_other_schemes_are_not_rendered_as_links() -> None:
    alerts = firing(signal("over_quota", "PKS-72-2025", Severity.WARNING, "over"))
    shown = page(alerts, runbook_base="javascript:alert(1)//")
    assert shown.links == []


def test_self_contained_read_only_and_refreshing() -> None:
    shown = page(firing(signal("over_quota", "PKS-72-2025", Severity.WARNING, "over")))
    tags = {tag for tag, _ in shown.tags}
    assert not tags & {"script", "link", "img", "iframe", "form", "input", "button"}
    assert ("meta", {"http-equiv": "refresh", "content": "10"}) in shown.tags
    assert all(not (href or "").startswith(("http:", "https:", "//")) for href in shown.links)
    assert CONTENT_TYPE == "text/html; charset=utf-8"


def test_generated_time_in_the_configured_zone() -> None:
    assert "Generated 2025-06-20 10:30:00 UTC+8" in page(utc_offset_minutes=480).text
    assert "Generated 2025-06-20 02:30:00 UTC" in page().text
    assert "UTC-3:30" in page(utc_offset_minutes=-210).text


def test_agreement_without_figures_and_empty_page() -> None:
    text = render({}, {"PKS-7271-2025": PALU}, [], generated_at_ms=NOW_MS)
    assert Page(text).row("Pemkot Palu")[1:] == ["45.778", "no figures yet", "0"]
    assert "No agreements loaded yet." in render({}, {}, [], generated_at_ms=NOW_MS)


def test_zero_quota_and_zero_budget_do_not_divide_by_zero() -> None:
    zero = agreement("PKS-0", quota=0, budget=0)
    fig = figures(agreement_id="PKS-0", quota=0, active=0, planned=0, budget_rupiah=0, committed_rupiah=0)
    row = Page(render({"PKS-0": fig}, {"PKS-0": zero}, [], generated_at_ms=NOW_MS)).row("Pemkot Palu")
    assert row[3] == "no quota"
    assert row[6] == "Rp 0"
