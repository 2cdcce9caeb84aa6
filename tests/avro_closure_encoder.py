"""The closure encoder `recon.avro` used before the generated one (commit a352885), kept only as the
reference the generated encoder must agree with, byte for byte and refusal for refusal
(tests/unit/test_avro_encoder_generated.py). Not used by the service: do not import it from services/.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
from collections.abc import Callable, Mapping
from typing import Any

from recon.avro._defaults import (
    DATE_MAX_DAYS,
    DATE_MIN_DAYS,
    EPOCH_ORDINAL,
    INT_MAX,
    INT_MIN,
    LONG_MAX,
    LONG_MIN,
    TS_MAX_MILLIS,
    TS_MIN_MILLIS,
)
from recon.avro._errors import EncodeError
from recon.avro._nodes import Array, Enum, Fixed, Map, Node, Primitive, Record, Union, short_name
from recon.avro._schema import Schema

Writer = Callable[[Any, bytearray], None]
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MILLI = dt.timedelta(milliseconds=1)
_FLOAT = struct.Struct("<f").pack
_DOUBLE = struct.Struct("<d").pack


def build_encoder(schema: Schema) -> Callable[[object], bytes]:
    """The Avro binary body of a value of ``schema``; raises ``EncodeError`` naming the field.

    Accepts for ``date``: ``datetime.date``, ``'YYYY-MM-DD'`` or int days since 1970-01-01; for
    ``timestamp-millis``: int milliseconds, an aware ``datetime`` or an ISO-8601 string with an offset.
    A record field missing from the value takes its default.
    """
    root = schema.node
    write = _compile(root, short_name(schema.name), {})

    def encode(value: object) -> bytes:
        out = bytearray()
        write(value, out)
        return bytes(out)

    return encode


def write_long(value: int, out: bytearray) -> None:
    """Zig-zag varint of an int already checked to be in the long range."""
    z = (value << 1) ^ (value >> 63)
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)


def _refuse(path: str, rule: str) -> EncodeError:
    return EncodeError(f"{path}: {rule}")


def _kind(value: object) -> str:
    return type(value).__name__


def _compile(node: Node, path: str, busy: dict[int, Writer]) -> Writer:
    match node:
        case Primitive():
            return _primitive(node, path)
        case Enum(symbols=symbols):
            return _enum(symbols, path)
        case Fixed(size=size):
            return _fixed(size, path)
        case Array(items=items):
            return _array(_compile(items, f"{path}[]", busy), path)
        case Map(values=values):
            return _map(_compile(values, f"{path}{{}}", busy), path)
        case Union(branches=branches):
            return _union(branches, path, busy)
        case Record():
            return _record(node, path, busy)


def _record(node: Record, path: str, busy: dict[int, Writer]) -> Writer:
    if id(node) in busy:
        return busy[id(node)]
    fields: list[tuple[str, Writer, bool, object]] = []
    names = frozenset(f.name for f in node.fields)

    def write(value: Any, out: bytearray) -> None:
        if not isinstance(value, Mapping):
            raise _refuse(path, f"expected a record (mapping), got {_kind(value)}")
        extra = [k for k in value if k not in names]
        if extra:
            shown = ", ".join(repr(k) for k in extra if isinstance(k, str) and _IDENTIFIER.match(k))
            raise _refuse(path, f"{len(extra)} field(s) not in the schema" + (f": {shown}" if shown else ""))
        for name, field_writer, has_default, default in fields:
            if name in value:
                field_writer(value[name], out)
            elif has_default:
                field_writer(default, out)
            else:
                raise _refuse(f"{path}.{name}", "missing, and the field has no default")

    busy[id(node)] = write
    for fld in node.fields:
        fields.append(
            (fld.name, _compile(fld.type, f"{path}.{fld.name}", busy), fld.has_default, fld.default)
        )
    del busy[id(node)]
    return write


def _union(branches: tuple[Node, ...], path: str, busy: dict[int, Writer]) -> Writer:
    null_index = next(
        (i for i, b in enumerate(branches) if isinstance(b, Primitive) and b.type == "null"), None
    )
    others = [(i, _compile(b, path, busy)) for i, b in enumerate(branches) if i != null_index]

    def write(value: Any, out: bytearray) -> None:
        if value is None and null_index is not None:
            write_long(null_index, out)
            return
        failure: EncodeError | None = None
        for index, branch_writer in others:
            attempt = bytearray()
            try:
                branch_writer(value, attempt)
            except EncodeError as exc:
                failure = exc
                continue
            write_long(index, out)
            out += attempt
            return
        if len(others) == 1 and failure is not None:
            raise failure
        raise _refuse(path, f"a {_kind(value)} value fits no branch of the union")

    return write


def _array(item_writer: Writer, path: str) -> Writer:
    def write(value: Any, out: bytearray) -> None:
        if not isinstance(value, list | tuple):
            raise _refuse(path, f"expected an array (list), got {_kind(value)}")
        if value:
            write_long(len(value), out)
            for item in value:
                item_writer(item, out)
        out.append(0)

    return write


def _map(value_writer: Writer, path: str) -> Writer:
    key_writer = _string(path)

    def write(value: Any, out: bytearray) -> None:
        if not isinstance(value, Mapping):
            raise _refuse(path, f"expected a map (mapping), got {_kind(value)}")
        if value:
            write_long(len(value), out)
            for key, item in value.items():
                if not isinstance(key, str):
                    raise _refuse(path, "map keys must be strings")
                key_writer(key, out)
                value_writer(item, out)
        out.append(0)

    return write


def _enum(symbols: tuple[str, ...], path: str) -> Writer:
    index = {s: i for i, s in enumerate(symbols)}

    def write(value: Any, out: bytearray) -> None:
        if not isinstance(value, str) or value not in index:
            raise _refuse(path, f"not one of the symbols {', '.join(symbols)}")
        write_long(index[value], out)

    return write


def _fixed(size: int, path: str) -> Writer:
    def write(value: Any, out: bytearray) -> None:
        if not isinstance(value, bytes | bytearray) or len(value) != size:
            raise _refuse(path, f"expected exactly {size} bytes")
        out += value

    return write


def _string(path: str) -> Writer:
    def write(value: Any, out: bytearray) -> None:
        if not isinstance(value, str):
            raise _refuse(path, f"expected a string, got {_kind(value)}")
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError:
            raise _refuse(path, "the string holds characters UTF-8 cannot encode (lone surrogates)") from None
        write_long(len(raw), out)
        out += raw

    return write


def _primitive(node: Primitive, path: str) -> Writer:
    kind = node.type
    if kind == "string":
        return _string(path)
    if kind in ("int", "long"):
        return _integer(node, path)
    if kind in ("float", "double"):
        return _real(kind, path)
    if kind == "boolean":
        return _boolean(path)
    if kind == "bytes":
        return _bytes(path)
    return _null(path)


def _null(path: str) -> Writer:
    def write(value: Any, out: bytearray) -> None:
        if value is not None:
            raise _refuse(path, f"expected null, got {_kind(value)}")

    return write


def _boolean(path: str) -> Writer:
    def write(value: Any, out: bytearray) -> None:
        if not isinstance(value, bool):
            raise _refuse(path, f"expected a boolean, got {_kind(value)}")
        out.append(1 if value else 0)

    return write


def _bytes(path: str) -> Writer:
    def write(value: Any, out: bytearray) -> None:
        if not isinstance(value, bytes | bytearray):
            raise _refuse(path, f"expected bytes, got {_kind(value)}")
        write_long(len(value), out)
        out += value

    return write


def _real(kind: str, path: str) -> Writer:
    pack = _FLOAT if kind == "float" else _DOUBLE

    def write(value: Any, out: bytearray) -> None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _refuse(path, f"expected a number, got {_kind(value)}")
        try:
            out += pack(float(value))
        except (OverflowError, struct.error):
            raise _refuse(path, f"the number is out of the {kind} range") from None

    return write


def _integer(node: Primitive, path: str) -> Writer:
    low, high = (INT_MIN, INT_MAX) if node.type == "int" else (LONG_MIN, LONG_MAX)
    convert: Callable[[Any, str], int] = _plain_int
    if node.logical == "date":
        convert = date_to_days
    elif node.logical == "timestamp-millis":
        convert = timestamp_to_millis

    def write(value: Any, out: bytearray) -> None:
        number = convert(value, path)
        if not low <= number <= high:
            raise _refuse(path, f"the integer is out of the {node.type} range")
        write_long(number, out)

    return write


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
