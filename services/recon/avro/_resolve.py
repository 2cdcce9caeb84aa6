"""The Avro spec's schema-resolution matching rules, shared by the decoder compiler and the
compatibility check."""

from __future__ import annotations

from recon.avro._nodes import (
    Array,
    Enum,
    Field,
    Fixed,
    Map,
    Named,
    Node,
    Primitive,
    Record,
    Union,
    short_name,
)

_PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}


def names_match(writer: Named, reader: Named) -> bool:
    """Same unqualified name, or the writer's name is one of the reader's aliases."""
    if short_name(writer.name) == short_name(reader.name):
        return True
    return writer.name in reader.aliases or short_name(writer.name) in {short_name(a) for a in reader.aliases}


def promotes(writer: str, reader: str) -> bool:
    """Whether a writer primitive type can be read as the reader one (same type or a promotion)."""
    return writer == reader or reader in _PROMOTIONS.get(writer, frozenset())


def matches(writer: Node, reader: Node) -> bool:
    """The spec's shallow match of two non-union schemas: same kind (with promotions), same name
    for named types. Deeper problems (record fields, items) are found when resolving."""
    if isinstance(writer, Primitive) and isinstance(reader, Primitive):
        return promotes(writer.type, reader.type)
    if isinstance(writer, Record) and isinstance(reader, Record):
        return names_match(writer, reader)
    if isinstance(writer, Enum) and isinstance(reader, Enum):
        return names_match(writer, reader)
    if isinstance(writer, Fixed) and isinstance(reader, Fixed):
        return names_match(writer, reader) and writer.size == reader.size
    return (isinstance(writer, Array) and isinstance(reader, Array)) or (
        isinstance(writer, Map) and isinstance(reader, Map)
    )


def _exact(writer: Node, reader: Node) -> bool:
    if isinstance(writer, Primitive) and isinstance(reader, Primitive):
        return writer.type == reader.type
    return matches(writer, reader)


def reader_branch(writer: Node, reader: Union) -> int | None:
    """The reader union branch a non-union writer schema resolves to: the first branch of the same
    type, else the first it can be promoted to (as Java does; the spec says "first that matches")."""
    for i, branch in enumerate(reader.branches):
        if _exact(writer, branch):
            return i
    for i, branch in enumerate(reader.branches):
        if matches(writer, branch):
            return i
    return None


def reader_field_for(writer_field: Field, reader: Record) -> Field | None:
    """The reader field a writer field fills: same name, or the writer's name among its aliases."""
    for fld in reader.fields:
        if fld.name == writer_field.name:
            return fld
    for fld in reader.fields:
        if writer_field.name in fld.aliases:
            return fld
    return None


def enum_mapping(writer: Enum, reader: Enum) -> tuple[str | None, ...]:
    """For each writer symbol index, the reader symbol it reads as (None: unresolvable)."""
    known = set(reader.symbols)
    return tuple(s if s in known else reader.default for s in writer.symbols)


def _children(node: Node) -> tuple[Node, ...]:
    match node:
        case Record(fields=fields):
            return tuple(f.type for f in fields)
        case Array(items=items):
            return (items,)
        case Map(values=values):
            return (values,)
        case Union(branches=branches):
            return branches
    return ()


def _reachable(starts: tuple[Node, ...]) -> dict[int, Node]:
    seen: dict[int, Node] = {}
    todo = list(starts)
    while todo:
        node = todo.pop()
        if id(node) not in seen:
            seen[id(node)] = node
            todo.extend(_children(node))
    return seen


def recursive_records(root: Node) -> set[int]:
    """Ids of the records that can contain themselves (they get their own decoder function)."""
    records = [n for n in _reachable((root,)).values() if isinstance(n, Record)]
    return {id(r) for r in records if id(r) in _reachable(_children(r))}
