"""The schema catalogue: every published version of every subject, found by fingerprint.

Usage::

    catalogue = SchemaCatalogue.load(settings.schemas_dir, max_message_bytes=settings.max_message_bytes)
    payload = catalogue.encode("enrolment", record)
    decoded = catalogue.decode(payload, expected_subject="enrolment")
    decoded.record["nik"]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recon.avro._decoder import DEFAULT_MAX_ITEMS, DatumReader, build_reader
from recon.avro._encoder import Encoder, build_encoder
from recon.avro._errors import DecodeError, EncodeError, SchemaError
from recon.avro._files import SchemaVersion, scan

MARKER = b"\xc3\x01"
"""The two bytes opening every single-object encoded payload."""
HEADER_SIZE = 10
"""Marker plus the 8-byte fingerprint."""
DEFAULT_MAX_MESSAGE_BYTES = 1_000_000


@dataclass(frozen=True, slots=True)
class Decoded:
    """One decoded payload.

    ``subject`` and ``version`` are the writer's; ``record`` has the shape of the subject's reader
    (current) version. ``fingerprint`` is the writer schema's spec fingerprint (8 bytes, wire order),
    also when the payload carried one of its aliases, so the lineage is one per version.
    """

    subject: str
    version: int
    fingerprint: bytes
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Writer:
    subject: str
    version: int
    fingerprint: bytes
    read: DatumReader


class SchemaCatalogue:
    """All versions of all subjects in a schemas folder; decodes and encodes single-object payloads.

    Each writer version gets a decoder resolving it to its subject's reader version (the highest,
    unless ``reader_versions`` pins another), compiled at load. A version is found by its spec
    fingerprint and by its aliases (what the Go libraries write); two versions sharing any of them
    are refused. Thread-safe once built.
    """

    def __init__(
        self,
        versions: tuple[SchemaVersion, ...],
        *,
        reader_versions: Mapping[str, int] | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_items: int = DEFAULT_MAX_ITEMS,
    ) -> None:
        """Build from parsed versions (see :meth:`load`). Raises ``SchemaError`` when a pinned reader
        version does not exist, a writer version cannot be resolved to its reader, or two versions
        share a fingerprint (spec or alias)."""
        self._versions = versions
        self._max_message = max_message_bytes
        self._readers = _reader_versions(versions, reader_versions or {})
        problems = fingerprint_collisions(versions)
        self._by_fingerprint: dict[bytes, _Writer] = {}
        for v in versions:
            reader = self._readers[v.subject]
            try:
                read, _ = build_reader(v.schema, reader.schema, max_items)
            except SchemaError as exc:
                problems += [f"{v.path} read as {reader.path.name}: {p}" for p in exc.problems]
                continue
            writer = _Writer(v.subject, v.version, v.fingerprint, read)
            self._by_fingerprint[v.fingerprint] = writer
            for alias in v.schema.aliases:
                self._by_fingerprint[alias.fingerprint] = writer
        if problems:
            raise SchemaError(problems)
        self._encoders: dict[tuple[str, int], Encoder] = {}

    @classmethod
    def load(
        cls,
        schemas_dir: Path,
        *,
        reader_versions: Mapping[str, int] | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_items: int = DEFAULT_MAX_ITEMS,
    ) -> SchemaCatalogue:
        """Read every ``<subject>/v<N>.avsc`` under ``schemas_dir``.

        ``reader_versions`` pins the version a subject's data is read as (an old reader); by default
        the highest. ``max_message_bytes`` bounds a payload (``too_large`` beyond); ``max_items``
        bounds the array and map items of one payload. Raises ``SchemaError`` listing every problem,
        each naming its file.
        """
        found = scan(schemas_dir)
        if found.problems:
            raise SchemaError(list(found.problems))
        return cls(
            found.versions,
            reader_versions=reader_versions,
            max_message_bytes=max_message_bytes,
            max_items=max_items,
        )

    @property
    def subjects(self) -> tuple[str, ...]:
        return tuple(self._readers)

    def versions(self, subject: str | None = None) -> tuple[SchemaVersion, ...]:
        """Every version (of one subject, or of all), by subject then version."""
        return tuple(v for v in self._versions if subject is None or v.subject == subject)

    def reader(self, subject: str) -> SchemaVersion:
        """The version ``subject``'s payloads decode into: the highest, unless pinned at load."""
        self._check_subject(subject)
        return self._readers[subject]

    def decode(self, payload: bytes | bytearray | memoryview, expected_subject: str | None = None) -> Decoded:
        """Decode one single-object payload (``C3 01``, 8 fingerprint bytes, Avro binary body).

        The writer schema is found by fingerprint (the spec's or an alias) and resolved to its
        subject's reader version.
        Raises only ``DecodeError`` for a bad payload (``ValueError`` for an unknown
        ``expected_subject`` and ``TypeError`` for a payload that is not bytes-like: a caller's
        mistake, not the producer's).
        """
        if expected_subject is not None and expected_subject not in self._readers:
            self._check_subject(expected_subject)
        if type(payload) is not bytes:
            payload = _as_bytes(payload)
        size = len(payload)
        if size > self._max_message:
            raise DecodeError(
                "too_large", f"the payload has {size} bytes, more than the {self._max_message} allowed"
            )
        if size < HEADER_SIZE or payload[:2] != MARKER:
            raise DecodeError("not_single_object", _not_single_object(size))
        fingerprint = payload[2:HEADER_SIZE]
        writer = self._by_fingerprint.get(fingerprint)
        if writer is None:
            raise DecodeError(
                "unknown_fingerprint", f"no schema in the catalogue has fingerprint {fingerprint.hex()}"
            )
        if expected_subject is not None and writer.subject != expected_subject:
            raise DecodeError(
                "wrong_subject",
                f"the payload was written with schema {writer.subject} v{writer.version}, "
                f"but this topic carries {expected_subject}",
                subject=writer.subject,
                version=writer.version,
            )
        try:
            record = writer.read(payload, HEADER_SIZE)
        except DecodeError as exc:
            exc.subject, exc.version = writer.subject, writer.version
            raise
        return Decoded(writer.subject, writer.version, writer.fingerprint, record)

    def encode(self, subject: str, record: Mapping[str, Any], version: int | None = None) -> bytes:
        """A single-object payload of ``record`` written with ``subject``'s ``version`` (default: the
        highest). Raises ``EncodeError`` naming the field (never the value) when it does not fit."""
        target = self._version(subject, version)
        key = (subject, target.version)
        encoder = self._encoders.get(key)
        if encoder is None:
            encoder = self._encoders.setdefault(key, build_encoder(target.schema))
        return encoder(record, MARKER + target.fingerprint)

    def _version(self, subject: str, version: int | None) -> SchemaVersion:
        candidates = self.versions(subject)
        if not candidates:
            raise EncodeError(f"unknown subject {subject!r}; known: {', '.join(self.subjects)}")
        if version is None:
            return max(candidates, key=lambda v: v.version)
        for v in candidates:
            if v.version == version:
                return v
        raise EncodeError(f"{subject} has no version {version}")

    def _check_subject(self, subject: str) -> None:
        if subject not in self._readers:
            raise ValueError(f"unknown subject {subject!r}; known: {', '.join(self.subjects)}")


