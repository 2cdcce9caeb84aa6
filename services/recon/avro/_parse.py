"""Parse an Avro schema (JSON) into nodes, checking it the way the spec describes.

Everything wrong with a schema is reported as a :class:`SchemaError` naming where it is
(``Record.field``); a schema that parses is safe to compile a decoder for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from recon.avro._defaults import convert_default
from recon.avro._errors import SchemaError
from recon.avro._nodes import (
    PRIMITIVE_TYPES,
    Array,
    Enum,
    Field,
    Fixed,
    LogicalType,
    Map,
    Named,
    Node,
    Primitive,
    PrimitiveType,
    Record,
    Union,
    short_name,
)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_LOGICAL_BASE: dict[str, str] = {"date": "int", "timestamp-millis": "long"}


def parse_node(source: object) -> Node:
    """The node graph of a schema given as parsed JSON (a name, an object or a union list)."""
    return _Parser().parse(source, None, "schema")


def parse_json_text(text: str, where: str = "schema") -> object:
    """JSON text to a value; bad JSON is a SchemaError naming ``where`` and the line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(
            f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


def _full_name(name: object, namespace: object, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise SchemaError(f"{where}: 'name' must be a non-empty string")
    if namespace is not None and not isinstance(namespace, str):
        raise SchemaError(f"{where}: 'namespace' must be a string")
    full = name if "." in name or not namespace else f"{namespace}.{name}"
    if not all(_NAME.match(part) for part in full.split(".")):
        raise SchemaError(f"{where}: {full!r} is not a valid Avro name")
    if short_name(full) in PRIMITIVE_TYPES:
        raise SchemaError(f"{where}: a named type cannot be called {short_name(full)!r}")
    return full


def _namespace_of(full_name: str) -> str | None:
    return full_name.rpartition(".")[0] or None


class _Parser:
    def __init__(self) -> None:
        self.named: dict[str, Named] = {}

    def parse(self, source: object, namespace: str | None, where: str) -> Node:
        if isinstance(source, str):
            return self._reference(source, namespace, where)
        if isinstance(source, list):
            return self._union(source, namespace, where)
        if isinstance(source, Mapping):
            return self._complex(source, namespace, where)
        raise SchemaError(
            f"{where}: a schema is a type name, an object or a list, not {type(source).__name__}"
        )

    def _reference(self, name: str, namespace: str | None, where: str) -> Node:
        if name in PRIMITIVE_TYPES:
            return Primitive(_primitive(name))
        for candidate in (f"{namespace}.{name}" if namespace and "." not in name else name, name):
            if candidate in self.named:
                return self.named[candidate]
        raise SchemaError(f"{where}: unknown type {name!r} (named types must be defined before use)")

    def _union(self, branches: list[object], namespace: str | None, where: str) -> Union:
        nodes: list[Node] = []
        seen: set[str] = set()
        for i, branch in enumerate(branches):
            node = self.parse(branch, namespace, f"{where}[{i}]")
            if isinstance(node, Union):
                raise SchemaError(f"{where}: a union cannot contain a union directly")
            key = node.name if isinstance(node, Record | Enum | Fixed) else type(node).__name__
            if isinstance(node, Primitive):
                key = node.type
            if key in seen:
                raise SchemaError(f"{where}: the union holds {key!r} twice")
            seen.add(key)
            nodes.append(node)
        return Union(tuple(nodes))

    def _complex(self, obj: Mapping[str, Any], namespace: str | None, where: str) -> Node:
        kind = obj.get("type")
        if isinstance(kind, list | Mapping):
            return self.parse(kind, namespace, where)
        if not isinstance(kind, str):
            raise SchemaError(f"{where}: missing or bad 'type'")
        if kind in PRIMITIVE_TYPES:
            return Primitive(_primitive(kind), _logical(obj.get("logicalType"), kind))
        if kind == "array":
            return Array(self.parse(_required(obj, "items", where), namespace, f"{where}[]"))
        if kind == "map":
            return Map(self.parse(_required(obj, "values", where), namespace, f"{where}{{}}"))
        if kind in ("record", "error"):
            return self._record(obj, namespace, where)
        if kind == "enum":
            return self._register(_enum(obj, namespace, where), where)
        if kind == "fixed":
            return self._register(_fixed(obj, namespace, where), where)
        return self._reference(kind, namespace, where)

    def _register(self, node: Named, where: str) -> Named:
        if node.name in self.named:
            raise SchemaError(f"{where}: type {node.name!r} is defined twice")
        self.named[node.name] = node
        return node

    def _record(self, obj: Mapping[str, Any], namespace: str | None, where: str) -> Record:
        full = _full_name(obj.get("name"), obj.get("namespace", namespace), where)
        record = Record(full, _aliases(obj, _namespace_of(full), where))
        self._register(record, where)
        fields = obj.get("fields")
        if not isinstance(fields, list):
            raise SchemaError(f"{full}: 'fields' must be a list")
        names: set[str] = set()
        for raw in fields:
            fld = self._field(raw, _namespace_of(full), short_name(full))
            if fld.name in names:
                raise SchemaError(f"{full}: field {fld.name!r} is declared twice")
            names.add(fld.name)
            record.fields.append(fld)
        return record

    def _field(self, raw: object, namespace: str | None, owner: str) -> Field:
        if not isinstance(raw, Mapping):
            raise SchemaError(f"{owner}: every field must be an object")
        name = raw.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise SchemaError(f"{owner}: a field has a missing or invalid name")
        where = f"{owner}.{name}"
        node = self.parse(_required(raw, "type", where), namespace, where)
        aliases = raw.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) and _NAME.match(a) for a in aliases):
            raise SchemaError(f"{where}: 'aliases' must be a list of field names")
        fld = Field(name, node, tuple(aliases))
        if "default" in raw:
            try:
                fld.default = convert_default(node, raw["default"])
            except ValueError as exc:
                raise SchemaError(f"{where}: the default does not fit the field's type ({exc})") from None
            fld.has_default = True
        return fld


