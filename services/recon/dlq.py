"""Dead letters: read the dead-letter topic by its headers, summarise it, and redrive chosen letters.

A dead letter (docs/schemas.md) keeps the refused message's original key and value, and says in UTF-8
headers where the message was read and why it was refused. Everything here shows the headers only:
the key and value may hold a NIK, so they are never printed, only sent back unchanged to the topic
they came from, where the (fixed) ingest reads them again. A redrive is idempotent through the
ledger: an event already stored is recognised by its ``event_id`` and changes nothing; a message still
invalid dead-letters again, under its new source offset.

Pure parts (no Kafka, no clock): :func:`parse`, :class:`Selection`, :func:`summarise`,
:class:`RedrivePlan`. Kafka adapters: :func:`read_dead_letters`, :func:`redrive`.

Usage::

    rows = summarise(letter for letter, _key, _value in read_dead_letters(settings))
    report = redrive(settings, Selection(reasons=frozenset({"programme_not_funded"})), dry_run=True)
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from recon.errors import ConfigError, PermanentFault
from recon.settings import Settings

__all__ = [
    "LIST_COLUMNS",
    "REDRIVEN_FROM_HEADER",
    "SUMMARY_COLUMNS",
    "DeadLetter",
    "Redrive",
    "RedrivePlan",
    "RedriveReport",
    "Selection",
    "Skip",
    "SummaryRow",
    "parse",
    "read_dead_letters",
    "redrive",
    "summarise",
]

REDRIVEN_FROM_HEADER: Final = "recon.redriven_from"
_NIK_LIKE: Final = re.compile(r"(?<!\d)\d{16}(?!\d)")
_FLUSH_EVERY: Final = 1000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """What the headers of one dead-letter record say. ``None`` for a header missing or unreadable."""

    topic: str  # the dead-letter topic
    partition: int
    offset: int
    timestamp_ms: int
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    error_kind: str | None
    reason_code: str | None
    reason: str | None

    @property
    def position(self) -> str:
        """``<dead-letter topic>/<partition>/<offset>``: the value of the redriven-from header."""
        return f"{self.topic}/{self.partition}/{self.offset}"

    def row(self) -> dict[str, Any]:
        """One line of ``recon dlq list``: positions and reasons, never the key or the value."""
        return {
            "dlq_partition": self.partition,
            "dlq_offset": self.offset,
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "error_kind": self.error_kind,
            "reason_code": self.reason_code,
            "reason": self.reason,
            "timestamp": iso_utc(self.timestamp_ms),
        }


LIST_COLUMNS: Final = (
    "dlq_partition",
    "dlq_offset",
    "source_topic",
    "source_partition",
    "source_offset",
    "error_kind",
    "reason_code",
    "reason",
    "timestamp",
)


def parse(
    topic: str, partition: int, offset: int, timestamp_ms: int, headers: Sequence[tuple[str, bytes | None]]
) -> DeadLetter:
    """The dead letter that a record's headers describe. Unknown headers are ignored.

    A NIK-shaped number in ``reason`` is masked: the service never writes one there (a test checks),
    and this keeps a faulty or forged header from carrying one onto a screen.
    """
    values: dict[str, str] = {}
    for name, raw in headers:
        if raw is not None:
            values[name] = _printable(raw.decode("utf-8", "replace"))
    reason = values.get("reason")
    return DeadLetter(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp_ms=timestamp_ms,
        source_topic=values.get("source_topic") or None,
        source_partition=_int(values.get("source_partition")),
        source_offset=_int(values.get("source_offset")),
        error_kind=values.get("error_kind") or None,
        reason_code=values.get("reason_code") or None,
        reason=None if reason is None else _NIK_LIKE.sub("[redacted]", reason),
    )


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isascii() and text.isdigit() else None


def iso_utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """Which dead letters a command works on. Every condition given must hold; none given: all.

    ``partition``, ``from_offset`` and ``until_offset`` (both inclusive) are positions on the
    dead-letter topic, as ``recon dlq list`` shows them; the offsets apply to every partition chosen.
    """

    reasons: frozenset[str] = frozenset()
    source_topic: str | None = None
    partition: int | None = None
    from_offset: int | None = None
    until_offset: int | None = None

    @property
    def narrowed(self) -> bool:
        """True when at least one condition is given (a redrive of everything must be asked for)."""
        return bool(self.reasons) or any(
            v is not None for v in (self.source_topic, self.partition, self.from_offset, self.until_offset)
        )

    def matches(self, letter: DeadLetter) -> bool:
        return (
            (not self.reasons or letter.reason_code in self.reasons)
            and (self.source_topic is None or letter.source_topic == self.source_topic)
            and (self.partition is None or letter.partition == self.partition)
            and (self.from_offset is None or letter.offset >= self.from_offset)
            and (self.until_offset is None or letter.offset <= self.until_offset)
        )


@dataclass(frozen=True, slots=True)
class SummaryRow:
    """Dead letters of one source topic and reason code."""

    source_topic: str | None
    reason_code: str | None
    error_kind: str | None  # several kinds (never expected) are joined with ','
    count: int
    source_partitions: tuple[int, ...]
    first_source_offset: int | None  # lowest and highest over its source partitions
    last_source_offset: int | None
    first_seen_ms: int  # record timestamps of the dead letters
    last_seen_ms: int

    def row(self) -> dict[str, Any]:
        return {
            "source_topic": self.source_topic,
            "reason_code": self.reason_code,
            "error_kind": self.error_kind,
            "count": self.count,
            "source_partitions": list(self.source_partitions),
            "first_source_offset": self.first_source_offset,
            "last_source_offset": self.last_source_offset,
            "first_seen": iso_utc(self.first_seen_ms),
            "last_seen": iso_utc(self.last_seen_ms),
        }


SUMMARY_COLUMNS: Final = (
    "source_topic",
    "reason_code",
    "error_kind",
    "count",
    "source_partitions",
    "first_source_offset",
    "last_source_offset",
    "first_seen",
    "last_seen",
)


@dataclass(slots=True)
class _Group:
    first_seen_ms: int
    last_seen_ms: int
    count: int = 0
    kinds: set[str] = field(default_factory=set)
    partitions: set[int] = field(default_factory=set)
    first_offset: int | None = None
    last_offset: int | None = None

    def add(self, letter: DeadLetter) -> None:
        self.count += 1
        self.first_seen_ms = min(self.first_seen_ms, letter.timestamp_ms)
        self.last_seen_ms = max(self.last_seen_ms, letter.timestamp_ms)
        if letter.error_kind is not None:
            self.kinds.add(letter.error_kind)
        if letter.source_partition is not None:
            self.partitions.add(letter.source_partition)
        if (at := letter.source_offset) is not None:
            self.first_offset = at if self.first_offset is None else min(self.first_offset, at)
            self.last_offset = at if self.last_offset is None else max(self.last_offset, at)


def summarise(letters: Iterable[DeadLetter]) -> list[SummaryRow]:
    """Counts by source topic and reason code, most frequent first (then by topic and code)."""
    groups: dict[tuple[str | None, str | None], _Group] = {}
    for letter in letters:
        key = (letter.source_topic, letter.reason_code)
        groups.setdefault(key, _Group(letter.timestamp_ms, letter.timestamp_ms)).add(letter)
    rows = [
        SummaryRow(
            source_topic=topic,
            reason_code=code,
            error_kind=",".join(sorted(g.kinds)) or None,
            count=g.count,
            source_partitions=tuple(sorted(g.partitions)),
            first_source_offset=g.first_offset,
            last_source_offset=g.last_offset,
            first_seen_ms=g.first_seen_ms,
            last_seen_ms=g.last_seen_ms,
        )
        for (topic, code), g in groups.items()
    ]
    return sorted(rows, key=lambda r: (-r.count, r.source_topic or "", r.reason_code or ""))


# --- redrive -----------------------------------------------------------------------------------


class Skip(StrEnum):
    """Why a selected dead letter is not sent back."""

    NO_SOURCE = "no_source_topic"  # no readable source_topic header: not written by the service
    NOT_CONSUMED = "source_not_consumed"  # its source topic is not one the ingest service reads
    SAME_BYTES = "same_bytes"  # identical to a letter already chosen in this run (a redriven repeat)


@dataclass(frozen=True, slots=True)
class Redrive:
    """One record to send back: the original key and value, to the source topic, traced to the letter."""

    letter: DeadLetter
    topic: str
    key: bytes | None
    value: bytes | None

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        return [(REDRIVEN_FROM_HEADER, self.letter.position.encode())]


@dataclass(frozen=True, slots=True)
class RedriveReport:
    """What a redrive sent (or, in a dry run, would send) per source topic and reason, and what it skipped."""

    dry_run: bool
    sent: Counter[tuple[str, str | None]]
    skipped: Counter[Skip]
    chosen: tuple[DeadLetter, ...] = ()  # filled in dry runs, for the listing

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    def rows(self) -> list[dict[str, Any]]:
        column = "would_redrive" if self.dry_run else "redriven"
        return [
            {"source_topic": topic, "reason_code": code, column: n}
            for (topic, code), n in sorted(self.sent.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "total": self.total,
            "by_reason": self.rows(),
            "skipped": {skip.value: self.skipped.get(skip, 0) for skip in Skip},
            "chosen": [letter.row() for letter in self.chosen],
        }


class RedrivePlan:
    """Decides, letter by letter, what a redrive sends. Pure; one instance per run.

    Letters with the same source topic, key and value are sent once per run: a message that is
    still invalid dead-letters again on every redrive, and without this each run would send every
    earlier copy too, doubling them.
    """

    def __init__(self, *, selection: Selection, consumed_topics: Collection[str]) -> None:
        self._selection = selection
        self._consumed = frozenset(consumed_topics)
        self._seen: set[bytes] = set()
        self.sent: Counter[tuple[str, str | None]] = Counter()
        self.skipped: Counter[Skip] = Counter()

    def consider(self, letter: DeadLetter, key: bytes | None, value: bytes | None) -> Redrive | None:
        if not self._selection.matches(letter):
            return None
        topic = letter.source_topic
        if topic is None:
            self.skipped[Skip.NO_SOURCE] += 1
            return None
        if topic not in self._consumed:
            self.skipped[Skip.NOT_CONSUMED] += 1
            return None
        digest = _digest(topic, key, value)
        if digest in self._seen:
            self.skipped[Skip.SAME_BYTES] += 1
            return None
        self._seen.add(digest)
        self.sent[(topic, letter.reason_code)] += 1
        return Redrive(letter, topic, key, value)


def _digest(topic: str, key: bytes | None, value: bytes | None) -> bytes:
    h = hashlib.blake2b(digest_size=20)
    for part in (topic.encode(), key, value):
        h.update(b"\x00" if part is None else b"\x01" + len(part).to_bytes(8, "big") + part)
    return h.digest()


# --- Kafka adapters ----------------------------------------------------------------------------

Record = tuple[DeadLetter, bytes | None, bytes | None]


def read_dead_letters(
    settings: Settings, selection: Selection = Selection(), *, stall_seconds: float = 30.0
) -> Iterator[Record]:
    """Every record of the dead-letter topic within the selection's partition and offsets, parsed,
    with its key and value, up to the end offsets taken at the start (so what a redrive causes to
    be dead-lettered again is not read in the same run). Other conditions are the caller's to apply.

    A group-less consumer: nothing is committed, no consumer group is joined.
    """
    from kafka import TopicPartition

    from recon.kafka.clients import make_consumer
    from recon.retry import broker_call

    topic = settings.topic_dead_letters
    budget = settings.retry_budget_seconds
    consumer = broker_call(
        "connect to Kafka",
        lambda: make_consumer(settings, group_id=None, client_id="recon-dlq"),
        budget_seconds=budget,
    )
    try:
        partitions = broker_call(
            "read the dead-letter topic's partitions",
            lambda: consumer.partitions_for_topic(topic),
            budget_seconds=budget,
        )
        if not partitions:
            raise PermanentFault(
                f"the dead-letter topic {topic!r} does not exist: check RECON_TOPIC_DEAD_LETTERS "
                "(or run `recon broker start`, which creates the topics)"
            )
        if selection.partition is not None and selection.partition not in partitions:
            raise ConfigError(
                f"--partition {selection.partition}: {topic!r} has partitions 0 to {max(partitions)}"
            )
        chosen = sorted(p for p in partitions if selection.partition in (None, p))
        tps = [TopicPartition(topic, p) for p in chosen]
        consumer.assign(tps)
        ends = broker_call("read end offsets", lambda: consumer.end_offsets(tps), budget_seconds=budget)
        stops = {tp: _stop(ends[tp], selection.until_offset) for tp in tps}
        for tp in tps:
            if selection.from_offset is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, selection.from_offset)  # below the log start: reset to earliest
        yield from _drain(consumer, stops, stall_seconds)
    finally:
        consumer.close()


def _stop(end: int, until: int | None) -> int:
    return end if until is None else min(end, until + 1)


def _drain(consumer: Any, stops: dict[Any, int], stall_seconds: float) -> Iterator[Record]:
    remaining = {tp for tp in stops if consumer.position(tp) < stops[tp]}
    progress_at = time.monotonic()
    while remaining:
        if time.monotonic() - progress_at > stall_seconds:
            raise PermanentFault(
                f"could not read the dead-letter topic to its end: no progress for {stall_seconds:.0f} s "
                "(check that the broker is up and RECON_KAFKA_BOOTSTRAP_SERVERS)"
            )
        polled = consumer.poll(timeout_ms=500, max_records=5000)
        for tp, records in polled.items():
            for r in records:
                if r.offset < stops[tp]:
                    yield parse(r.topic, r.partition, r.offset, r.timestamp, r.headers or []), r.key, r.value
        if polled:
            progress_at = time.monotonic()
        remaining = {tp for tp in remaining if consumer.position(tp) < stops[tp]}


def redrive(
    settings: Settings,
    selection: Selection,
    *,
    dry_run: bool,
) -> RedriveReport:
    """Send the chosen dead letters' original key and value back to their source topics.

    The producer partitions by key, as the branch's producer did, so one worker's events stay in
    order. Stops with a PermanentFault if the broker does not acknowledge every record; running the
    same redrive again is harmless.
    """
    from kafka.errors import KafkaError

    from recon.kafka.clients import close_producer, make_producer
    from recon.retry import broker_call

    plan = RedrivePlan(selection=selection, consumed_topics=settings.data_topics())
    chosen: list[DeadLetter] = []
    producer = None
    if not dry_run:
        producer = broker_call(
            "connect a producer to Kafka",
            lambda: make_producer(settings, client_id="recon-dlq-redrive"),
            budget_seconds=settings.retry_budget_seconds,
        )
    futures: list[Any] = []
    acknowledged = 0
    try:
        for letter, key, value in read_dead_letters(settings, selection):
            item = plan.consider(letter, key, value)
            if item is None:
                continue
            if producer is None:
                chosen.append(letter)
                continue
            futures.append(producer.send(item.topic, key=item.key, value=item.value, headers=item.headers))
            if len(futures) >= _FLUSH_EVERY:
                acknowledged += _acknowledge(producer, futures)
                futures = []
        if producer is not None:
            acknowledged += _acknowledge(producer, futures)
    except KafkaError as exc:
        raise PermanentFault(
            f"redrive stopped after {acknowledged} records were acknowledged ({type(exc).__name__}): "
            "check the broker and run the same redrive again (redriving twice changes nothing)"
        ) from exc
    finally:
        if producer is not None:
            close_producer(producer, timeout=10)
    return RedriveReport(dry_run=dry_run, sent=plan.sent, skipped=plan.skipped, chosen=tuple(chosen))


def _acknowledge(producer: Any, futures: Sequence[Any]) -> int:
    producer.flush()
    for future in futures:
        future.get(timeout=30)
    return len(futures)
