"""CRC-64-AVRO, the fingerprint of the Avro spec's single-object encoding.

The spec's reference algorithm (section "Schema Fingerprints"): a reflected CRC-64 with the
polynomial whose table seed is ``EMPTY``; the fingerprint of a schema is this CRC of its Parsing
Canonical Form, written little-endian after the ``C3 01`` marker.
"""

from __future__ import annotations

EMPTY = 0xC15D213AA4D7A795
"""CRC-64-AVRO of the empty string (the spec's ``EMPTY`` constant)."""


def _make_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (EMPTY & -(fp & 1))
        table.append(fp)
    return tuple(table)


_TABLE = _make_table()


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO of ``data`` as an unsigned 64-bit integer (Java's ``long`` read as unsigned)."""
    fp = EMPTY
    table = _TABLE
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def fingerprint_bytes(canonical_form: str) -> bytes:
    """The 8 fingerprint bytes of a schema as they appear on the wire: CRC-64-AVRO of its
    Parsing Canonical Form (UTF-8), little-endian."""
    return crc64_avro(canonical_form.encode("utf-8")).to_bytes(8, "little")
