"""The outbox relay: publishes rows the ledger committed, exactly once per row.

Dead letters (ingest) and alert changes (reconcile) are first written to the ledger's ``outbox``
table in the same transaction as the effects and offsets they belong to. This relay then sends them
to Kafka, waits for the broker's acknowledgement, and marks them sent with their Kafka position.

Crash order, step by step (what a restart does if the process dies after each step):
1. transaction committed, nothing sent   -> the rows are pending; ``recover`` finds nothing for
   them on the topic and ``flush`` sends them.
2. sent and acknowledged, not yet marked -> ``recover`` scans the topic from the moment the oldest
   pending row was committed (less RECOVERY_MARGIN_MS, for clock steps), finds the records by
   their ``recon.outbox_id`` header and marks them, so they are not sent again.
3. marked sent                           -> nothing left to do.

Why from a moment and not from the highest offset marked sent: several processes (the members of
the ingest group) send to one dead-letter topic. One sends a row and dies before marking it; another
sends and marks a row after it, at a higher offset. The dead member's copy then lies below the
highest marked offset, and a scan from there would miss it and send the row a second time. Every copy
of a pending row was sent after its transaction committed (``created_at_ms``, taken in it), so the
first offset with a timestamp at or after that moment, per partition (Kafka's offsets-for-times),
is a start no copy precedes.

A flush that fails while the process lives (the broker went away) may leave records in the
producer's buffer that kafka-python delivers once the broker is back. The next flush therefore
waits until the producer holds nothing (each record delivered or failed), then recovers, then
sends: a row is never resent while its first copy may still arrive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any

from recon import metrics
from recon.clock import Clock

log = logging.getLogger("recon.outbox")

OUTBOX_ID_HEADER = "recon.outbox_id"
# Each wait on the broker is bounded, so a dead broker counts against the retry budget instead of
# blocking until kafka-python gives up on the records (120 s).
FLUSH_TIMEOUT_SECONDS = 10
# How much earlier than the oldest pending row's commit the recovery scan starts: a copy's timestamp
# comes from the sending host's clock after that commit (the same host's), so this only covers the
# clock being stepped back in between, or a broker stamping LogAppendTime with a clock behind ours.
RECOVERY_MARGIN_MS = 10 * 60 * 1000


class OutboxRelay:
    """Moves one kind of outbox row ('dead_letter' or 'alert') to one topic.

    ``ledger`` is a ``recon.ledger.Ledger``; ``producer`` a kafka-python producer;
    ``make_scanner`` builds a group-less consumer for the recovery scan.
    """

    def __init__(
        self,
        *,
        ledger: Any,
        producer: Any,
        make_scanner: Callable[[], Any],
        kind: str,
        topic: str,
        clock: Clock,
        batch_size: int = 1000,
    ) -> None:
        self._ledger = ledger
        self._producer = producer
        self._make_scanner = make_scanner
        self._kind = kind
        self._topic = topic
        self._clock = clock
        self._batch_size = batch_size
        self._interrupted = False  # a failed flush may have sent rows it could not mark

    def close(self, timeout: float = 5.0) -> None:
        """Close the producer. Rows it could not deliver stay pending and go out after a restart."""
        from recon.kafka.clients import close_producer

        if not close_producer(self._producer, timeout=timeout):
            log.warning(
                "producer closed with records undelivered; their outbox rows stay pending",
                extra={"kind": self._kind},
            )

    def recover(self, sources: Collection[tuple[str, int]] | None = None) -> int:
        """Mark as sent every pending row already on the topic (sent before a crash). Returns how many.

        ``sources``: the caller needs only the rows of these recovered (the partitions it was just
        given). When none of theirs is pending there is nothing to look for, and the topic is not
        scanned: a rebalance after a clean hand-over (the old owner sent and marked all it had)
        costs one query, not a consumer built, a metadata round and a read to the topic's end
        (~120 ms, which every member's assignment waited for).
        """
        from kafka import TopicPartition

        if sources is not None and not self._ledger.pending_outbox(self._kind, 1, sources):
            return 0
        pending = self._ledger.pending_outbox_created(self._kind)
        if not pending:
            return 0
        since = min(pending.values())
        scanner = self._make_scanner()
        try:
            partitions = scanner.partitions_for_topic(self._topic) or set()
            tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
            if not tps:
                return 0
            scanner.assign(tps)
            ends = scanner.end_offsets(tps)
            starts = scanner.offsets_for_times({tp: max(0, since - RECOVERY_MARGIN_MS) for tp in tps})
            for tp in tps:
                start = starts.get(tp)
                scanner.seek(tp, ends[tp] if start is None else start.offset)  # None: nothing that recent
            found = [row for row in self._scan(scanner, tps, ends) if row[0] in pending]  # not the marked
        finally:
            scanner.close()
        if found:
            self._ledger.mark_sent(found, self._clock.now_ms())
            log.info(
                "outbox recovered rows already published", extra={"kind": self._kind, "rows": len(found)}
            )
        return len(found)

    def _scan(self, scanner: Any, tps: list[Any], ends: dict[Any, int]) -> list[tuple[int, int, int]]:
        found: list[tuple[int, int, int]] = []
        remaining = {tp for tp in tps if scanner.position(tp) < ends[tp]}
        deadline = self._clock.monotonic() + 120
        while remaining:
            if self._clock.monotonic() > deadline:
                raise TimeoutError(f"outbox recovery could not read {self._topic} to its end within 120 s")
            polled = scanner.poll(timeout_ms=1000, max_records=5000)
            for records in polled.values():
                for record in records:
                    outbox_id = dict(record.headers or []).get(OUTBOX_ID_HEADER)
                    if outbox_id is not None:
                        found.append((int(outbox_id), record.partition, record.offset))
            remaining = {tp for tp in remaining if scanner.position(tp) < ends[tp]}
        return found

    def flush(self, sources: Collection[tuple[str, int]] | None = None) -> int:
        """Send every pending row (of ``sources`` when given), wait for acks, mark them. Returns how many.

        If a previous flush failed part-way, settle and recover first, so rows it did send (or still
        holds in the producer) are not sent twice.
        """
        if self._interrupted:
            # Records the failed flush handed to the producer may still be in its buffer, to be
            # delivered once the broker is back: resending their rows now would publish them twice.
            # Wait until each is delivered or has failed (this raises while the broker is away, and
            # the caller's retry comes back here), then mark what reached the topic.
            self._producer.flush(timeout=FLUSH_TIMEOUT_SECONDS)
            self.recover()
            self._interrupted = False
        try:
            return self._flush(sources)
        except BaseException:
            self._interrupted = True
            raise

    def _flush(self, sources: Collection[tuple[str, int]] | None) -> int:
        total = 0
        while True:
            pending = self._ledger.pending_outbox(self._kind, self._batch_size, sources)
            metrics.OUTBOX_PENDING.labels(self._kind).set(len(pending))
            if not pending:
                return total
            futures = []
            for row in pending:
                msg = row.message
                headers = [*msg.headers, (OUTBOX_ID_HEADER, str(row.id).encode())]
                futures.append(
                    (row.id, self._producer.send(msg.topic, key=msg.key, value=msg.value, headers=headers))
                )
            self._producer.flush(timeout=FLUSH_TIMEOUT_SECONDS)
            sent = []
            for row_id, future in futures:
                meta = future.get(timeout=30)
                sent.append((row_id, meta.partition, meta.offset))
            self._ledger.mark_sent(sent, self._clock.now_ms())
            total += len(sent)
