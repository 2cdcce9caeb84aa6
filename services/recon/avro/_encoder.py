"""A validating Avro binary encoder, generated once per schema (see _encodegen), and its helpers.

Every value is checked against its schema (no bool for an int, no unknown enum symbol, ranges...)
and a refusal names the field, never the value: `recon publish` shows them per line.
"""

from __future__ import annotations

import datetime as dt
import itertools
import linecache
import re
import struct
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from recon.avro._defaults import (
    DATE_MAX_DAYS,
    DATE_MIN_DAYS,
    EPOCH_ORDINAL,
    TS_MAX_MILLIS,
    TS_MIN_MILLIS,
)
from recon.avro._encodegen import generate_encoder
from recon.avro._errors import EncodeError
from recon.avro._schema import Schema

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MILLI = dt.timedelta(milliseconds=1)
_serial = itertools.count(1)


class Encoder(Protocol):
    """``prefix`` (default none) followed by the Avro binary body of ``value``; raises ``EncodeError``."""

    def __call__(self, value: object, prefix: bytes = b"", /) -> bytes: ...


def build_encoder(schema: Schema) -> Encoder:
    """The Avro binary body of a value of ``schema``; raises ``EncodeError`` naming the field.

    Accepts for ``date``: ``datetime.date``, ``'YYYY-MM-DD'`` or int days since 1970-01-01; for
    ``timestamp-millis``: int milliseconds, an aware ``datetime`` or an ISO-8601 string with an offset.
    A record field missing from the value takes its default. ``encoder(value, prefix)`` returns
    ``prefix + encoder(value)`` without the copy (a single-object header, say).
    """
    source, constants = generate_encoder(schema.node, schema.name)
    namespace: dict[str, Any] = {**_RUNTIME, **constants}
    filename = f"<avro encoder {next(_serial)}: {schema.name}>"
    # Keep the source for tracebacks and profilers; it is small and lives as long as the encoder.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    # The source holds only identifiers made by the generator and repr() literals (see _encodegen).
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102
    encode: Encoder = namespace["encode"]
    return encode


def _refuse(path: str, rule: str) -> EncodeError:
    return EncodeError(f"{path}: {rule}")


def _kind(value: object) -> str:
    return type(value).__name__


def _extra(value: Iterable[object], names: frozenset[str]) -> str:
    """The refusal of a record holding keys its schema lacks: how many, and those that are names."""
    extra = [k for k in value if k not in names]
    shown = ", ".join(repr(k) for k in extra if isinstance(k, str) and _IDENTIFIER.match(k))
    return f"{len(extra)} field(s) not in the schema" + (f": {shown}" if shown else "")


def _plain_int(value: Any, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _refuse(path, f"expected an integer, got {_kind(value)}")
    return value


def date_to_days(value: Any, path: str) -> int:
    """Days since 1970-01-01 of a ``date``, a ``'YYYY-MM-DD'`` string or an int of days."""
    if isinstance(value, str):
        if not _ISO_DATE.match(value):
            raise _refuse(path, "a date string must be YYYY-MM-DD")
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            raise _refuse(path, "not a valid calendar date") from None
    if isinstance(value, dt.datetime):
        raise _refuse(path, "expected a date, got a datetime")
    if isinstance(value, dt.date):
        return value.toordinal() - EPOCH_ORDINAL
    days = _plain_int(value, path)
    if not DATE_MIN_DAYS <= days <= DATE_MAX_DAYS:
        raise _refuse(path, "the date is outside the years 1-9999")
    return days


def timestamp_to_millis(value: Any, path: str) -> int:
    """Milliseconds since the epoch of an int, an aware ``datetime`` or an ISO-8601 string with an
    offset (``Z`` or ``+07:00``). Naive times are refused: their instant is unknown."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise _refuse(path, "not an ISO-8601 timestamp") from None
    if isinstance(value, dt.datetime):
        if value.utcoffset() is None:
            raise _refuse(path, "the timestamp has no time zone offset")
        millis = (value - _EPOCH) // _MILLI
    else:
        millis = _plain_int(value, path)
    if not TS_MIN_MILLIS <= millis <= TS_MAX_MILLIS:
        raise _refuse(path, "the timestamp is outside the years 1-9999")
    return millis


_RUNTIME: dict[str, object] = {
    "_E": EncodeError,
    "_BYTES": (bytes, bytearray),
    "_NUMBER": (int, float),
    "_SEQUENCE": (list, tuple),
    "_MAPPING": Mapping,
    "_FLOAT": struct.Struct("<f").pack,
    "_DOUBLE": struct.Struct("<d").pack,
    "_StructError": struct.error,
    "_date_to_days": date_to_days,
    "_timestamp_to_millis": timestamp_to_millis,
    "_extra": _extra,
}
