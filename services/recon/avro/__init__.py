"""The strict Avro codec: single-object encoding, schema catalogue, compatibility check.

Payloads are ``C3 01`` + the writer schema's 8-byte CRC-64-AVRO fingerprint (little-endian) + the
Avro binary body; the header may instead carry one of the version's aliases, the fingerprints the Go
libraries' single-object encoders write (``Schema.aliases``; decoding reports the spec fingerprint
all the same). Decoding finds the writer schema by fingerprint and resolves it to the current
version of its subject with a decoder written here (not the library's): it rejects everything the
Avro project's cross-SDK must-reject vectors list, trailing bytes, and payloads that would loop or
allocate without bound, and lets only ``DecodeError`` escape. Error messages name fields and rules,
never values (they may be personal data).

Usage::

    catalogue = SchemaCatalogue.load(Path("schemas"))
    payload = catalogue.encode("enrolment", record)
    catalogue.decode(payload, expected_subject="enrolment").record
"""

from recon.avro._catalogue import (
    DEFAULT_MAX_MESSAGE_BYTES,
    HEADER_SIZE,
    MARKER,
    Decoded,
    SchemaCatalogue,
)
from recon.avro._compat import check_catalogue
from recon.avro._crc import crc64_avro
from recon.avro._decoder import DEFAULT_MAX_ITEMS, DatumReader, compile_decoder, resolution_problems
from recon.avro._errors import ERROR_CODES, AvroError, DecodeError, EncodeError, ErrorCode, SchemaError
from recon.avro._files import SchemaVersion
from recon.avro._schema import Schema, parse_schema

__all__ = [
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "ERROR_CODES",
    "HEADER_SIZE",
    "MARKER",
    "AvroError",
    "DatumReader",
    "DecodeError",
    "Decoded",
    "EncodeError",
    "ErrorCode",
    "Schema",
    "SchemaCatalogue",
    "SchemaError",
    "SchemaVersion",
    "check_catalogue",
    "compile_decoder",
    "crc64_avro",
    "parse_schema",
    "resolution_problems",
]
