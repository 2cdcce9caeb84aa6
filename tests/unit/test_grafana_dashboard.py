"""deploy/grafana: the dashboard queries only metrics that exist, through the provisioned datasource."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_prometheus_rules import (
    BUILT_IN_SERIES,
    alert_rules,
    known_series,
    metric_names_in,
    recording_rule_names,
)

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # panels inside collapsed rows
    return found


def exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of every panel."""
    return [(p["title"], t["expr"]) for p in panels(dashboard) for t in p.get("targets", [])]


def datasource_uid() -> str:
    config = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = config["datasources"]
    assert source["type"] == "prometheus"
    return str(source["uid"])


@pytest.fixture(params=DASHBOARDS, ids=lambda p: p.name)
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


def test_there_is_a_dashboard() -> None:
    assert [p.name for p in DASHBOARDS] == ["rentan-recon.json"]


def test_every_panel_queries_only_declared_metrics_or_recording_rules(dashboard: dict[str, Any]) -> None:
    allowed = known_series() | recording_rule_names() | BUILT_IN_SERIES
    queries = exprs(dashboard)
    assert queries
    for title, expr in queries:
        names = metric_names_in(expr)
        assert names, f"panel {title!r} queries no metric: {expr}"
        assert names <= allowed, f"panel {title!r} uses unknown {sorted(names - allowed)}"


def test_template_variables_read_declared_metrics(dashboard: dict[str, Any]) -> None:
    for variable in dashboard["templating"]["list"]:
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query)
        assert match, f"variable {variable['name']}: unexpected query {query}"
        assert match.group(1) in known_series()


def test_every_panel_uses_the_provisioned_datasource(dashboard: dict[str, Any]) -> None:
    uid = datasource_uid()
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid, panel["title"]


def test_layout_is_sane(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    cells: set[tuple[int, int]] = set()
    for panel in panels(dashboard):
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, panel["title"]
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not area & cells, f"panel {panel['title']!r} overlaps another"
        cells |= area
        if panel["type"] != "row":
            assert panel["title"] and panel["targets"], panel["id"]


def test_the_dashboard_shows_what_operations_and_on_call_need(dashboard: dict[str, Any]) -> None:
    used = set().union(*(metric_names_in(expr) for _, expr in exprs(dashboard)))
    needed = {
        "recon_agreement_active_workers",  # coverage per agreement...
        "recon_agreement_quota_workers",  # ...against quota
        "recon_agreement_planned_workers",  # ...and plan
        "recon_agreement_projected_spend_rupiah",
        "recon_agreement_budget_rupiah",
        "recon:messages_consumed:rate5m",  # throughput
        "recon:consumer_lag_messages:sum",  # lag
        "recon_messages_dead_lettered_total",  # dead letters by reason
        "recon_alerts_firing",  # coverage alerts
        "ALERTS",  # on-call alerts
        "recon:retries:rate5m",  # retries
        "recon_batch_duration_seconds_bucket",  # batch latency
    }
    assert needed <= used
    reasons = [e for _, e in exprs(dashboard) if "recon_messages_dead_lettered_total" in e]
    assert any("reason_code" in e for e in reasons), "dead letters are not broken down by reason"


def test_every_recording_rule_is_used_by_an_alert_or_a_panel() -> None:
    used = {name for rule in alert_rules() for name in metric_names_in(rule["expr"])}
    for path in DASHBOARDS:
        used |= {name for _, expr in exprs(load(path)) for name in metric_names_in(expr)}
    assert recording_rule_names() - used == set()


def test_the_provider_loads_the_folder_compose_mounts() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "rentan-recon.yml").read_text())
    (entry,) = provider["providers"]
    compose = yaml.safe_load((GRAFANA.parent / "compose.yaml").read_text())
    volumes = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{entry['options']['path']}:ro" in volumes
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in volumes
