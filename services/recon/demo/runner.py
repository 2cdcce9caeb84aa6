"""`recon demo`: the whole story on this machine, through Kafka like real traffic.

Starts the local broker, creates this run's own topics, starts `recon ingest` and `recon reconcile`
as separate processes, publishes the scenario (recon.demo.scenario), waits until both services
have caught up, stops them with SIGTERM, and prints the coverage report, the alerts and the
dead letters by reason. Every run is fresh: its own topics and its own database file.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from recon.demo.scenario import Scenario, build
from recon.errors import PermanentFault
from recon.settings import Settings


@dataclass(frozen=True, slots=True)
class DemoResult:
    settings: Settings
    published: int
    invalid_sent: int
    seconds: float


def run_demo(base: Settings, *, work_dir: Path, scale: float, console: Console) -> DemoResult:
    started = time.monotonic()
    settings = _demo_settings(base, work_dir)
    console.print(f"[bold]rentan-recon demo[/] — scenario scale {scale:g}, work folder {work_dir}")
    bootstrap = _start_broker(base, console)
    settings = settings.model_copy(update={"kafka_bootstrap_servers": bootstrap})
    from recon.kafka.topics import ensure_topics
    from recon.ledger import upgrade

    ensure_topics(bootstrap, settings)
    upgrade(settings.database_url_with_password())
    today = datetime.now(UTC).date()
    scenario = build(today, scale=scale)
    env = _service_env(settings, work_dir)
    services = {name: _spawn(name, env, work_dir) for name in ("ingest", "reconcile")}
    try:
        published, invalid = _publish(scenario, settings, console)
        _wait_caught_up(settings, console, services)
    finally:
        for proc in services.values():
            _stop(proc)
    return DemoResult(settings, published, invalid, time.monotonic() - started)


def _demo_settings(base: Settings, work_dir: Path) -> Settings:
    work_dir.mkdir(parents=True, exist_ok=True)
    run = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    db = work_dir / f"demo-{run}.db"
    prefix = f"demo-{run}."
    return base.model_copy(
        update={
            "database_url": type(base.database_url)(f"sqlite:///{db}"),
            "database_password_file": None,  # a SQLite file takes no password
            "database_password": None,
            "nik_hash_key": type(base.database_url)(secrets.token_hex(32)),
            "consumer_group": f"{prefix}ingest",
            "topic_enrolments": prefix + base.topic_enrolments,
            "topic_claims": prefix + base.topic_claims,
            "topic_agreements": prefix + base.topic_agreements,
            "topic_branch_totals": prefix + base.topic_branch_totals,
            "topic_alerts": prefix + base.topic_alerts,
            "topic_dead_letters": prefix + base.topic_dead_letters,
            "reconcile_full_pass_seconds": 5.0,
            # The run lasts minutes, not days: let an alert resolve 3 s after its condition cleared.
            "alert_thresholds": {"default": {"resolve_after_ms": 3000}},
            "ingest_http_port": 0,
            "reconcile_http_port": 0,
        }
    )


def _start_broker(settings: Settings, console: Console) -> str:
    from recon.broker import LocalBroker

    with console.status("starting the local Apache Kafka broker (first run fetches its jars)…"):
        address = LocalBroker(home=settings.broker_home).start()
    console.print(f"broker serving on {address}")
    return address


def _service_env(settings: Settings, work_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECON_")}
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": settings.kafka_bootstrap_servers,
        "database_url": settings.database_url.get_secret_value(),
        "nik_hash_key": settings.nik_hash_key.get_secret_value() if settings.nik_hash_key else "",
        "consumer_group": settings.consumer_group,
        "reconcile_full_pass_seconds": settings.reconcile_full_pass_seconds,
        "ingest_http_port": 0,
        "reconcile_http_port": 0,
        "schemas_dir": settings.schemas_dir,
        "alert_thresholds": json.dumps(settings.alert_thresholds),
    }
    for name in ("enrolments", "claims", "agreements", "branch_totals", "alerts", "dead_letters"):
        values[f"topic_{name}"] = getattr(settings, f"topic_{name}")
    env.update({f"RECON_{k.upper()}": str(v) for k, v in values.items()})
    return env


def _spawn(command: str, env: dict[str, str], work_dir: Path) -> subprocess.Popen[bytes]:
    log = (work_dir / f"{command}.log").open("wb")
    # Our own interpreter running our own module with a fixed sub-command: no untrusted input.
    return subprocess.Popen([sys.executable, "-m", "recon", command], env=env, stdout=log, stderr=log)  # noqa: S603


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _publish(scenario: Scenario, settings: Settings, console: Console) -> tuple[int, int]:
    """Send everything through the publishing pipeline `recon publish` uses (records encoded in
    worker processes, sent in order by this one); returns (messages sent, of which invalid)."""
    from recon.avro import SchemaCatalogue
    from recon.backfill.jobs import Job, Worker, WorkerSpec
    from recon.backfill.pipeline import (
        CHUNK_LINES,
        PUBLISH_PRODUCER_OPTIONS,
        AckedSender,
        Preparing,
    )
    from recon.kafka.clients import close_producer, make_producer

    catalogue = SchemaCatalogue.load(settings.schemas_dir)
    spec = WorkerSpec(
        schemas_dir=settings.schemas_dir,
        max_message_bytes=settings.max_message_bytes,
        config=settings.domain(),
        now_ms=0,  # the demo sends as is: its invalid events are there to be dead-lettered
        validate=False,
    )
    plan = [
        ("agreement", settings.topic_agreements, scenario.agreements),
        ("enrolment", settings.topic_enrolments, scenario.enrolments),
        ("claim", settings.topic_claims, scenario.claims),
        ("branch-totals", settings.topic_branch_totals, scenario.branch_totals),
    ]
    total = sum(len(records) for _, _, records in plan)
    sent = 0
    started = time.monotonic()
    # One worker, forked before the producer's and the progress bar's threads start: ingest and
    # reconcile run alongside on the same cores (measured: 124 s with one worker, 156 s with two).
    with Preparing(spec, jobs=1, worker=Worker(spec, catalogue)) as preparing:
        producer = make_producer(settings, client_id="recon-demo", **PUBLISH_PRODUCER_OPTIONS)
        try:
            with _progress(console) as progress:
                task = progress.add_task("publishing the scenario", total=total)
                for subject, topic, records in plan:
                    sender = AckedSender(producer, topic)
                    jobs = (
                        Job(
                            kind="records",
                            subject=subject,
                            first=start + 1,
                            data=records[start : start + CHUNK_LINES],
                            count=len(records[start : start + CHUNK_LINES]),
                            partitions=sender.partitions,
                        )
                        for start in range(0, len(records), CHUNK_LINES)
                    )
                    for job, outcome in preparing.outcomes(jobs):
                        sender.send(job, outcome)
                        sender.settle()
                        sent += len(outcome.messages)
                        progress.update(task, completed=sent)
                    sender.drain()
                    if sender.acknowledged != len(records):
                        raise PermanentFault(
                            f"only {sender.acknowledged} of {len(records)} {subject} events were acknowledged"
                        )
                    if subject == "agreement":
                        time.sleep(
                            1.0
                        )  # agreements first, as a branch would have them signed before enrolling
            seconds = time.monotonic() - started
            invalid = [
                catalogue.encode("enrolment", r) for r in scenario.invalid_enrolments
            ] + scenario.malformed
            for value in invalid:
                producer.send(settings.topic_enrolments, key=b"demo-invalid", value=value)
            producer.flush()
        finally:
            close_producer(producer, timeout=10)
    console.print(
        f"published {sent:,} events in {seconds:.0f} s ({sent / max(seconds, 1e-9):,.0f}/s) "
        f"and {len(invalid)} malformed or invalid messages"
    )
    return sent + len(invalid), len(invalid)


def _wait_caught_up(
    settings: Settings, console: Console, services: dict[str, subprocess.Popen[bytes]]
) -> None:
    """Until ingest has stored offsets at the end of every partition and reconcile has folded it all."""
    from kafka import TopicPartition

    from recon.kafka.clients import make_consumer
    from recon.ledger import Ledger, create_engine_for
    from reconcile.store import ReconcileStore

    engine = create_engine_for(settings.database_url_with_password())
    ledger, store = Ledger(engine), ReconcileStore(engine, holder="demo-observer")
    probe = make_consumer(settings, group_id=None, client_id="recon-demo-probe")
    tps = [
        TopicPartition(t, p)
        for t in settings.data_topics()
        for p in sorted(probe.partitions_for_topic(t) or [])
    ]
    ends = {(tp.topic, tp.partition): n for tp, n in probe.end_offsets(tps).items()}
    probe.close()
    total = sum(ends.values())
    deadline = time.monotonic() + 900
    with _progress(console) as progress:
        task = progress.add_task("ingest and reconcile catching up", total=total)
        while True:
            for name, proc in services.items():
                if proc.poll() is not None:
                    raise PermanentFault(f"`recon {name}` exited early: see {name}.log in the work folder")
            stored = ledger.stored_offsets(settings.consumer_group, ends)
            done = sum(min(stored.get(tp, 0), end) for tp, end in ends.items())
            progress.update(task, completed=done)
            if done >= total and not store.pending_batches(limit=1):
                break
            if time.monotonic() > deadline:
                raise PermanentFault(
                    "the services did not catch up in 15 minutes: see the logs in the work folder"
                )
            time.sleep(0.5)
    time.sleep(settings.reconcile_full_pass_seconds + 1)  # one more full evaluation after the last fold
    engine.dispose()


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def dead_letter_reasons(settings: Settings) -> Counter[str]:
    """Dead letters of this run by reason code (headers only: never the payload, which may hold a NIK)."""
    from kafka import TopicPartition

    from recon.kafka.clients import make_consumer

    consumer = make_consumer(settings, group_id=None, client_id="recon-demo-dlq")
    try:
        tps = [
            TopicPartition(settings.topic_dead_letters, p)
            for p in sorted(consumer.partitions_for_topic(settings.topic_dead_letters) or [])
        ]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        reasons: Counter[str] = Counter()
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=1000).values():
                for r in records:
                    reasons[dict(r.headers).get("reason_code", b"?").decode()] += 1
        return reasons
    finally:
        consumer.close()
