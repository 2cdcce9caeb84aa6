"""The public handle on one parsed schema: its node graph, canonical form and fingerprints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from recon.avro._aliases import FingerprintAlias, fingerprint_aliases
from recon.avro._crc import fingerprint_bytes
from recon.avro._nodes import Enum, Fixed, Node, Record, canonical_form, type_name
from recon.avro._parse import parse_json_text, parse_node


@dataclass(frozen=True, slots=True, eq=False)
class Schema:
    """A parsed and checked Avro schema.

    ``fingerprint`` is the 8-byte CRC-64-AVRO of ``canonical_form`` as it appears on the wire
    (little-endian); ``node`` is the codec's internal form, opaque to callers. ``aliases`` are the
    other fingerprints Go libraries' single-object encoders write for it (see ``_aliases``).
    """

    node: Node
    canonical_form: str
    fingerprint: bytes
    aliases: tuple[FingerprintAlias, ...] = ()

    @property
    def name(self) -> str:
        """The full name of a named schema, else its type keyword."""
        node = self.node
        return node.name if isinstance(node, Record | Enum | Fixed) else type_name(node)

    @property
    def fingerprint_hex(self) -> str:
        """``fingerprint`` in hex, in wire byte order."""
        return self.fingerprint.hex()


def parse_schema(source: str | Mapping[str, object] | list[object]) -> Schema:
    """Parse a schema given as JSON text (so a primitive is ``'"long"'``) or as parsed JSON.

    Raises ``SchemaError`` naming what is wrong: bad JSON, unknown types, invalid names, defaults
    that do not fit their field, duplicate symbols or fields...
    """
    return schema_from_json(parse_json_text(source) if isinstance(source, str) else source)


def schema_from_json(obj: object) -> Schema:
    """A schema from parsed JSON of any shape (a str here is a type name, not JSON text)."""
    node = parse_node(obj)
    form = canonical_form(node)
    fingerprint = fingerprint_bytes(form)
    return Schema(node, form, fingerprint, fingerprint_aliases(obj, fingerprint))
