"""Fault campaign: the Kafka broker stopped mid-stream, briefly and for longer than the retry budget.

These scenarios stop the broker, so they run on a broker of their own (free ports, a temporary
home), never on the session's shared one. A brief outage must be ridden out by the running service
on its own; an outage longer than ``RECON_RETRY_BUDGET_SECONDS`` must stop it loudly (non-zero exit,
one line naming the broker), and a service restarted once the broker is back must finish exactly.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from conftest import free_ports
from factories import enrolment_record
from faults import Lab, Outcome, Proc, Run, check_checkpoint, open_lab, own_broker, run_ingest_scenario
from recon.broker import LocalBroker
from recon.ledger import upgrade
from support import service_env, start_recon


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    with own_broker(tmp_path_factory.mktemp("faults-broker")) as started:
        yield started


@pytest.fixture
def lab(kafka_bootstrap: str, tmp_path: Path, broker: LocalBroker) -> Iterator[Lab]:
    broker.start()  # a no-op when it runs; restarts it should an earlier scenario have left it down
    with open_lab(kafka_bootstrap, tmp_path, None) as opened:
        yield opened


def broker_restart_scenario(lab: Lab, broker: LocalBroker, *, n_valid: int = 6000) -> Outcome:
    return run_ingest_scenario(
        lab,
        "broker restarted mid-stream",
        bootstrap=broker.bootstrap,
        db_url=lab.sqlite_url("broker-restart"),
        fault=restart_broker(broker, down_seconds=0.5),
        n_valid=n_valid,
        n_invalid=n_valid // 100,
        stream_seconds=4,
        batch_max_records=100,
        retry_budget_seconds=60,
    )


def broker_outage_scenario(
    lab: Lab, broker: LocalBroker, *, budget: float = 5, n_valid: int = 6000
) -> Outcome:
    return run_ingest_scenario(
        lab,
        f"broker down > retry budget ({budget:.0f} s)",
        bootstrap=broker.bootstrap,
        db_url=lab.sqlite_url("broker-outage"),
        fault=outlast_the_retry_budget(broker, budget),
        n_valid=n_valid,
        n_invalid=n_valid // 100,
        stream_seconds=4,
        batch_max_records=100,
        retry_budget_seconds=budget,
    )


def restart_broker(broker: LocalBroker, *, down_seconds: float) -> Callable[[Run], None]:
    def fault(run: Run) -> None:
        run.wait_stored(run.stream.distinct_valid // 3)
        consumer = run.consumers[0]
        started = time.monotonic()
        broker.stop()
        run.faults += 1
        time.sleep(down_seconds)
        broker.start()
        run.fault_ended = time.monotonic()
        noise = consumer.count('"logger": "kafka')
        run.notes.append(
            f"broker unreachable for {run.fault_ended - started:.1f} s (stop, wait, restart); "
            f"kafka-python wrote {noise} ERROR log lines meanwhile"
        )

    return fault


def outlast_the_retry_budget(
    broker: LocalBroker, budget: float, *, wait: float = 25
) -> Callable[[Run], None]:
    """The broker goes away at the worst moment: the consumer is frozen while dead letters it has
    committed wait in the outbox, the broker is stopped, and the consumer resumes into a dead broker."""

    def fault(run: Run) -> None:
        run.wait_stored(run.stream.distinct_valid // 3)
        consumer = run.consumers[0]
        pending = _freeze_with_dead_letters_pending(run, consumer)
        stopping = time.monotonic()
        broker.stop()
        consumer.signal(signal.SIGCONT)
        stopped = time.monotonic()
        run.faults += 1
        run.notes.append(
            f"broker stopped ({stopped - stopping:.1f} s) with {pending} dead letters waiting in the outbox"
        )
        code = consumer.wait(timeout=budget + wait)
        waited = time.monotonic() - stopped
        if code is None:
            run.problems.append(
                f"ingest still running {waited:.0f} s after the broker went away (retry budget "
                f"{budget:.0f} s): it should exit non-zero with a message naming the broker"
            )
            consumer.kill()
        else:
            line = consumer.last_line()
            run.notes.append(f"ingest exited {code} {waited:.1f} s after the broker went away: {line}")
            if code == 0 or not line.startswith("recon:") or not _names_the_broker(line):
                run.problems.append(
                    f"ingest exited {code} without a one-line message naming the broker: {line}"
                )
        run.retire(consumer)
        starting = time.monotonic()
        broker.start()
        run.notes.append(f"broker started again in {time.monotonic() - starting:.1f} s")
        admin = KafkaAdminClient(bootstrap_servers=run.bootstrap.split(","), client_id="faults-check")
        try:
            check_checkpoint(run, admin)
        finally:
            admin.close()
        run.start_consumer()
        run.fault_ended = time.monotonic()

    return fault


def _freeze_with_dead_letters_pending(run: Run, consumer: Proc) -> int:
    """SIGSTOP the consumer at an instant when dead letters it committed are not on the topic yet (so
    it must publish them to a broker about to vanish), or at a random instant after 300 tries; how many."""
    topic = run.topics.dead_letters
    probe = KafkaConsumer(bootstrap_servers=run.bootstrap.split(","), client_id="faults-probe")
    try:
        tps = [TopicPartition(topic, p) for p in sorted(probe.partitions_for_topic(topic) or [])]
        for _ in range(300):
            consumer.signal(signal.SIGSTOP)
            sent, pending = run.view.outbox("dead_letter")
            if pending and sum(probe.end_offsets(tps).values()) == sent:
                return int(pending)
            consumer.signal(signal.SIGCONT)
            time.sleep(0.005)
    finally:
        probe.close()
    consumer.signal(signal.SIGSTOP)
    return 0


def _names_the_broker(line: str) -> bool:
    return "broker" in line.lower() or "kafka" in line.lower()


def test_broker_restarted_mid_stream_ingest_resumes_by_itself_exactly(lab: Lab, broker: LocalBroker) -> None:
    outcome = broker_restart_scenario(lab, broker)
    print(outcome)

    assert outcome.ok, outcome.explain()
    assert outcome.stored == 6000 and outcome.dead_lettered == 60


def test_broker_down_longer_than_the_retry_budget_fails_loudly_then_a_restart_finishes_exactly(
    lab: Lab, broker: LocalBroker
) -> None:
    outcome = broker_outage_scenario(lab, broker)
    print(outcome)

    assert outcome.ok, outcome.explain()
    assert outcome.stored == 6000 and outcome.dead_lettered == 60


def test_no_broker_at_start_is_retried_then_one_line_naming_the_address(
    tmp_path: Path, sqlite_url: str
) -> None:
    """A service or command started before its broker retries for the budget, then stops with the
    CLI's one line (not a kafka-python traceback), naming the address it could not reach."""
    (port,) = free_ports(1)  # nothing listens there
    upgrade(sqlite_url)
    records = tmp_path / "one.jsonl"
    records.write_text(json.dumps(enrolment_record(), default=str) + "\n")
    env = service_env({"kafka_bootstrap_servers": f"127.0.0.1:{port}", "retry_budget_seconds": 1}, sqlite_url)
    commands = {
        "ingest": ["ingest", "--idle-exit", "1"],
        "publish": ["publish", "--subject", "enrolment", str(records)],
    }
    running = {name: start_recon(env, *args) for name, args in commands.items()}

    for name, process in running.items():
        _, stderr = process.communicate(timeout=180)
        last = stderr.strip().splitlines()[-1]
        assert process.returncode == 3, (name, stderr[-2000:])
        assert last.startswith("recon: connect a ") and f"127.0.0.1:{port}" in last, (name, last)
        assert "RECON_KAFKA_BOOTSTRAP_SERVERS" in last
        assert "Traceback" not in stderr, (name, stderr[-2000:])
