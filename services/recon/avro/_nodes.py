"""The parsed form of a schema: a graph of small node objects, and its Parsing Canonical Form.

Named types are single objects shared by every reference to them, so a recursive record is a
cycle in the graph. Nodes compare by identity.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

PrimitiveType = Literal["null", "boolean", "int", "long", "float", "double", "bytes", "string"]
PRIMITIVE_TYPES: frozenset[str] = frozenset(
    {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
)
LogicalType = Literal["date", "timestamp-millis"]
"""The only logical types given their own value representation; the others read as their base type."""


@dataclass(eq=False, slots=True)
class Primitive:
    type: PrimitiveType
    logical: LogicalType | None = None


@dataclass(eq=False, slots=True)
class Field:
    name: str
    type: Node
    aliases: tuple[str, ...] = ()
    has_default: bool = False
    default: object = None
    """The default in decoded representation (``date`` for a date, ``bytes`` for bytes...)."""


@dataclass(eq=False, slots=True)
class Record:
    name: str
    """Full name (namespace included)."""
    aliases: tuple[str, ...] = ()
    fields: list[Field] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class Enum:
    name: str
    symbols: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    default: str | None = None


@dataclass(eq=False, slots=True)
class Fixed:
    name: str
    size: int
    aliases: tuple[str, ...] = ()


@dataclass(eq=False, slots=True)
class Array:
    items: Node


@dataclass(eq=False, slots=True)
class Map:
    values: Node


@dataclass(eq=False, slots=True)
class Union:
    branches: tuple[Node, ...]


Named: TypeAlias = Record | Enum | Fixed
Node: TypeAlias = Primitive | Record | Enum | Fixed | Array | Map | Union


def type_name(node: Node) -> str:
    """How problems name a type: the full name of a named type, else the Avro type keyword."""
    match node:
        case Primitive(type=t, logical=lt):
            return f"{t} ({lt})" if lt else t
        case Record(name=n) | Enum(name=n) | Fixed(name=n):
            return n
        case Array():
            return "array"
        case Map():
            return "map"
        case Union():
            return "union"


def short_name(full_name: str) -> str:
    return full_name.rpartition(".")[2]


def canonical_form(root: Node) -> str:
    """The Avro spec's Parsing Canonical Form: full names, only the attributes that matter for
    parsing, in the spec's order, no whitespace, each named type spelled out at first use only."""
    return _pcf(root, set())


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _pcf(node: Node, seen: set[str]) -> str:
    match node:
        case Primitive(type=t):
            return _q(t)
        case Array(items=items):
            return '{"type":"array","items":' + _pcf(items, seen) + "}"
        case Map(values=values):
            return '{"type":"map","values":' + _pcf(values, seen) + "}"
        case Union(branches=branches):
            return "[" + ",".join(_pcf(b, seen) for b in branches) + "]"
    if node.name in seen:
        return _q(node.name)
    seen.add(node.name)
    head = '{"name":' + _q(node.name) + ',"type":'
    match node:
        case Record(fields=fields):
            body = ",".join('{"name":' + _q(f.name) + ',"type":' + _pcf(f.type, seen) + "}" for f in fields)
            return head + '"record","fields":[' + body + "]}"
        case Enum(symbols=symbols):
            return head + '"enum","symbols":[' + ",".join(_q(s) for s in symbols) + "]}"
        case Fixed(size=size):
            return head + '"fixed","size":' + str(size) + "}"
    raise AssertionError("unreachable")


def min_size(node: Node, _busy: frozenset[int] = frozenset()) -> int:
    """The fewest bytes any value of ``node`` takes on the wire (a lower bound for recursive types).

    Used to refuse block counts whose items could not fit in the bytes left.
    """
    match node:
        case Primitive(type=t):
            return {"null": 0, "float": 4, "double": 8}.get(t, 1)
        case Enum() | Array() | Map() | Union():
            return 1
        case Fixed(size=size):
            return size
        case Record(fields=fields):
            if id(node) in _busy:
                return 0
            busy = _busy | {id(node)}
            return sum(min_size(f.type, busy) for f in fields)