def _primitive(name: str) -> PrimitiveType:
    assert name in PRIMITIVE_TYPES
    return name  # type: ignore[return-value]


def _logical(value: object, base: str) -> LogicalType | None:
    # Unknown logical types, or ones on the wrong base type, are ignored as the spec says.
    if value == "date" and base == "int":
        return "date"
    if value == "timestamp-millis" and base == "long":
        return "timestamp-millis"
    return None


def _required(obj: Mapping[str, Any], key: str, where: str) -> object:
    if key not in obj:
        raise SchemaError(f"{where}: missing {key!r}")
    return obj[key]


def _aliases(obj: Mapping[str, Any], namespace: str | None, where: str) -> tuple[str, ...]:
    aliases = obj.get("aliases", [])
    if not isinstance(aliases, list):
        raise SchemaError(f"{where}: 'aliases' must be a list")
    return tuple(_full_name(a, namespace, where) for a in aliases)


def _enum(obj: Mapping[str, Any], namespace: str | None, where: str) -> Enum:
    full = _full_name(obj.get("name"), obj.get("namespace", namespace), where)
    symbols = obj.get("symbols")
    if not isinstance(symbols, list) or not all(isinstance(s, str) and _NAME.match(s) for s in symbols):
        raise SchemaError(f"{full}: 'symbols' must be a list of valid names")
    if len(set(symbols)) != len(symbols):
        raise SchemaError(f"{full}: a symbol is listed twice")
    default = obj.get("default")
    if default is not None and default not in symbols:
        raise SchemaError(f"{full}: the enum default is not one of its symbols")
    return Enum(full, tuple(symbols), _aliases(obj, _namespace_of(full), where), default)


def _fixed(obj: Mapping[str, Any], namespace: str | None, where: str) -> Fixed:
    full = _full_name(obj.get("name"), obj.get("namespace", namespace), where)
    size = obj.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise SchemaError(f"{full}: 'size' must be a non-negative integer")
    return Fixed(full, size, _aliases(obj, _namespace_of(full), where))
