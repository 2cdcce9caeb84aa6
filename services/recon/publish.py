"""`recon publish`: JSON Lines in, Avro single-object messages out, refusing what ingest would refuse.

A record is encoded with its subject's current schema, decoded back and run through the same domain
validation as ingest, so a branch learns at its own desk, with the line number, what would otherwise
end in the dead-letter topic. Refusals never quote values (a line may hold a NIK).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from recon.avro import DecodeError, EncodeError, SchemaCatalogue
from recon.domain.config import DomainConfig
from recon.domain.events import Rejection
from recon.domain.validation import RowValidator, ValidationContext
from recon.settings import Settings

_KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "enrolment": ("nik",),
    "claim": ("nik",),
    "agreement": ("agreement_id",),
    "branch-totals": ("branch_code", "agreement_id"),
    "alert": ("fingerprint",),
}
# Only for pass/fail here: the real worker key is computed by ingest with the configured secret.
_THROWAWAY_KEY = b"publish-side validation only, never stored"
# Records checked by one RowValidator, which keeps the worker keys of the NIKs it saw: bounded memory,
# and no NIK kept longer than a few thousand records.
_RECORDS_PER_VALIDATOR = 2_000


@dataclass(frozen=True, slots=True)
class Prepared:
    line: int
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class Refusal:
    line: int
    code: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.code}: {self.reason}"


class Preparer:
    """Turns JSON Lines into ready-to-send messages for one subject."""

    def __init__(
        self, *, catalogue: Any, subject: str, config: DomainConfig, now_ms: int, validate_domain: bool = True
    ):
        if subject not in _KEY_FIELDS:
            raise ValueError(subject)
        self._catalogue = catalogue
        self._subject = subject
        self._validate = validate_domain and subject != "alert"
        self._encode = self._encoder(catalogue, subject)
        self._key = _key_function(subject)
        self._ctx = ValidationContext(config=config, now_ms=now_ms, nik_key=_THROWAWAY_KEY, agreements={})
        self._rows = RowValidator(self._ctx)
        self._checked = 0

    def prepare_lines(self, lines: Iterable[str]) -> Iterator[Prepared | Refusal]:
        for number, text in enumerate(lines, start=1):
            if text.strip():
                yield self.prepare(number, text)

    def prepare(self, line: int, text: str) -> Prepared | Refusal:
        item = self._prepare(line, text)
        return item if isinstance(item, Refusal) else Prepared(line, *item)

    def prepare_chunk(
        self, first: int, lines: Sequence[str | bytes], skip: int = 0
    ) -> tuple[list[tuple[int, bytes, bytes]], list[Refusal]]:
        """A chunk of lines (``first`` the first one's number; ``skip`` leading ones done already):
        ``(index in the chunk, key, value)`` of each line to send, in order, and the refusals. Blank
        lines are neither. One loop for the chunk: what a worker process runs."""
        prepared: list[tuple[int, bytes, bytes]] = []
        refusals: list[Refusal] = []
        one, keep, refuse = self._prepare, prepared.append, refusals.append
        for index in range(skip, len(lines)):
            line = lines[index]
            if isinstance(line, bytes):
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError:
                    refuse(Refusal(first + index, "json_invalid", "the line is not valid UTF-8"))
                    continue
            else:
                text = line
            if not text.strip():
                continue
            item = one(first + index, text)
            if isinstance(item, Refusal):
                refuse(item)
            else:
                keep((index, item[0], item[1]))
        return prepared, refusals

    def _prepare(self, line: int, text: str) -> tuple[bytes, bytes] | Refusal:
        """(key, value) of one line, or why it is refused."""
        try:
            record = _parse(text)
        except json.JSONDecodeError as exc:
            return Refusal(line, "json_invalid", f"not valid JSON ({exc.msg} at column {exc.colno})")
        if record.__class__ is not dict:
            return Refusal(line, "json_invalid", "a line must hold one JSON object")
        try:
            value = self._encode(record)
        except EncodeError as exc:
            return Refusal(line, "schema_invalid", str(exc))
        if self._validate:
            problem = self._check(value, line)
            if problem is not None:
                return problem
        return self._key(record), value

    @staticmethod
    def _encoder(catalogue: Any, subject: str) -> Callable[[dict[str, Any]], bytes]:
        """``catalogue.encode(subject, record)`` with the version looked up once, not per record."""
        from recon.avro import MARKER
        from recon.avro._encoder import build_encoder

        if not isinstance(catalogue, SchemaCatalogue) or subject not in catalogue.subjects:
            return lambda record: bytes(catalogue.encode(subject, record))
        current = max(catalogue.versions(subject), key=lambda v: v.version)
        write, header = build_encoder(current.schema), MARKER + current.fingerprint
        return lambda record: write(record, header)

    def _check(self, value: bytes, line: int) -> Refusal | None:
        # Decoding back what was encoded gives validation exactly the record ingest will see
        # (dates as dates, defaults filled in, resolved to the reader version): ~5 µs well spent.
        try:
            decoded = self._catalogue.decode(value, self._subject)
        except DecodeError as exc:  # the encoder should never produce this; say so plainly
            return Refusal(line, exc.code, exc.reason)
        return self.check_decoded(line, decoded.record, decoded.version)

    def check_decoded(self, number: int, record: dict[str, Any], version: int) -> Refusal | None:
        """Domain validation of a record already in the reader's shape (what the decoder returns)."""
        if not self._validate:
            return None
        # Ingest's validation: its fast path for what it accepts, the reference for every refusal,
        # so the decision, code and reason are those of ``validate`` (and ingest's) for every record.
        self._checked += 1
        if self._checked > _RECORDS_PER_VALIDATOR:
            self._rows, self._checked = RowValidator(self._ctx), 1
        result = self._rows.validate(self._subject, record, "publish", 0, number, "", version)
        return Refusal(number, result.code, result.reason) if isinstance(result, Rejection) else None

    def key(self, record: dict[str, Any]) -> bytes:
        """The message key of a record of this subject (the worker's NIK, the agreement id...)."""
        return self._key(record)


def _parse(text: str) -> Any:
    """``json.loads(text)``, the same value or the same error, through orjson (5x faster) when that
    cannot differ.

    The one value orjson reads otherwise is an integer beyond 64 bits: a float there, an int in json
    (which the encoder then refuses as out of range, in its own words). So a document whose value
    holds no float is json's; one that does, rare in our schemas, is read again by json, as is every
    line orjson refuses (json's error words the refusal, and json also takes NaN, 1e400 and lone
    surrogates). Looking for floats in the value costs a quarter of searching the text for 19 digits.
    """
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
    return json.loads(text) if _holds_float(value) else value


def _holds_float(value: Any) -> bool:
    kind = type(value)
    if kind is dict:
        items: Any = value.values()
    elif kind is list:
        items = value
    else:
        return kind is float
    for item in items:
        kind = type(item)
        if kind is float or ((kind is dict or kind is list) and item and _holds_float(item)):
            return True
    return False


def _key_function(subject: str) -> Callable[[dict[str, Any]], bytes]:
    """The message key of a record: its fields joined by ``/``, a field missing counted as ``""``."""
    fields = _KEY_FIELDS[subject]
    if len(fields) == 1:
        (name,) = fields
        return lambda record: str(record.get(name, "")).encode()
    return lambda record: "/".join(str(record.get(f, "")) for f in fields).encode()


def topic_for(subject: str, settings: Settings) -> str:
    return {
        "enrolment": settings.topic_enrolments,
        "claim": settings.topic_claims,
        "agreement": settings.topic_agreements,
        "branch-totals": settings.topic_branch_totals,
        "alert": settings.topic_alerts,
    }[subject]