def fingerprint_collisions(versions: tuple[SchemaVersion, ...]) -> list[str]:
    """One sentence per fingerprint (spec or alias) that two different versions share: a payload
    carrying it could not say which version wrote it."""
    owner: dict[bytes, tuple[SchemaVersion, str]] = {}
    problems = []
    for v in versions:
        named = [(v.fingerprint, "spec")] + [(a.fingerprint, f"{a.library} alias") for a in v.schema.aliases]
        for fingerprint, kind in named:
            first = owner.setdefault(fingerprint, (v, kind))
            if first[0] is not v:
                problems.append(
                    f"{v.path}: its {kind} fingerprint {fingerprint.hex()} is the {first[1]} fingerprint "
                    f"of {first[0].path}; a new version must hash differently (a doc change does not count)"
                )
    return problems


def _as_bytes(payload: object) -> bytes:
    # The generated decoders index and slice plain bytes; anything else is copied once.
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise TypeError(f"a payload is bytes, not {type(payload).__name__}")
    return bytes(payload)


def _not_single_object(size: int) -> str:
    if size < HEADER_SIZE:
        return f"the payload has {size} bytes, fewer than the 10-byte single-object header"
    return "the payload does not start with the single-object marker C3 01"


def _reader_versions(
    versions: tuple[SchemaVersion, ...], pinned: Mapping[str, int]
) -> dict[str, SchemaVersion]:
    readers: dict[str, SchemaVersion] = {}
    for v in versions:
        want = pinned.get(v.subject)
        if want is None or v.version == want:
            current = readers.get(v.subject)
            if current is None or (want is None and v.version > current.version):
                readers[v.subject] = v
    for subject, want in pinned.items():
        if subject not in readers:
            raise SchemaError(f"reader version {subject} v{want} is not in the catalogue")
    return readers
