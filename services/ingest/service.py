"""The ingest loop: poll a batch, process it, queue it for the writer thread; the writer commits
effects and offsets together (through the ledger writer process, or itself: ingest.writer_process,
RECON_INGEST_WRITER); then Kafka is told.

Checkpoint order (and what a restart does if the process dies after each step; docs/architecture.md):
1. poll                              -> nothing written; the batch is read again.
2. decode, validate, guard, queue    -> nothing written; every queued batch is read again (the
   (up to ingest_write_queue_depth      ledger's offsets are still those of the last commit).
   batches wait for the writer)
3. ledger transaction (events, dead letters into the outbox, offsets), one per batch, in poll order
                                     -> on assignment the consumer seeks to the stored offsets, so
                                        the batch is not read again; pending dead letters are sent
                                        by the outbox relay (see recon.kafka.outbox).
4. dead letters sent and marked      -> nothing pending.
5. offsets committed to Kafka        -> only for lag monitoring; the database offsets rule.
Before partitions are revoked, and before exiting, the loop waits for the writer to finish what it
holds, so a new owner seeking to the ledger's offsets never races an old write. A writer error
(permanent, or past the retry budget) stops the service: nothing queued after it is written.
Should a seek ever be missed, event ids and the outbox's unique source key still make a replay
change nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ingest.guard import DeadLetterGuard
from ingest.pipeline import Processed, Processor, RawMessage
from ingest.writer import BatchWriter
from ingest.writer_process import BatchWrites
from recon import metrics
from recon.clock import Clock
from recon.domain.validation import ValidationContext
from recon.errors import PermanentFault
from recon.health import Health
from recon.kafka.outbox import OutboxRelay
from recon.ledger import check_key_chain
from recon.retry import is_transient
from recon.settings import Settings

T = TypeVar("T")
log = logging.getLogger("recon.ingest")
DEAD_LETTER_SEND_SECONDS = 1.0  # while batches keep coming, dead letters are sent at least this often


@dataclass(frozen=True, slots=True)
class Queued:
    """A batch waiting for the writer: what it became, and when its processing started."""

    processed: Processed
    started: float


class IngestService:
    """Owns one consumer in the ingest group. Build with ``ingest.bootstrap.build``; call ``run``."""

    def __init__(
        self,
        *,
        settings: Settings,
        ledger: Any,
        consumer: Any,
        processor: Processor,
        relay: OutboxRelay,
        clock: Clock,
        writes: BatchWrites,
    ) -> None:
        self._s = settings
        self._ledger = ledger  # this process's reads: offsets, agreements, the outbox
        self._writes = writes  # batches: in a process of its own, or on the writer thread
        self._consumer = consumer
        self._processor = processor
        self._relay = relay
        self._clock = clock
        self._guard = DeadLetterGuard(
            window=settings.dlq_guard_window,
            min_messages=settings.dlq_guard_min_messages,
            max_ratio=settings.dlq_guard_max_ratio,
        )
        self._nik_key = settings.nik_key_chain()  # the first key, then any rotations' (docs/security.md)
        self._domain = settings.domain()
        self._listener_error: BaseException | None = None
        self._joined = False  # set once the group has handed us an assignment, even an empty one
        self._agreements: dict[str, Any] = {}
        self._agreements_loaded_at = float("-inf")
        self.health = Health(stall_after_seconds=settings.stall_after_seconds, now=clock.monotonic)
        self._observed_at = float("-inf")
        self._broker_down_since: float | None = None
        # Late-bound (a lambda, not self.commit), so a wrapper set on the instance is what runs.
        self._writer: BatchWriter[Queued] = BatchWriter(
            lambda queued: self.commit(queued), depth=settings.ingest_write_queue_depth
        )
        # Offsets the writer committed to the ledger, for the loop to tell Kafka (its client is not
        # thread-safe): the latest per partition, swapped out under the lock.
        self._committed_offsets: dict[tuple[str, int], int] = {}
        self._committed_lock = threading.Lock()
        self._unsent: set[tuple[str, int]] = set()  # the writer's: partitions with dead letters not sent yet
        self._sent_at = float("-inf")

    # --- lifecycle ---------------------------------------------------------------------------
    def run(self, *, stop: threading.Event, idle_exit: float | None = None) -> None:
        """Consume until ``stop`` is set, or until caught up and idle for ``idle_exit`` seconds."""
        from kafka import ConsumerRebalanceListener

        service = self

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            def on_partitions_revoked(self, revoked: Any) -> None:
                # Runs inside poll (kafka-python's IO thread, while the loop waits in poll): the writer
                # finishes what it holds before a new owner seeks to the ledger's offsets.
                try:
                    service._writer.drain()
                except BaseException as exc:  # the loop re-raises it after this poll
                    service._listener_error = exc
                for tp in revoked:
                    metrics.CONSUMER_LAG.remove(tp.topic, str(tp.partition))
                service._count_assigned()
                log.info("partitions revoked", extra={"partitions": _names(revoked)})

            def on_partitions_assigned(self, assigned: Any) -> None:
                try:
                    service._on_assigned(assigned)
                except BaseException as exc:  # kafka-python would only log it; the loop re-raises
                    service._listener_error = exc

        self._ledger_call("check the ledger schema", self._ledger.check_schema_current)
        # Hashing NIKs under another key chain than the ledger's would file every worker as new.
        self._ledger_call("check the key chain", lambda: check_key_chain(self._ledger.engine, self._nik_key))
        self._writer.start()
        try:
            self._writes.wait_ready()  # a process spawned here; if it cannot start, we stop unjoined
            log.info("ledger writer ready", extra={"writer": self._s.ingest_writer, "pid": self._writes.pid})
            self._consumer.subscribe(list(self._s.data_topics()), listener=Listener())
            last_message = self._clock.monotonic()
            while not stop.is_set():
                polled = self._poll()
                if self._listener_error is not None:
                    raise self._listener_error
                self._writer.raise_if_failed()
                self._tell_kafka()
                messages = [m for records in polled.values() for m in records]
                if messages:
                    self.handle(messages)
                    last_message = self._clock.monotonic()
                self._observe()
                if (
                    not messages
                    and self._idle_for(last_message, idle_exit)
                    and self._writer.idle()
                    and self._caught_up()
                ):
                    log.info("caught up and idle: exiting", extra={"idle_seconds": idle_exit})
                    return
        finally:
            try:
                self._finish_writes()
            finally:
                try:
                    self._consumer.close(autocommit=False)
                finally:
                    self._relay.close()

    def _finish_writes(self) -> None:
        """At exit (a stop, idle, or an error): let the writer commit what it holds, then stop it."""
        try:
            if self._writer.failed is None:
                self._writer.drain()
        finally:
            self._writer.close()
            self._writes.close()
        self._tell_kafka()

    def _on_assigned(self, assigned: Sequence[Any]) -> None:
        self._writer.drain()  # idle already after a revocation; the relay below is not shared with it
        keys = [(tp.topic, tp.partition) for tp in assigned]
        stored = self._ledger_call(
            "read stored offsets", lambda: self._ledger.stored_offsets(self._s.consumer_group, keys)
        )
        for tp in assigned:
            position = stored.get((tp.topic, tp.partition))
            if position is None:
                self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, position)
        self._broker_call("recover the dead-letter outbox", lambda: self._relay.recover(sources=keys))
        self._broker_call("send pending dead letters", lambda: self._relay.flush(sources=keys))
        self._joined = True
        self._count_assigned()
        self.health.role = (True, f"in group {self._s.consumer_group}, {len(assigned)} partitions assigned")
        log.info(
            "partitions assigned", extra={"partitions": _names(assigned), "seeked_from_ledger": len(stored)}
        )

    # --- one batch -----------------------------------------------------------------------------
    def handle(self, messages: Sequence[RawMessage]) -> Processed:
        """Process one polled batch and queue it for the writer (waits while the queue is full).

        The dead-letter guard judges it first: a batch that trips it is never queued. A batch that
        carries agreements is waited for, so the next batch is validated against them as stored.
        """
        started = self._clock.monotonic()
        ctx = ValidationContext(
            config=self._domain,
            now_ms=self._clock.now_ms(),
            nik_key=self._nik_key,
            agreements=self._known_agreements(),
        )
        processed = self._processor.process(messages, ctx)
        self._guard.check(processed.valid_count, processed.invalid_count)
        self._writer.submit(Queued(processed, started))
        if log.isEnabledFor(logging.DEBUG):
            log.debug("batch queued", extra={"messages": len(messages), "batches_held": self._writer.held()})
        if processed.batch.agreements:
            self._writer.drain()
            self._agreements_loaded_at = float("-inf")
        return processed

    def commit(self, queued: Queued) -> None:
        """The writer thread's work for one batch: the ledger transaction (retried while transient),
        its dead letters sent, metrics, log lines; then its offsets are left for the loop to tell
        Kafka. When this returns, the batch is in the ledger with its offsets."""
        processed = queued.processed
        outcome = self._ledger_call(
            "write the batch to the ledger",
            lambda: self._writes.write_batch(
                self._s.consumer_group, processed.batch, key_rotation=len(self._nik_key) - 1
            ),
        )
        self._unsent.update(
            (m.source[0], m.source[1]) for m in processed.batch.outbox if m.source is not None
        )
        self._send_dead_letters()
        with self._committed_lock:
            self._committed_offsets.update(processed.batch.offsets)
        self._record(processed, outcome, self._clock.monotonic() - queued.started)
        for note in processed.dead_letters:  # after the commit: each line stands for a stored dead letter
            log.warning(
                "message dead-lettered",
                extra={
                    "topic": note.topic,
                    "partition": note.partition,
                    "offset": note.offset,
                    "error_kind": note.error_kind,
                    "reason_code": note.reason_code,
                    **({"event_id": note.event_id} if note.event_id else {}),
                },
            )
        self.health.progressed()
        metrics.LAST_PROGRESS.labels("ingest").set(self._clock.now_ms() / 1000)

    def _send_dead_letters(self) -> None:
        """Send the dead letters committed so far: at once when no other batch waits for the writer
        (so none lingers once the stream is idle, nor past a drain before a rebalance or an exit);
        while batches wait, every DEAD_LETTER_SEND_SECONDS, one relay round (read, send, wait for
        the broker, mark) for several batches. Meanwhile they wait in the outbox, committed, as
        after a crash."""
        now = self._clock.monotonic()
        if not self._unsent or (self._writer.held() > 1 and now - self._sent_at < DEAD_LETTER_SEND_SECONDS):
            return
        sources, self._unsent = self._unsent, set()
        self._broker_call("send dead letters", lambda: self._relay.flush(sources=sources))
        self._sent_at = now

    def _tell_kafka(self) -> None:
        """Commit to Kafka the offsets of the batches the writer finished (on the loop's thread)."""
        with self._committed_lock:
            offsets, self._committed_offsets = self._committed_offsets, {}
        if offsets:
            self._commit_to_kafka(offsets)

    def _poll(self) -> dict[Any, list[Any]]:
        """One poll; a transient broker error counts as an empty poll (``_observe`` enforces the budget)."""
        from kafka.errors import KafkaError

        try:
            polled: dict[Any, list[Any]] = self._consumer.poll(
                timeout_ms=int(self._s.poll_timeout_seconds * 1000), max_records=self._s.batch_max_records
            )
            return polled
        except KafkaError as exc:
            if not is_transient(exc):
                raise
            self._broker_unreachable(exc)
            time.sleep(min(1.0, self._s.poll_timeout_seconds))  # don't spin while the broker is away
            return {}

    def _broker_unreachable(self, exc: BaseException) -> None:
        """Record a broker fault; past the retry budget, stop loudly (kafka-python would otherwise
        keep polling nothing, forever)."""
        now = self._clock.monotonic()
        self._broker_down_since = self._broker_down_since or now
        down = now - self._broker_down_since
        self.health.broker = (False, f"{type(exc).__name__} for {down:.0f} s")
        if down > self._s.retry_budget_seconds:
            where, budget = self._s.kafka_bootstrap_servers, self._s.retry_budget_seconds
            raise PermanentFault(
                f"Kafka broker at {where} unreachable for {down:.0f} s (retry budget {budget:.0f} s): "
                "check RECON_KAFKA_BOOTSTRAP_SERVERS and that the broker is up, then restart"
            ) from exc

    def _count_assigned(self) -> None:
        counts = dict.fromkeys(self._s.data_topics(), 0)
        for tp in self._consumer.assignment():
            counts[tp.topic] = counts.get(tp.topic, 0) + 1
        for topic, n in counts.items():
            metrics.PARTITIONS_ASSIGNED.labels(topic).set(n)

    def _observe(self, every_seconds: float = 5.0) -> None:
        """Every few seconds: lag per partition, and whether the broker answers at all. A broker that
        stays unreachable past the retry budget stops the service loudly (kafka-python's poll would
        otherwise just return nothing, forever)."""
        from kafka.errors import KafkaError

        now = self._clock.monotonic()
        if now - self._observed_at < every_seconds:
            return
        self._observed_at = now
        assignment = list(self._consumer.assignment())
        try:
            ends = self._consumer.end_offsets(assignment, timeout_ms=2000) if assignment else {}
            waiting = 0
            for tp, end in ends.items():
                lag = max(0, end - self._consumer.position(tp))
                waiting += lag
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)
            self.health.waiting = waiting
            self.health.broker = (True, f"end offsets read for {len(ends)} partitions")
            self._broker_down_since = None
        except KafkaError as exc:
            self._broker_unreachable(exc)

    def _known_agreements(self) -> dict[str, Any]:
        if self._clock.monotonic() - self._agreements_loaded_at > 5.0:
            self._agreements = self._ledger_call("read agreements", self._ledger.agreements)
            self._agreements_loaded_at = self._clock.monotonic()
        return self._agreements

    def _commit_to_kafka(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Best effort, for lag monitoring only: the ledger already holds the offsets that count."""
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata

        try:
            self._consumer.commit_async(
                {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()}
            )
        except Exception as exc:  # a rebalance or a broker blip; the next batch commits again
            log.warning("kafka offset commit skipped", extra={"error": type(exc).__name__})

    def _idle_for(self, since: float, seconds: float | None) -> bool:
        return seconds is not None and self._clock.monotonic() - since >= seconds

    def _caught_up(self) -> bool:
        """Caught up as a group: the ledger holds offsets at the end of every partition of every topic.

        Judged on the ledger, not on this consumer's assignment: after a crash the dead member may
        still hold partitions until its session expires, and a live member that is done with its own
        share must not take that for the end of the stream.
        """
        from kafka import TopicPartition

        if not self._joined:
            return False
        tps = [
            TopicPartition(topic, p)
            for topic in self._s.data_topics()
            for p in sorted(self._consumer.partitions_for_topic(topic) or ())
        ]
        from kafka.errors import KafkaError

        try:
            ends = self._consumer.end_offsets(tps)
            starts = self._consumer.beginning_offsets(tps)
        except KafkaError as exc:  # not caught up as far as anyone can tell; _observe keeps the budget
            self._broker_unreachable(exc)
            return False
        keys = [(tp.topic, tp.partition) for tp in tps]
        stored = self._ledger_call(
            "read stored offsets", lambda: self._ledger.stored_offsets(self._s.consumer_group, keys)
        )
        return all(stored.get((tp.topic, tp.partition), starts[tp]) >= ends[tp] for tp in tps)

    def _record(self, processed: Processed, outcome: Any, seconds: float) -> None:
        for topic, n in processed.consumed.items():
            metrics.MESSAGES_CONSUMED.labels(topic).inc(n)
        for (topic, code), n in processed.rejected.items():
            metrics.MESSAGES_DEAD_LETTERED.labels(topic, code).inc(n)
        for kind, n in outcome.stored.items():
            metrics.EVENTS_STORED.labels(kind).inc(n)
        for kind, n in outcome.duplicates.items():
            metrics.EVENTS_DUPLICATE.labels(kind).inc(n)
        metrics.BATCH_SIZE.observe(sum(processed.consumed.values()))
        metrics.BATCH_DURATION.observe(seconds)
        log.info(
            "batch committed",
            extra={
                "messages": sum(processed.consumed.values()),
                "stored": sum(outcome.stored.values()),
                "duplicates": sum(outcome.duplicates.values()),
                "dead_lettered": processed.invalid_count,
                "seconds": round(seconds, 4),
            },
        )

    def _ledger_call(self, what: str, fn: Callable[[], T]) -> T:
        return self.health.call("database", what, fn, budget_seconds=self._s.retry_budget_seconds)

    def _broker_call(self, what: str, fn: Callable[[], T]) -> T:
        return self.health.call("broker", what, fn, budget_seconds=self._s.retry_budget_seconds)


def _names(tps: Any) -> list[str]:
    return sorted(f"{tp.topic}[{tp.partition}]" for tp in tps)
