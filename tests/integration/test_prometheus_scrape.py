"""A real Prometheus server (Debian's binary, from scripts/ops-tools.sh) scrapes a recon.http endpoint
serving the real metrics registry, and loads the project's recording and alerting rules."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import free_ports
from recon import metrics
from recon.http import HttpServer, Readiness, serve

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules"
JOB = "recon-ingest"


def api(base: str, path: str, **params: str) -> Any:
    url = f"{base}/api/v1/{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=5) as response:
        answer = json.loads(response.read())
    assert answer["status"] == "success", answer
    return answer["data"]


def wait_for(what: str, probe: Callable[[], Any], log: Path, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = probe()
        except OSError:  # not listening yet
            value = None
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}; prometheus log:\n{log.read_text()[-3000:]}")


@pytest.fixture
def endpoint() -> Iterator[HttpServer]:
    metrics.RETRIES.labels("database")  # a labelled series exists from the start, at 0
    with serve("127.0.0.1", 0, readiness=lambda: Readiness(())) as server:
        yield server


@pytest.fixture
def prometheus(tmp_path: Path, endpoint: HttpServer) -> Iterator[tuple[str, Path]]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: run scripts/ops-tools.sh (installs Debian's prometheus)")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES / "recording.yml"), str(RULES / "alerts.yml")],
        "scrape_configs": [
            {"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{endpoint.port}"]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    (port,) = free_ports(1)
    log = tmp_path / "prometheus.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_prometheus_scrapes_recon_metrics_and_evaluates_the_rules(prometheus: tuple[str, Path]) -> None:
    base, log = prometheus

    def up() -> bool:
        result = api(base, "query", query=f'up{{job="{JOB}"}}')["result"]
        return bool(result) and result[0]["value"][1] == "1"

    wait_for("the target to be up", up, log)

    def series(query: str) -> Callable[[], list[Any]]:
        return lambda: api(base, "query", query=query)["result"]

    (histogram,) = wait_for(
        "a recon histogram", series(f'recon_batch_duration_seconds_count{{job="{JOB}"}}'), log
    )
    assert histogram["metric"]["instance"].startswith("127.0.0.1:")
    (retries,) = wait_for(
        "a labelled recon counter", series('recon_retries_total{dependency="database"}'), log
    )
    assert retries["value"][1] == "0"

    target = next(t for t in api(base, "targets")["activeTargets"] if t["labels"]["job"] == JOB)
    assert (target["health"], target["lastError"]) == ("up", "")

    def evaluated() -> list[dict[str, Any]]:
        groups = api(base, "rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if rules and all(r["lastEvaluation"] > "2000" for r in rules) else []

    rules = wait_for("every rule to be evaluated", evaluated, log)
    assert {r["health"] for r in rules} == {"ok"}, [r for r in rules if r["health"] != "ok"]
    names = {r["name"] for r in rules}
    assert {"recon:messages_consumed:rate5m", "ReconServiceDown", "ReconCoverageAlertFiring"} <= names

    # The ingest target is up (before its first scrape it was absent too); no reconcile target exists
    # here, which the rules notice: pending for 5 minutes before it would fire.
    def service_down() -> set[tuple[str, str, str]]:
        alerts = api(base, "alerts")["alerts"]
        down = {
            (a["labels"]["job"], a["labels"]["reason"], a["state"])
            for a in alerts
            if a["labels"]["alertname"] == "ReconServiceDown"
        }
        return down if down == {("recon-reconcile", "no_target", "pending")} else set()

    wait_for("ReconServiceDown pending for the missing reconcile job only", service_down, log)
