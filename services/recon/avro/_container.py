"""A strict reader of Avro object container files (the spec's "Object Container Files").

A file is ``Obj\\x01``, a metadata map (``avro.schema``: the writer schema's JSON; ``avro.codec``:
``null``, ``deflate`` or ``snappy``), a 16-byte sync marker, then blocks: an object count (long), the
byte size of the serialized objects after compression (long), the objects, the sync marker again.

Nothing is trusted: the magic, every count and size is bounded before anything is allocated or
read (metadata entries and bytes, records and bytes per block, the decompressed size), every block
must end with the header's sync marker, a snappy block's CRC-32 must match, and the records of a
block must fill it exactly. The writer schema is matched by fingerprint to a version of the
catalogue; records are decoded by our strict decoder, resolved to the subject's reader version.
Errors name the block and the rule, never a value (a record may hold a NIK).

Usage::

    with path.open("rb") as stream:
        header = read_header(stream, catalogue)
        for raw in read_blocks(stream, header):
            for record, datum in decode_block(header, raw):   # a whole block, or ContainerError
                ...
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, Final

from recon.avro._catalogue import SchemaCatalogue
from recon.avro._decoder import build_reader
from recon.avro._errors import AvroError, DecodeError, SchemaError
from recon.avro._files import SchemaVersion
from recon.avro._schema import schema_from_json

MAGIC: Final = b"Obj\x01"
SYNC_SIZE: Final = 16
CODECS: Final = ("null", "deflate", "snappy")
MAX_METADATA_ENTRIES: Final = 1_000
MAX_METADATA_BYTES: Final = 1 << 20
DEFAULT_MAX_BLOCK_BYTES: Final = 64 << 20
"""Most bytes one block may take in the file, and most it may decompress to."""
DEFAULT_MAX_BLOCK_RECORDS: Final = 1_000_000
_ZLIB_TRAILER = 4


class ContainerError(AvroError):
    """A container file that cannot be read. ``block`` is the 1-based block number (None: the
    header); ``reason`` one sentence naming the rule broken, never a value."""

    def __init__(self, reason: str, *, block: int | None = None) -> None:
        where = "header" if block is None else f"block {block}"
        super().__init__(f"{where}: {reason}")
        self.block = block
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Header:
    """What a file's header says, the writer schema found in the catalogue."""

    version: SchemaVersion
    codec: str
    sync: bytes
    metadata: dict[str, bytes]
    end: int
    """File offset of the first block."""
    read: Any  # the sequence decoder: (buf, pos) -> (record, end)


@dataclass(frozen=True, slots=True)
class RawBlock:
    """One block as stored: ``data`` still compressed."""

    number: int
    offset: int
    """File offset where the block starts (its count)."""
    count: int
    data: bytes
    end: int
    """File offset just after its sync marker: where the next block starts."""


def read_header(stream: IO[bytes], catalogue: SchemaCatalogue, *, max_items: int = 1_000_000) -> Header:
    """Read and check the header at the start of ``stream``; find its schema in ``catalogue``."""
    reader = _Reader(stream, None)
    if reader.take(4, "the file is shorter than the 4-byte magic") != MAGIC:
        raise ContainerError("not an Avro object container file (no Obj\\x01 magic)")
    metadata = _metadata(reader)
    sync = reader.take(SYNC_SIZE, "the file ends inside the sync marker")
    codec = metadata.get("avro.codec", b"null").decode("ascii", "replace")
    if codec not in CODECS:
        raise ContainerError(f"codec {codec!r} is not supported: write the file with null, deflate or snappy")
    if codec == "snappy":
        _snappy()  # fail here, before any block, when the library is missing
    version = _find_version(metadata, catalogue)
    reader_schema = catalogue.reader(version.subject).schema
    read, _ = build_reader(version.schema, reader_schema, max_items, sequence=True)
    return Header(version, codec, sync, metadata, reader.offset, read)


