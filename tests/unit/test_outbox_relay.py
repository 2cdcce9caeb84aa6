"""The outbox relay on a real SQLite ledger, with an in-memory topic standing in for the broker.

The case that matters: a flush that fails while the broker is away leaves its records in the
producer's buffer, and kafka-python delivers them once the broker is back. Whatever the relay does on
its next flush, each outbox row must reach the topic exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError

from recon.kafka.clients import close_producer
from recon.kafka.outbox import OUTBOX_ID_HEADER, OutboxRelay
from recon.ledger import Batch, Ledger, create_engine_for, upgrade
from recon.ledger import samples as s

TOPIC = "dead-letters"


@dataclass
class Record:
    partition: int
    offset: int
    headers: list[tuple[str, bytes]]


@dataclass
class Future:
    meta: Record | None = None

    def get(self, timeout: float) -> Record:
        if self.meta is None:
            raise KafkaTimeoutError("Timeout waiting for future")
        return self.meta


@dataclass
class Broker:
    """One partition of one topic, up or down."""

    up: bool = True
    log: list[Record] = field(default_factory=list)

    def outbox_ids(self) -> list[int]:
        return [int(dict(r.headers)[OUTBOX_ID_HEADER]) for r in self.log]


@dataclass
class Producer:
    """Buffers what it is sent and delivers it on flush, like kafka-python, while the broker is up."""

    broker: Broker
    buffer: list[tuple[list[tuple[str, bytes]], Future]] = field(default_factory=list)
    closed: bool = False

    def send(self, topic: str, *, key: Any, value: Any, headers: list[tuple[str, bytes]]) -> Future:
        future = Future()
        self.buffer.append((headers, future))
        return future

    def flush(self, timeout: float | None = None) -> None:
        if self.buffer and not self.broker.up:
            raise KafkaTimeoutError("Timeout waiting for future")
        for headers, future in self.buffer:
            future.meta = Record(0, len(self.broker.log), headers)
            self.broker.log.append(future.meta)
        self.buffer.clear()

    def close(self, timeout: float | None = None) -> None:
        self.flush(timeout)
        self.closed = True


@dataclass
class Found:
    offset: int


@dataclass
class Scanner:
    """A group-less consumer reading the one partition from where it is told."""

    broker: Broker
    position_: int = 0

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0}

    def assign(self, tps: list[TopicPartition]) -> None:
        pass

    def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.broker.log) for tp in tps}

    def offsets_for_times(self, times: dict[TopicPartition, int]) -> dict[TopicPartition, Any]:
        """Every record here is newer than any row's commit: the earliest offset, or None if empty."""
        return {tp: Found(0) if self.broker.log else None for tp in times}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.position_ = offset

    def position(self, tp: TopicPartition) -> int:
        return self.position_

    def poll(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Record]]:
        records = self.broker.log[self.position_ :]
        self.position_ = len(self.broker.log)
        return {TopicPartition(TOPIC, 0): records} if records else {}

    def close(self) -> None:
        pass


class Clock:
    def now_ms(self) -> int:
        return 1_750_000_000_000

    def monotonic(self) -> float:
        return 0.0


@pytest.fixture
def ledger(sqlite_url: str) -> Iterator[Ledger]:
    upgrade(sqlite_url)
    engine = create_engine_for(sqlite_url)
    try:
        yield Ledger(engine)
    finally:
        engine.dispose()


def relay_for(
    ledger: Ledger, broker: Broker, producer: Producer, scans: list[Scanner] | None = None
) -> OutboxRelay:
    """A relay on ``broker``; each recovery scanner it builds is appended to ``scans`` when given."""

    def scanner() -> Scanner:
        built = Scanner(broker)
        if scans is not None:
            scans.append(built)
        return built

    return OutboxRelay(
        ledger=ledger,
        producer=producer,
        make_scanner=scanner,
        kind="dead_letter",
        topic=TOPIC,
        clock=Clock(),
    )


