"""A broker outage under a running `recon ingest`: on-call sees it in a few kafka lines with counts,
not one ERROR line per reconnect (kafka-python logs each failure every time it retries, per connection).

The broker is one of its own (free ports, a temporary home), since the test stops it.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from conftest import make_topics
from factories import enrolment_record
from faults import LedgerView, Proc, own_broker
from recon.broker import LocalBroker
from recon.ledger import upgrade
from support import run_recon, service_env, wait_for

OUTAGE_SECONDS = 15  # long enough for dozens of reconnect failures; what is asserted is a count


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    with own_broker(tmp_path_factory.mktemp("library-logs-broker")) as started:
        yield started


def _kafka_lines(stderr: list[str]) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in stderr if line.startswith("{")]
    return [e for e in entries if e["logger"] == "kafka" or e["logger"].startswith("kafka.")]


def _publish_one(env: dict[str, str], folder: Path) -> None:
    record = enrolment_record(occurred_at=1_767_225_600_000, coverage_start=date(2026, 1, 1))
    path = folder / "one.jsonl"
    path.write_text(json.dumps(record, default=str) + "\n")
    published = run_recon(env, "publish", "--subject", "enrolment", str(path))
    assert published.returncode == 0, published.stderr


def test_a_broker_outage_is_a_few_kafka_lines_with_counts_and_ingest_rides_it_out(
    broker: LocalBroker, tmp_path: Path, sqlite_url: str
) -> None:
    upgrade(sqlite_url)
    topics = make_topics(broker.bootstrap, partitions=2)
    settings = {
        **topics.overrides(),
        "retry_budget_seconds": 300,  # the outage is ridden out, not reported
        "library_log_interval_seconds": 3600,  # the whole test is one interval
    }
    env = service_env(settings, sqlite_url)
    ingest = Proc(env, "ingest")
    view = LedgerView(sqlite_url)
    try:
        wait_for(lambda: ingest.count("partitions assigned") > 0, timeout=120, what="ingest to be assigned")
        broker.stop()
        time.sleep(OUTAGE_SECONDS)  # the outage itself; nothing below depends on how long it took
        broker.start()
        _publish_one(env, tmp_path)
        wait_for(lambda: view.try_(view.stored) == 1, timeout=120, what="ingest to store after the outage")
        assert ingest.terminate() == 0, ingest.tail()
    finally:
        if ingest.alive():
            ingest.kill()
        view.close()

    lines = _kafka_lines(ingest.stderr)
    plain = [e for e in lines if "repeated" not in e]
    counts = [e for e in lines if "repeated" in e]
    assert plain, "the outage must show in the log"
    assert {e["level"] for e in lines} == {"error"}
    # Within one interval a cause is one line, and at most one count: the same failure text (numbers
    # aside) never shows twice, however many reconnects failed.
    texts = Counter((e["logger"], re.sub(r"\d+", "N", e["msg"])) for e in plain)
    assert max(texts.values()) == 1, texts.most_common(3)
    assert len(counts) <= len(plain)
    held = sum(int(e["repeated"]) for e in counts)
    assert held > len(lines), (held, len(lines))  # more lines were held back than shown
    for entry in counts:
        assert re.search(r" \(repeated (once|\d+ times) in the last \d+ s\)$", entry["msg"]), entry
