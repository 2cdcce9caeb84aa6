"""The public API of recon.avro is exactly its __all__."""

from __future__ import annotations

import recon.avro


def test_public_api_is_pinned() -> None:
    assert recon.avro.__all__ == [
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
    for name in recon.avro.__all__:
        assert getattr(recon.avro, name) is not None


def test_error_codes_are_the_documented_ones() -> None:
    assert recon.avro.ERROR_CODES == (
        "not_single_object",
        "unknown_fingerprint",
        "wrong_subject",
        "malformed",
        "trailing_bytes",
        "too_large",
        "unresolvable",
    )