def read_blocks(
    stream: IO[bytes],
    header: Header,
    *,
    start: int | None = None,
    first_number: int = 1,
    max_block_bytes: int = DEFAULT_MAX_BLOCK_BYTES,
    max_block_records: int = DEFAULT_MAX_BLOCK_RECORDS,
) -> Iterator[RawBlock]:
    """The blocks from file offset ``start`` (default: the first block) to the end of the file.

    ``first_number`` is the number of the block at ``start`` (a resumed read). Raises
    ``ContainerError`` for a truncated block, an impossible count or size, or a wrong sync marker."""
    offset = header.end if start is None else start
    stream.seek(offset)
    number = first_number
    while True:
        reader = _Reader(stream, number, offset)
        first = stream.read(1)
        if not first:
            return
        count = reader.long(first, "record count")
        size = reader.long(None, "byte size")
        if count < 1 or count > max_block_records:
            raise ContainerError(f"record count {count} is outside 1..{max_block_records}", block=number)
        if size < 1 or size > max_block_bytes:
            raise ContainerError(f"byte size {size} is outside 1..{max_block_bytes}", block=number)
        data = reader.take(size, f"the file ends inside the block ({size} bytes announced): truncated")
        sync = reader.take(SYNC_SIZE, "the file ends before the block's sync marker: truncated")
        if sync != header.sync:
            raise ContainerError("the sync marker after the block does not match the header's", block=number)
        yield RawBlock(number, offset, count, data, reader.offset)
        offset, number = reader.offset, number + 1


def decode_block(
    header: Header, block: RawBlock, *, max_block_bytes: int = DEFAULT_MAX_BLOCK_BYTES
) -> list[tuple[dict[str, Any], bytes]]:
    """Every record of ``block`` as (record resolved to the reader version, the datum's bytes as
    written), or ``ContainerError`` for the whole block: nothing of a bad block comes out."""
    data = decompress(header.codec, block.data, block.number, max_block_bytes)
    out: list[tuple[dict[str, Any], bytes]] = []
    pos, size, read = 0, len(data), header.read
    for index in range(block.count):
        if pos >= size:
            raise ContainerError(
                f"the block announces {block.count} records but its data ends after {index}",
                block=block.number,
            )
        try:
            record, end = read(data, pos)
        except DecodeError as exc:
            raise ContainerError(
                f"record {index + 1} of the block: {exc.code}: {exc.reason}", block=block.number
            ) from None
        out.append((record, data[pos:end]))
        pos = end
    if pos != size:
        raise ContainerError(
            f"{size - pos} byte(s) left over after the block's {block.count} records", block=block.number
        )
    return out


def decompress(codec: str, data: bytes, number: int, max_bytes: int = DEFAULT_MAX_BLOCK_BYTES) -> bytes:
    """A block's data, decompressed within ``max_bytes``."""
    if codec == "null":
        return data
    if codec == "deflate":
        inflater = zlib.decompressobj(-15)  # raw deflate (RFC 1951), as the spec says
        try:
            out = inflater.decompress(data, max_bytes)
        except zlib.error:
            raise ContainerError("the deflate data is corrupt", block=number) from None
        if inflater.unconsumed_tail:
            raise ContainerError(f"the block inflates to more than {max_bytes} bytes", block=number)
        if not inflater.eof:
            raise ContainerError("the deflate data is truncated", block=number)
        # fastavro writes zlib.compress(...)[2:-1]: raw deflate plus 3 bytes of zlib's Adler-32
        # trailer. Accept what a zlib trailer can leave (4 bytes at most), nothing more.
        if len(inflater.unused_data) > _ZLIB_TRAILER:
            raise ContainerError("the deflate data is followed by stray bytes", block=number)
        return out
    return _unsnappy(data, number, max_bytes)


