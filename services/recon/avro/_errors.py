"""The codec's errors.

Rule for every message here: name the schema, the field and the rule broken, never a value. Values
may be personal data (a NIK, a name) and these messages end up in logs and dead-letter headers.
"""

from __future__ import annotations

from typing import Literal, get_args

from recon.errors import ConfigError

ErrorCode = Literal[
    "not_single_object",
    "unknown_fingerprint",
    "wrong_subject",
    "malformed",
    "trailing_bytes",
    "too_large",
    "unresolvable",
]
"""Stable, machine-readable kinds of decode failure (dead-letter headers, metric labels):

- ``not_single_object``: shorter than the 10-byte header, or no ``C3 01`` marker.
- ``unknown_fingerprint``: no schema version in the catalogue has the payload's fingerprint.
- ``wrong_subject``: the fingerprint belongs to another subject than the topic carries.
- ``malformed``: the body breaks the Avro binary encoding (truncated, overlong varint, negative or
  too large length, invalid UTF-8, boolean byte other than 0/1, union or enum index out of range,
  impossible block count or size, date or timestamp outside the years 1-9999, too deep nesting).
- ``trailing_bytes``: bytes left over after the datum.
- ``too_large``: more bytes than the catalogue's ``max_message_bytes``, or more array and map
  items than its ``max_items``.
- ``unresolvable``: a well-formed value the reader schema cannot take (a writer enum symbol the
  reader lacks and has no default for, a writer union branch with no reader match).
"""

ERROR_CODES: tuple[ErrorCode, ...] = get_args(ErrorCode)


class AvroError(Exception):
    """Base of the codec's errors."""


class DecodeError(AvroError):
    """A payload that cannot be decoded. The only exception decoding lets escape.

    ``code`` is one of :data:`ErrorCode`; ``reason`` is one sentence for people that names the
    field and the rule, never a value.
    """

    def __init__(
        self, code: ErrorCode, reason: str, *, subject: str | None = None, version: int | None = None
    ) -> None:
        super().__init__(f"{code}: {reason}")
        self.code: ErrorCode = code
        self.reason = reason
        self.subject = subject
        """The writer schema's subject, when the fingerprint was known."""
        self.version = version
        """The writer schema's version, when the fingerprint was known."""

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_decode_error, (self.code, self.reason, self.subject, self.version))


def _rebuild_decode_error(
    code: ErrorCode, reason: str, subject: str | None, version: int | None
) -> DecodeError:
    return DecodeError(code, reason, subject=subject, version=version)


class EncodeError(AvroError, ValueError):
    """A record that does not fit its schema. The message names the field, never the value."""


class SchemaError(AvroError, ConfigError):
    """A schema file or schema that cannot be used: bad JSON, bad schema, or schemas that do not
    resolve. ``problems`` lists every problem found, one sentence each. A ``ConfigError``, so the
    CLI prints it and exits non-zero."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))
