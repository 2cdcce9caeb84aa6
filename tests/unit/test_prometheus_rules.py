"""deploy/prometheus and deploy/alertmanager: valid for the real tools, unit-tested, in step with the code.

promtool and amtool come from Debian's prometheus and prometheus-alertmanager packages, which
scripts/ops-tools.sh installs; without them these tests fail (they are not skipped). Also holds the
helpers other deploy tests import (``metric_names_in``, ``known_series``): pytest puts this folder
on sys.path, as test_reconcile_builders relies on.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from recon import metrics
from reconcile.domain import Rule

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy" / "prometheus"
ALERTMANAGER = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
RUNBOOKS = REPO / "docs" / "runbooks"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
BUILT_IN_SERIES = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds"})

# --- helpers shared with test_grafana_dashboard --------------------------------------------------

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"inf", "nan", "atan2", "start", "end"}
)


def declared_metrics() -> list[MetricWrapperBase]:
    """Every metric object declared in recon.metrics."""
    return [v for v in vars(metrics).values() if isinstance(v, MetricWrapperBase)]


@cache
def known_series() -> frozenset[str]:
    """Every series name the services can expose: the declared metrics with their type's suffixes."""
    names = set()
    for metric in declared_metrics():
        for family in metric.describe():
            names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return frozenset(names)


def metric_names_in(expr: str) -> set[str]:
    """The metric (series) names a PromQL expression selects; also copes with Grafana's $variables."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # string literals
    text = re.sub(r"\$\{[^}]*\}|\$\w+", "", text)  # Grafana variables
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?", text):
        name, is_call = match.group(1), match.group(2)
        if not is_call and name.lower() not in _KEYWORDS:
            names.add(name)
    return names


def rule_groups() -> list[dict[str, Any]]:
    return [group for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]]


def recording_rule_names() -> set[str]:
    return {rule["record"] for group in rule_groups() for rule in group["rules"] if "record" in rule}


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run scripts/ops-tools.sh (installs Debian's prometheus tools)")
    return path


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


# --- the tools' own checks ------------------------------------------------------------------------


def test_prometheus_config_and_its_rule_files_are_valid() -> None:
    out = run(tool("promtool"), "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in out


def test_rule_files_pass_promtool_check_with_its_lint() -> None:
    run(tool("promtool"), "check", "rules", *map(str, RULE_FILES))


def test_rule_unit_tests_pass() -> None:
    assert RULE_TESTS, "no promtool unit tests in deploy/prometheus/tests"
    run(tool("promtool"), "test", "rules", *map(str, RULE_TESTS))


def test_alertmanager_config_is_valid() -> None:
    run(tool("amtool"), "check-config", str(ALERTMANAGER))


# --- coverage of the unit tests -------------------------------------------------------------------


def test_every_alert_is_unit_tested_both_firing_and_not_firing() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in alert_rules()}
    assert alerts - fired == set(), "alerts never tested firing"
    assert alerts - quiet == set(), "alerts never tested staying quiet"


def test_every_rule_file_is_loaded_by_the_config_and_the_unit_tests() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert sorted(PROMETHEUS / f for f in config["rule_files"]) == RULE_FILES
    for path in RULE_TESTS:
        loaded = yaml.safe_load(path.read_text())["rule_files"]
        assert sorted((path.parent / f).resolve() for f in loaded) == RULE_FILES, path.name


# --- in step with the code and the docs -----------------------------------------------------------


def test_every_metric_used_by_a_rule_is_declared_in_recon_metrics() -> None:
    allowed = known_series() | recording_rule_names() | BUILT_IN_SERIES
    for group in rule_groups():
        for rule in group["rules"]:
            unknown = metric_names_in(rule["expr"]) - allowed
            assert not unknown, f"{rule.get('alert') or rule.get('record')} uses undeclared {sorted(unknown)}"


def test_metric_name_extraction_reads_promql_as_prometheus_does() -> None:
    expr = (
        'sum by (topic) (rate(recon_messages_consumed_total{topic=~"a|b"}[5m])) / on (topic) '
        'group_left label_replace(recon:x:rate5m, "dst", "$1", "src", "(.*)") > bool 0 '
        "and histogram_quantile(0.95, sum by (le) "
        "(rate(recon_batch_duration_seconds_bucket[$__rate_interval])))"
    )
    assert metric_names_in(expr) == {
        "recon_messages_consumed_total",
        "recon:x:rate5m",
        "recon_batch_duration_seconds_bucket",
    }


def test_every_alert_has_severity_summary_and_its_own_runbook() -> None:
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert rule["annotations"]["runbook_url"] == f"docs/runbooks/{name}.md", name
        assert (REPO / rule["annotations"]["runbook_url"]).is_file(), f"no runbook page for {name}"


def test_coverage_alerts_link_the_runbook_of_the_rule_that_fired() -> None:
    coverage = [r for r in alert_rules() if r["alert"] == "ReconCoverageAlertFiring"]
    assert {r["labels"]["severity"] for r in coverage} == {"critical", "warning"}
    for rule in coverage:
        template = rule["annotations"]["rule_runbook_url"]
        assert template == "docs/runbooks/{{ $labels.rule }}.md"
        for domain_rule in Rule:
            assert (REPO / template.replace("{{ $labels.rule }}", domain_rule.value)).is_file()


@pytest.mark.parametrize(
    "page", sorted(p for p in RUNBOOKS.glob("*.md") if p.stem != "README"), ids=lambda p: p.stem
)
def test_every_runbook_page_says_what_it_means_how_to_confirm_and_what_to_do(page: Path) -> None:
    text = page.read_text()
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert headings[:3] == ["What it means", "How to confirm", "What to do"], page.name
    assert "```" in text, f"{page.name} gives no command to run"


def test_there_is_a_runbook_page_for_every_alert_and_every_coverage_rule_and_no_other() -> None:
    pages = {p.stem for p in RUNBOOKS.glob("*.md")} - {"README"}
    expected = {r["alert"] for r in alert_rules()} | {rule.value for rule in Rule}
    assert pages == expected
