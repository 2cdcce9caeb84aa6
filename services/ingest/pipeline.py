"""One polled batch in, one ledger Batch out: decode, validate, route the rejects to dead letters.

Pure apart from the codec it is given: no Kafka, no SQL, no clock (the time is in the context).
Every message ends up in exactly one place: a validated event, or a dead letter with its reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from recon.avro import DecodeError
from recon.domain.events import Agreement, BranchTotals, ClaimRow, EnrolmentRow, Rejection
from recon.domain.validation import RowValidator, ValidationContext, loggable_event_id
from recon.ledger import Batch, OutboxMessage

DEAD_LETTER = "dead_letter"
AGREEMENT_SUBJECT = "agreement"


class RawMessage(Protocol):
    """What a consumer hands over (kafka-python's ConsumerRecord has these attributes)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(slots=True)
class Processed:
    """A batch ready for the ledger, plus what happened to each message (for metrics and the guard)."""

    batch: Batch
    consumed: Counter[str] = field(default_factory=Counter)  # per topic
    valid: Counter[str] = field(default_factory=Counter)  # per topic
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)  # per (topic, reason code)
    ignored: int = 0  # tombstones on the compacted agreements topic
    dead_letters: list[DeadLetterNote] = field(default_factory=list)  # one per rejected message, for logs

    @property
    def invalid_count(self) -> int:
        return sum(self.rejected.values())

    @property
    def valid_count(self) -> int:
        return sum(self.valid.values())


@dataclass(frozen=True, slots=True)
class DeadLetterNote:
    """Where a rejected message was and why: what the log line about it may say (no value, no NIK).
    ``event_id`` only when it passed validation's own check (an id can never hold a NIK then)."""

    topic: str
    partition: int
    offset: int
    error_kind: str
    reason_code: str
    event_id: str | None


@dataclass(frozen=True, slots=True)
class DeadLetterRoute:
    topic: str
    error_kind: str  # 'codec' or 'validation'


class Processor:
    """Turns raw messages into a ledger Batch. One instance per consumer; stateless between batches."""

    def __init__(
        self,
        *,
        catalogue: Any,
        subjects_by_topic: Mapping[str, str],
        dead_letter_topic: str,
        max_message_bytes: int,
    ) -> None:
        self._catalogue = catalogue
        self._subjects = dict(subjects_by_topic)
        self._dlq = dead_letter_topic
        self._max_bytes = max_message_bytes
        self._hex: dict[bytes | str, str] = {}  # writer fingerprints as hex, one entry per schema version

    def process(self, messages: Sequence[RawMessage], ctx: ValidationContext) -> Processed:
        """Agreements first, so an enrolment in the same batch as its agreement is checked against it.

        Enrolments and claims come out as their ledger rows (``RowValidator``): built straight from
        the decoded record, with no event object in between.
        """
        enrolments: list[EnrolmentRow] = []
        claims: list[ClaimRow] = []
        agreements: list[Agreement] = []
        totals: list[BranchTotals] = []
        outbox: list[OutboxMessage] = []
        offsets: dict[tuple[str, int], int] = {}
        stats = Processed(batch=Batch((), (), (), (), (), {}))
        subjects = self._subjects
        if any(subjects.get(m.topic) == AGREEMENT_SUBJECT for m in messages):
            messages = sorted(messages, key=lambda m: subjects.get(m.topic) != AGREEMENT_SUBJECT)
        rows = RowValidator(ctx)
        for msg in messages:
            tp = (msg.topic, msg.partition)
            after = msg.offset + 1
            if after > offsets.get(tp, -1):
                offsets[tp] = after
            result, event_id = self._one(msg, rows)
            if type(result) is EnrolmentRow:
                enrolments.append(result)
            elif type(result) is ClaimRow:
                claims.append(result)
            elif isinstance(result, Rejection | DecodeError):
                code, reason = result.code, result.reason
                kind = "validation" if isinstance(result, Rejection) else "codec"
                outbox.append(self._dead_letter(msg, code, reason, kind))
                stats.rejected[(msg.topic, code)] += 1
                stats.dead_letters.append(
                    DeadLetterNote(msg.topic, msg.partition, msg.offset, kind, code, event_id)
                )
            elif result is None:
                stats.ignored += 1
                stats.valid[msg.topic] -= 1  # not an event either: taken off the topic's count below
            elif isinstance(result, BranchTotals):
                totals.append(result)
            else:
                agreements.append(result)
                ctx = replace(ctx, agreements={**ctx.agreements, result.agreement_id: result})
                rows = RowValidator(ctx)
        stats.consumed.update(m.topic for m in messages)
        rejected: Counter[str] = Counter()
        for (topic, _code), n in stats.rejected.items():
            rejected[topic] += n
        for topic, n in stats.consumed.items():
            stats.valid[topic] += n - rejected[topic]
        stats.valid = +stats.valid  # drop topics with no valid message, as counting them one by one did
        stats.batch = Batch(enrolments, claims, agreements, totals, outbox, offsets)
        return stats

    def _one(self, msg: RawMessage, rows: RowValidator) -> tuple[Any, str | None]:
        """The message's outcome, and for a rejected record its event id where one may be logged."""
        subject = self._subjects.get(msg.topic)
        if subject is None:
            return Rejection("unexpected_topic", "the ingest service does not read this topic"), None
        value = msg.value
        if value is None:
            if subject == AGREEMENT_SUBJECT:
                return None, None  # a tombstone: compaction bookkeeping, not an event
            return Rejection("empty_value", "the record has no value"), None
        if len(value) > self._max_bytes:
            reason = f"the value has {len(value)} bytes, above the {self._max_bytes} limit"
            return Rejection("too_large", reason), None
        try:
            decoded = self._catalogue.decode(value, subject)
        except DecodeError as exc:
            return exc, None
        fingerprint = self._hex.get(decoded.fingerprint)
        if fingerprint is None:
            fingerprint = self._hex[decoded.fingerprint] = fingerprint_hex(decoded.fingerprint)
        result = rows.validate(
            subject, decoded.record, msg.topic, msg.partition, msg.offset, fingerprint, decoded.version
        )
        if isinstance(result, Rejection):
            return result, loggable_event_id(decoded.record)
        return result, None

    def _dead_letter(self, msg: RawMessage, code: str, reason: str, kind: str) -> OutboxMessage:
        headers = (
            ("source_topic", msg.topic.encode()),
            ("source_partition", str(msg.partition).encode()),
            ("source_offset", str(msg.offset).encode()),
            ("error_kind", kind.encode()),
            ("reason_code", code.encode()),
            ("reason", reason.encode()),
        )
        return OutboxMessage(
            kind=DEAD_LETTER,
            topic=self._dlq,
            key=msg.key,
            value=msg.value,
            headers=headers,
            source=(msg.topic, msg.partition, msg.offset),
        )


def fingerprint_hex(fingerprint: bytes | str) -> str:
    return fingerprint if isinstance(fingerprint, str) else fingerprint.hex()
