"""docs/metrics.md lists exactly the metrics recon.metrics declares, with their types and labels."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase
from test_prometheus_rules import declared_metrics, recording_rule_names

CATALOGUE = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
_EXPOSED_SUFFIX = {"counter": "_total", "info": "_info", "gauge": "", "histogram": "", "summary": ""}
_ROW = re.compile(r"^\| `(recon_\w+)` \| (\w+) \| ([^|]+) \| (\w+) \| (.+) \|$")


def documented() -> dict[str, tuple[str, tuple[str, ...], str]]:
    rows: dict[str, tuple[str, tuple[str, ...], str]] = {}
    for line in CATALOGUE.read_text().splitlines():
        match = _ROW.match(line)
        if match:
            name, kind, labels, service, meaning = match.groups()
            assert name not in rows, f"{name} listed twice"
            assert meaning.strip(), f"{name} has no meaning"
            rows[name] = (kind, tuple(re.findall(r"`(\w+)`", labels)), service)
    return rows


def exposed_name(metric: MetricWrapperBase) -> tuple[str, str]:
    family = metric.describe()[0]
    return family.name + _EXPOSED_SUFFIX[family.type], family.type


def test_the_catalogue_lists_every_declared_metric_and_nothing_else() -> None:
    declared = dict(exposed_name(m) for m in declared_metrics())
    assert set(documented()) == set(declared)
    assert len(declared) == len(declared_metrics()), "two declarations share a name"


def test_each_row_has_the_declared_type_and_labels() -> None:
    rows = documented()
    for metric in declared_metrics():
        name, kind = exposed_name(metric)
        doc_kind, doc_labels, service = rows[name]
        assert doc_kind == kind, name
        assert service in {"ingest", "reconcile", "both"}, name
        if kind != "info":  # an Info's keys are given when it is set, not declared
            assert doc_labels == tuple(metric._labelnames), name  # private, but the only source


def test_names_follow_prometheus_conventions() -> None:
    for metric in declared_metrics():
        name, kind = exposed_name(metric)
        assert name.startswith("recon_"), name
        assert (kind == "counter") == name.endswith("_total"), name
        assert not re.search(r"_(ms|milliseconds|minutes|hours)\b", name), f"{name}: use seconds"
        labels = set(metric._labelnames)
        assert not labels & {"nik", "worker", "worker_key", "name", "event_id"}, f"{name}: unbounded label"


def test_the_catalogue_lists_every_recording_rule() -> None:
    section = CATALOGUE.read_text().split("## Recording rules", 1)[1].split("##", 1)[0]
    assert set(re.findall(r"`(recon:[\w:]+)`", section)) == recording_rule_names()
