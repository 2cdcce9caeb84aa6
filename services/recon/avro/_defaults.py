"""Field defaults: from their JSON form in a schema to the value a decoded record carries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from recon.avro._nodes import Array, Enum, Fixed, Map, Node, Primitive, Record, Union

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
DATE_MIN_DAYS = dt.date.min.toordinal() - EPOCH_ORDINAL
DATE_MAX_DAYS = dt.date.max.toordinal() - EPOCH_ORDINAL
# timestamp-millis values are kept as int, but only ones a datetime can hold (years 1-9999) are
# accepted, so a consumer converting them never meets an OverflowError.
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
TS_MIN_MILLIS = (dt.datetime.min.replace(tzinfo=dt.UTC) - _EPOCH) // dt.timedelta(milliseconds=1)
TS_MAX_MILLIS = (dt.datetime.max.replace(tzinfo=dt.UTC) - _EPOCH) // dt.timedelta(milliseconds=1)


def date_from_days(days: int) -> dt.date:
    """The date ``days`` after 1970-01-01; ValueError outside ``datetime.date``'s range."""
    if not DATE_MIN_DAYS <= days <= DATE_MAX_DAYS:
        raise ValueError("date outside the years 1-9999")
    return dt.date.fromordinal(days + EPOCH_ORDINAL)


def convert_default(node: Node, value: object) -> object:
    """The decoded representation of a JSON default for ``node``; ValueError when it does not fit.

    A union's default may match any branch; the first branch that accepts it wins.
    """
    match node:
        case Primitive():
            return _primitive(node, value)
        case Enum(symbols=symbols):
            if not isinstance(value, str) or value not in symbols:
                raise ValueError("not one of the enum's symbols")
            return value
        case Fixed(size=size):
            raw = _latin1(value)
            if len(raw) != size:
                raise ValueError(f"a fixed default must have {size} bytes")
            return raw
        case Array(items=items):
            if not isinstance(value, list):
                raise ValueError("an array default must be a JSON list")
            return [convert_default(items, v) for v in value]
        case Map(values=values):
            if not isinstance(value, Mapping):
                raise ValueError("a map default must be a JSON object")
            return {str(k): convert_default(values, v) for k, v in value.items()}
        case Record():
            return _record(node, value)
        case Union(branches=branches):
            for branch in branches:
                try:
                    return convert_default(branch, value)
                except ValueError:
                    continue
            raise ValueError("matches no branch of the union")


def _record(node: Record, value: object) -> dict[str, object]:
    if not isinstance(value, Mapping):
        raise ValueError("a record default must be a JSON object")
    out: dict[str, object] = {}
    for fld in node.fields:
        if fld.name in value:
            out[fld.name] = convert_default(fld.type, value[fld.name])
        elif fld.has_default:
            out[fld.name] = fld.default
        else:
            raise ValueError(f"the record default lacks field {fld.name!r}")
    return out


def _primitive(node: Primitive, value: object) -> object:
    t = node.type
    if t == "null":
        if value is not None:
            raise ValueError("a null default must be null")
        return None
    if t == "boolean":
        if not isinstance(value, bool):
            raise ValueError("a boolean default must be true or false")
        return value
    if t in ("int", "long"):
        low, high = (INT_MIN, INT_MAX) if t == "int" else (LONG_MIN, LONG_MAX)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f"an {t} default must be an integer in the {t} range")
        if node.logical == "date":
            return date_from_days(value)
        if node.logical == "timestamp-millis" and not TS_MIN_MILLIS <= value <= TS_MAX_MILLIS:
            raise ValueError("timestamp outside the years 1-9999")
        return value
    if t in ("float", "double"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"a {t} default must be a number")
        return float(value)
    if t == "bytes":
        return _latin1(value)
    if not isinstance(value, str):
        raise ValueError("a string default must be a JSON string")
    return value


def _latin1(value: object) -> bytes:
    # The spec writes bytes and fixed defaults as strings of code points 0-255.
    if not isinstance(value, str):
        raise ValueError("a bytes default must be a JSON string")
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError("a bytes default may only hold code points 0-255") from None
