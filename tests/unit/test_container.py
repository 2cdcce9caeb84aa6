"""Our strict object-container reader on files fastavro writes, and on every way a file can be broken."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import fastavro
import pytest

from factories import claim_record, enrolment_record, valid_nik
from recon.avro import SchemaCatalogue
from recon.avro._container import ContainerError, decode_block, read_blocks, read_header
from recon.settings import load_settings

SCHEMAS = load_settings().schemas_dir


@pytest.fixture(scope="module")
def catalogue() -> SchemaCatalogue:
    return SchemaCatalogue.load(SCHEMAS)


def records(subject: str, version: int, n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        nik = valid_nik(serial=1 + i)
        if subject == "claim":
            out.append(claim_record(event_id=f"c-{i}", nik=nik))
            continue
        record = enrolment_record(event_id=f"e-{i}", nik=nik, source_system="SIPP" if i % 2 else None)
        if version == 1:
            record.pop("source_system")
        out.append(record)
    return out


def container(
    subject: str, version: int, rows: list[dict[str, Any]], codec: str = "null", every: int = 2000
) -> bytes:
    schema = fastavro.parse_schema(json.loads((SCHEMAS / subject / f"v{version}.avsc").read_text()))
    out = io.BytesIO()
    fastavro.writer(out, schema, rows, codec=codec, sync_interval=every)
    return out.getvalue()


def read_all(catalogue: SchemaCatalogue, data: bytes) -> tuple[Any, list[list[tuple[dict[str, Any], bytes]]]]:
    stream = io.BytesIO(data)
    header = read_header(stream, catalogue)
    return header, [decode_block(header, raw) for raw in read_blocks(stream, header)]


@pytest.mark.parametrize("codec", ["null", "deflate", "snappy"])
@pytest.mark.parametrize(("subject", "version"), [("enrolment", 1), ("enrolment", 2), ("claim", 1)])
def test_fastavro_files_read_as_the_catalogue_decodes_each_record(
    catalogue: SchemaCatalogue, codec: str, subject: str, version: int
) -> None:
    rows = records(subject, version, 300)

    header, blocks = read_all(catalogue, container(subject, version, rows, codec))

    assert (header.version.subject, header.version.version, header.codec) == (subject, version, codec)
    assert len(blocks) > 1, "the file should span several blocks"
    got = [item for block in blocks for item in block]
    assert len(got) == len(rows)
    for row, (record, datum) in zip(rows, got, strict=True):
        single = catalogue.encode(subject, row, version=version)
        assert datum == single[10:], "the datum is the writer's bytes, ready to frame as a single object"
        assert record == catalogue.decode(single, subject).record


def test_a_schema_that_is_not_ours_is_refused_by_name(catalogue: SchemaCatalogue) -> None:
    schema = json.loads((SCHEMAS / "enrolment" / "v2.avsc").read_text())
    schema["fields"].append({"name": "branch_note", "type": ["null", "string"], "default": None})
    out = io.BytesIO()
    fastavro.writer(out, fastavro.parse_schema(schema), records("enrolment", 2, 3))

    with pytest.raises(ContainerError, match="is not a version in the schemas folder") as caught:
        read_header(io.BytesIO(out.getvalue()), catalogue)
    assert caught.value.block is None


def test_not_a_container_and_unknown_codecs_are_refused(catalogue: SchemaCatalogue) -> None:
    with pytest.raises(ContainerError, match="no Obj"):
        read_header(io.BytesIO(b'{"event_id": "x"}\n'), catalogue)
    with pytest.raises(ContainerError, match="codec 'bzip2' is not supported"):
        read_header(io.BytesIO(container("claim", 1, records("claim", 1, 2), "bzip2")), catalogue)


def _block_offsets(catalogue: SchemaCatalogue, data: bytes) -> list[tuple[int, int]]:
    stream = io.BytesIO(data)
    header = read_header(stream, catalogue)
    return [(raw.offset, raw.end) for raw in read_blocks(stream, header)]


def test_a_truncated_file_fails_at_its_block_after_the_good_ones(catalogue: SchemaCatalogue) -> None:
    data = container("enrolment", 2, records("enrolment", 2, 300))
    offsets = _block_offsets(catalogue, data)
    cut = data[: offsets[2][0] + 40]  # inside block 3

    stream = io.BytesIO(cut)
    header = read_header(stream, catalogue)
    blocks = read_blocks(stream, header)
    good = [len(decode_block(header, next(blocks))) for _ in range(2)]
    assert all(n > 0 for n in good)
    with pytest.raises(ContainerError, match="truncated") as caught:
        next(blocks)
    assert caught.value.block == 3


def test_a_wrong_sync_marker_names_its_block(catalogue: SchemaCatalogue) -> None:
    data = bytearray(container("enrolment", 2, records("enrolment", 2, 300)))
    offsets = _block_offsets(catalogue, bytes(data))
    data[offsets[1][1] - 1] ^= 0xFF  # the last byte of block 2's sync marker

    with pytest.raises(ContainerError, match="sync marker") as caught:
        read_all(catalogue, bytes(data))
    assert caught.value.block == 2


def test_a_corrupt_record_refuses_the_whole_block(catalogue: SchemaCatalogue) -> None:
    rows = records("enrolment", 2, 20)
    rows[7]["event_type"] = "TERMINATED"
    rows[7]["termination_reason"] = "moved"
    data = bytearray(container("enrolment", 2, rows))
    # The event_type enum index of record 8 comes right after its event_id string: make it -1
    # (zig-zag 1), which fastavro would read as the last symbol. Ours must refuse the block.
    single = SchemaCatalogue.load(SCHEMAS).encode("enrolment", rows[7])[10:]
    at = bytes(data).index(single)
    data[at + 1 + len(rows[7]["event_id"])] = 0x01

    stream = io.BytesIO(bytes(data))
    header = read_header(stream, catalogue)
    (raw,) = list(read_blocks(stream, header))
    with pytest.raises(ContainerError, match=r"record 8 of the block: malformed: .*enum index") as caught:
        decode_block(header, raw)
    assert caught.value.block == 1


def test_a_block_announcing_more_records_than_it_holds_is_refused(catalogue: SchemaCatalogue) -> None:
    data = container("claim", 1, records("claim", 1, 5))
    stream = io.BytesIO(data)
    header = read_header(stream, catalogue)
    (raw,) = list(read_blocks(stream, header))
    lying = type(raw)(raw.number, raw.offset, raw.count + 1, raw.data, raw.end)

    with pytest.raises(ContainerError, match="announces 6 records but its data ends after 5"):
        decode_block(header, lying)


def _with_block(
    header_bytes: bytes, sync: bytes, count: int, payload: bytes, size: int | None = None
) -> bytes:
    def zigzag(n: int) -> bytes:
        z, out = (n << 1) ^ (n >> 63), bytearray()
        while z > 0x7F:
            out.append((z & 0x7F) | 0x80)
            z >>= 7
        out.append(z)
        return bytes(out)

    return header_bytes + zigzag(count) + zigzag(len(payload) if size is None else size) + payload + sync


def test_impossible_counts_and_sizes_are_refused_before_reading(catalogue: SchemaCatalogue) -> None:
    data = container("claim", 1, records("claim", 1, 1))
    stream = io.BytesIO(data)
    header = read_header(stream, catalogue)
    head = data[: header.end]
    for count, size, reason in [
        (-1, 10, "record count"),
        (1, 1 << 40, "byte size"),
        (1 << 40, 10, "record count"),
    ]:
        bad = _with_block(head, header.sync, count, b"x" * 10, size)
        s = io.BytesIO(bad)
        h = read_header(s, catalogue)
        with pytest.raises(ContainerError, match=reason):
            list(read_blocks(s, h))


def test_a_deflate_bomb_stops_at_the_bound(catalogue: SchemaCatalogue) -> None:
    from recon.avro._container import decompress

    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = compressor.compress(b"\x00" * 5_000_000) + compressor.flush()

    with pytest.raises(ContainerError, match="more than 1000000 bytes"):
        decompress("deflate", bomb, 4, max_bytes=1_000_000)
    with pytest.raises(ContainerError, match="deflate data is corrupt"):
        decompress("deflate", b"\xff" * 20, 4)


def test_a_snappy_block_with_a_wrong_checksum_is_refused() -> None:
    from cramjam import snappy

    from recon.avro._container import decompress

    body = bytes(snappy.compress_raw(b"hello avro"))
    good = body + struct.pack(">I", zlib.crc32(b"hello avro"))
    assert decompress("snappy", good, 1) == b"hello avro"
    with pytest.raises(ContainerError, match="CRC-32 does not match"):
        decompress("snappy", body + struct.pack(">I", 1), 1)


def test_files_on_disk_are_read_the_same(catalogue: SchemaCatalogue, tmp_path: Path) -> None:
    path = tmp_path / "claims.avro"
    path.write_bytes(container("claim", 1, records("claim", 1, 50), "deflate", every=500))

    with path.open("rb") as stream:
        header = read_header(stream, catalogue)
        count = sum(len(decode_block(header, raw)) for raw in read_blocks(stream, header))

    assert count == 50
