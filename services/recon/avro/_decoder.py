"""Compile generated decoders into functions, and the public entry points to them."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import linecache
import struct
from typing import Any, Protocol

from recon.avro._codegen import generate
from recon.avro._defaults import EPOCH_ORDINAL
from recon.avro._errors import DecodeError, SchemaError
from recon.avro._schema import Schema

DEFAULT_MAX_ITEMS = 1_000_000
"""Most array and map items one payload may hold, summed over all its collections."""

_RUNTIME: dict[str, object] = {
    "_E": DecodeError,
    "_F": struct.Struct("<f").unpack_from,
    "_D": struct.Struct("<d").unpack_from,
    "_fromordinal": dt.date.fromordinal,
    "_EPOCH_ORDINAL": EPOCH_ORDINAL,
    "_deepcopy": copy.deepcopy,
}
_serial = itertools.count(1)


class DatumReader(Protocol):
    """Decodes one datum from ``data[start:]``; every byte to the end must belong to it.

    Raises only ``DecodeError``. ``data`` must be ``bytes``.
    """

    def __call__(self, data: bytes, start: int = 0, /) -> Any: ...


def build_reader(
    writer: Schema, reader: Schema, max_items: int, *, sequence: bool = False
) -> tuple[DatumReader, list[str]]:
    """A decoder for data written with ``writer`` read as ``reader``, and the soft problems
    (values that will fail with ``unresolvable``). Raises ``SchemaError`` listing the hard problems
    when the two schemas cannot be resolved at all. With ``sequence`` the decoder returns
    ``(datum, end)`` and leaves what follows the datum to the caller (see ``generate``)."""
    if max_items < 0:
        raise ValueError("max_items must not be negative")
    generated = generate(writer.node, reader.node, max_items, sequence=sequence)
    if generated.hard:
        raise SchemaError(generated.hard)
    namespace: dict[str, Any] = {**_RUNTIME, **generated.constants}
    filename = f"<avro decoder {next(_serial)}: {writer.name}>"
    # Keep the source for tracebacks and profilers; it is small and lives as long as the decoder.
    linecache.cache[filename] = (len(generated.source), None, generated.source.splitlines(True), filename)
    # The source holds only identifiers made by the generator and repr() literals (see _codegen).
    exec(compile(generated.source, filename, "exec"), namespace)  # noqa: S102
    read: DatumReader = namespace["read"]
    return read, generated.soft


def compile_decoder(
    writer: Schema, reader: Schema | None = None, *, max_items: int = DEFAULT_MAX_ITEMS
) -> DatumReader:
    """A strict decoder of Avro binary data written with ``writer``, resolved to ``reader``
    (default: the writer schema itself).

    Decoded values: records are dicts, enums their symbol, ``date`` a ``datetime.date``,
    ``timestamp-millis`` an int of milliseconds since the epoch (within the years 1-9999), arrays
    lists, maps dicts, bytes and fixed ``bytes``, null ``None``. Raises ``SchemaError`` when the
    schemas cannot be resolved.
    """
    return build_reader(writer, reader or writer, max_items)[0]


def resolution_problems(writer: Schema, reader: Schema) -> list[str]:
    """Everything that keeps ``reader`` from reading all data written with ``writer``: empty when
    every value resolves (the spec's schema resolution)."""
    generated = generate(writer.node, reader.node, DEFAULT_MAX_ITEMS)
    return generated.hard + generated.soft