def _unsnappy(data: bytes, number: int, max_bytes: int) -> bytes:
    """Raw snappy of the data, then the big-endian CRC-32 of the uncompressed data."""
    if len(data) < 5:
        raise ContainerError("the snappy block is shorter than its 4-byte checksum", block=number)
    body, crc = data[:-4], struct.unpack(">I", data[-4:])[0]
    announced, shift = 0, 0
    for i, b in enumerate(body[:5]):  # snappy's preamble: the uncompressed length, a varint
        announced |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            break
        if i == 4:
            raise ContainerError("the snappy length preamble is malformed", block=number)
    if announced > max_bytes:
        raise ContainerError(f"the block decompresses to more than {max_bytes} bytes", block=number)
    try:
        out = bytes(_snappy().decompress_raw(body))
    except Exception:
        raise ContainerError("the snappy data is corrupt", block=number) from None
    if zlib.crc32(out) != crc:
        raise ContainerError("the snappy block's CRC-32 does not match its data", block=number)
    return out


def _snappy() -> Any:
    try:
        from cramjam import snappy
    except ImportError:  # pragma: no cover - cramjam is a pinned dependency
        raise ContainerError(
            "the file uses snappy but cramjam is not installed: pip install cramjam"
        ) from None
    return snappy


def _find_version(metadata: dict[str, bytes], catalogue: SchemaCatalogue) -> SchemaVersion:
    raw = metadata.get("avro.schema")
    if raw is None:
        raise ContainerError("the metadata has no avro.schema")
    try:
        schema = schema_from_json(json.loads(raw.decode("utf-8")))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ContainerError("avro.schema is not valid JSON") from None
    except SchemaError as exc:
        raise ContainerError(f"avro.schema is not a valid schema ({'; '.join(exc.problems)})") from None
    for version in catalogue.versions():
        if version.fingerprint == schema.fingerprint:
            return version
    raise ContainerError(
        f"the file's schema {schema.name} (fingerprint {schema.fingerprint_hex}) is not a version in the "
        "schemas folder: backfill takes only files written with a published schema (recon schemas list)"
    )


def _metadata(reader: _Reader) -> dict[str, bytes]:
    entries: dict[str, bytes] = {}
    total = 0
    while True:
        count = reader.long(None, "metadata block count")
        if count == 0:
            return entries
        if count < 0:
            count = -count
            reader.long(None, "metadata block size")
        if len(entries) + count > MAX_METADATA_ENTRIES:
            raise ContainerError(f"the metadata holds more than {MAX_METADATA_ENTRIES} entries")
        for _ in range(count):
            key = reader.blob(MAX_METADATA_BYTES - total, "metadata key")
            value = reader.blob(MAX_METADATA_BYTES - total - len(key), "metadata value")
            total += len(key) + len(value)
            try:
                entries[key.decode("utf-8")] = value
            except UnicodeDecodeError:
                raise ContainerError("a metadata key is not valid UTF-8") from None


class _Reader:
    """Bounded reads from a stream, tracking the file offset; errors name the block."""

    def __init__(self, stream: IO[bytes], block: int | None, offset: int = 0) -> None:
        self._stream = stream
        self._block = block
        self.offset = offset

    def take(self, size: int, truncated: str) -> bytes:
        data = self._stream.read(size)
        if len(data) != size:
            raise ContainerError(truncated, block=self._block)
        self.offset += size
        return data

    def long(self, first: bytes | None, what: str) -> int:
        value, shift = 0, 0
        for i in range(10):
            b = first[0] if (first and i == 0) else self.take(1, f"the file ends inside the {what}")[0]
            if first and i == 0:
                self.offset += 1
            value |= (b & 0x7F) << shift
            if b < 0x80:
                return (value >> 1) ^ -(value & 1)
            shift += 7
        raise ContainerError(f"the {what} is a varint longer than 10 bytes", block=self._block)

    def blob(self, limit: int, what: str) -> bytes:
        size = self.long(None, f"{what} length")
        if size < 0 or size > limit:
            raise ContainerError(f"the {what} length {size} is negative or beyond the metadata's bounds")
        return self.take(size, f"the file ends inside a {what}")