def test_a_flush_interrupted_by_the_broker_publishes_each_row_once_when_it_is_back(ledger: Ledger) -> None:
    ledger.write_batch("g", Batch(outbox=[s.dead_letter(1), s.dead_letter(2)]))
    broker = Broker(up=False)
    relay = relay_for(ledger, broker, Producer(broker))

    with pytest.raises(KafkaTimeoutError):
        relay.flush()
    with pytest.raises(KafkaTimeoutError):  # still away: the retry must not resend the buffered rows
        relay.flush()
    broker.up = True
    relay.flush()

    assert sorted(broker.outbox_ids()) == [1, 2]
    assert ledger.pending_outbox("dead_letter", 10) == []


def test_rows_published_but_not_marked_before_a_crash_are_found_not_resent(ledger: Ledger) -> None:
    ledger.write_batch("g", Batch(outbox=[s.dead_letter(1), s.dead_letter(2)]))
    broker = Broker()
    crashed = Producer(broker)
    for row in ledger.pending_outbox("dead_letter", 10):  # what a process did before dying
        crashed.send(TOPIC, key=None, value=None, headers=[(OUTBOX_ID_HEADER, str(row.id).encode())])
    crashed.flush()

    restarted = relay_for(ledger, broker, Producer(broker))
    assert restarted.recover() == 2
    assert restarted.flush() == 0
    assert sorted(broker.outbox_ids()) == [1, 2]


def test_recovery_for_given_partitions_scans_only_when_one_of_them_has_a_pending_row(ledger: Ledger) -> None:
    ledger.write_batch("g", Batch(outbox=[s.dead_letter(1, partition=0), s.dead_letter(2, partition=1)]))
    broker = Broker()
    crashed = Producer(broker)  # the owner of partition 1 sent its row, then died before marking it
    for row in ledger.pending_outbox("dead_letter", 10, sources=[("enrolments", 1)]):
        crashed.send(TOPIC, key=None, value=None, headers=[(OUTBOX_ID_HEADER, str(row.id).encode())])
    crashed.flush()
    # ... and the owner of partition 0 sent and marked its own row after it, at a higher offset.
    ledger.mark_sent(
        [(r.id, 0, 99) for r in ledger.pending_outbox("dead_letter", 10, [("enrolments", 0)])], 1
    )
    scans: list[Scanner] = []
    relay = relay_for(ledger, broker, Producer(broker), scans)

    assert relay.recover(sources=[("enrolments", 0), ("enrolments", 2)]) == 0  # nothing of theirs pending
    assert scans == []
    assert relay.recover(sources=[("enrolments", 1)]) == 1  # its row was on the topic: marked, not resent
    assert len(scans) == 1
    assert relay.flush(sources=[("enrolments", 1)]) == 0
    assert broker.outbox_ids().count(2) == 1


def test_close_leaves_undelivered_rows_pending_for_the_next_process(ledger: Ledger) -> None:
    ledger.write_batch("g", Batch(outbox=[s.dead_letter(1)]))
    broker = Broker(up=False)
    producer = Producer(broker)
    relay = relay_for(ledger, broker, producer)
    with pytest.raises(KafkaTimeoutError):
        relay.flush()

    relay.close(timeout=0.1)  # must not raise: the service's own error is the one to show

    assert [row.message.source for row in ledger.pending_outbox("dead_letter", 10)] == [("enrolments", 0, 1)]


def test_close_producer_marks_a_producer_closed_even_when_its_flush_times_out() -> None:
    class Stuck:
        def __init__(self) -> None:
            self._closed = False
            self._sender = self
            self.forced = False

        def close(self, timeout: float) -> None:
            raise KafkaTimeoutError("Timeout waiting for future")

        def force_close(self) -> None:
            self.forced = True

    stuck = Stuck()
    assert close_producer(stuck, timeout=0.1) is False
    assert stuck.forced and stuck._closed
    assert close_producer(Producer(Broker()), timeout=0.1) is True
