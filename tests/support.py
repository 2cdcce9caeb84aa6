"""Helpers for integration tests: real Kafka producers/consumers and `recon` subprocesses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy import create_engine, text

from factories import NIK_KEY

REPO = Path(__file__).resolve().parents[1]
RECON = [sys.executable, "-m", "recon"]


def service_env(overrides: Mapping[str, Any], database_url: str, **extra: Any) -> dict[str, str]:
    """Environment for a `recon` subprocess pointed at a test's topics and database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECON_")}
    for key, value in {**overrides, **extra}.items():
        env[f"RECON_{key.upper()}"] = str(value)
    env["RECON_DATABASE_URL"] = database_url
    env.setdefault("RECON_NIK_HASH_KEY", NIK_KEY.decode())
    env.setdefault("RECON_CONSUMER_GROUP", f"g-{uuid.uuid4().hex[:8]}")
    env.setdefault("RECON_INGEST_HTTP_PORT", "0")  # tests run several services at once
    env.setdefault("RECON_RECONCILE_HTTP_PORT", "0")
    return env


def produce(bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes | None]]) -> int:
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=5)
    futures = [producer.send(topic, key=key, value=value) for key, value in messages]
    producer.flush()
    for future in futures:
        future.get(timeout=30)
    producer.close()
    return len(futures)


def consume_all(bootstrap: str, topic: str, *, timeout: float = 20.0, expect: int | None = None) -> list[Any]:
    """Every record on ``topic`` (all partitions) from the beginning to the current end."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout
        records: list[Any] = []
        while time.monotonic() < deadline:
            ends = consumer.end_offsets(tps)
            if all(consumer.position(tp) >= ends[tp] for tp in tps) and (
                expect is None or len(records) >= expect
            ):
                break
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def run_recon(
    env: Mapping[str, str], *args: str, timeout: float = 180, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RECON, *args], env=dict(env), input=stdin, capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def start_recon(env: Mapping[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*RECON, *args], env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    )


def wait_for(predicate: Any, *, timeout: float, interval: float = 0.2, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def kcat_produce(bootstrap: str, topic: str, key: bytes, value_file: Path) -> None:
    """Send one file as one message with kcat (librdkafka's CLI), keyed, to the Java client's partition."""
    kcat = shutil.which("kcat")
    assert kcat is not None, "kcat is missing: run scripts/ops-tools.sh (apt-get install -y kcat)"
    done = subprocess.run(
        [
            kcat,
            "-F", "/dev/null",  # no ~/.config/kcat.conf: only what is given here
            "-P",
            "-b", bootstrap,
            "-t", topic,
            "-k", key.decode(),
            "-X", "partitioner=murmur2_random",  # the Java client's partition for a key
            str(value_file),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "ERROR" not in done.stderr and "failed" not in done.stderr.lower(), done.stderr


def rows(url: str, query: str) -> list[Any]:
    """Every row of ``query`` on the database at ``url`` (a fresh engine, disposed after)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        out = list(conn.execute(text(query)))
    engine.dispose()
    return out
