"""The ingest loop: poll a batch, process it, commit effects and offsets together, then tell Kafka.

Checkpoint order (and what a restart does if the process dies after each step):
1. poll                              -> nothing written; the batch is read again.
2. ledger transaction (events, dead letters into the outbox, offsets) committed
                                     -> on assignment the consumer seeks to the stored offsets, so
                                        the batch is not read again; pending dead letters are sent
                                        by the outbox relay (see recon.kafka.outbox).
3. dead letters sent and marked      -> nothing pending.
4. offsets committed to Kafka        -> only for lag monitoring; the database offsets rule.
Should a seek ever be missed, event ids and the outbox's unique source key still make a replay
change nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ingest.guard import DeadLetterGuard
from ingest.pipeline import Processed, Processor, RawMessage
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
    ) -> None:
        self._s = settings
        self._ledger = ledger
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

    # --- lifecycle ---------------------------------------------------------------------------
    def run(self, *, stop: threading.Event, idle_exit: float | None = None) -> None:
        """Consume until ``stop`` is set, or until caught up and idle for ``idle_exit`` seconds."""
        from kafka import ConsumerRebalanceListener

        service = self

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            def on_partitions_revoked(self, revoked: Any) -> None:
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
        self._consumer.subscribe(list(self._s.data_topics()), listener=Listener())
        last_message = self._clock.monotonic()
        try:
            while not stop.is_set():
                polled = self._poll()
                if self._listener_error is not None:
                    raise self._listener_error
                messages = [m for records in polled.values() for m in records]
                if messages:
                    self.handle(messages)
                    last_message = self._clock.monotonic()
                self._observe()
                if not messages and self._idle_for(last_message, idle_exit) and self._caught_up():
                    log.info("caught up and idle: exiting", extra={"idle_seconds": idle_exit})
                    return
        finally:
            try:
                self._consumer.close(autocommit=False)
            finally:
                self._relay.close()

    def _on_assigned(self, assigned: Sequence[Any]) -> None:
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
        self._broker_call("recover the dead-letter outbox", self._relay.recover)
        self._broker_call("send pending dead letters", lambda: self._relay.flush(sources=keys))
        self._joined = True
        self._count_assigned()
        self.health.role = (True, f"in group {self._s.consumer_group}, {len(assigned)} partitions assigned")
        log.info(
            "partitions assigned", extra={"partitions": _names(assigned), "seeked_from_ledger": len(stored)}
        )

    # --- one batch -----------------------------------------------------------------------------
    def handle(self, messages: Sequence[RawMessage]) -> Processed:
        started = self._clock.monotonic()
        ctx = ValidationContext(
            config=self._domain,
            now_ms=self._clock.now_ms(),
            nik_key=self._nik_key,
            agreements=self._known_agreements(),
        )
        processed = self._processor.process(messages, ctx)
        self._guard.check(processed.valid_count, processed.invalid_count)
        outcome = self._ledger_call(
            "write the batch to the ledger",
            lambda: self._ledger.write_batch(
                self._s.consumer_group, processed.batch, key_rotation=len(self._nik_key) - 1
            ),
        )
        if processed.batch.agreements:
            self._agreements_loaded_at = float("-inf")
        if processed.batch.outbox:
            sources = {(m.source[0], m.source[1]) for m in processed.batch.outbox if m.source is not None}
            self._broker_call("send dead letters", lambda: self._relay.flush(sources=sources))
        self._commit_to_kafka(processed.batch.offsets)
        self._record(processed, outcome, self._clock.monotonic() - started)
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
        return processed

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
