"""Generate the Python source of a strict decoder for one (writer schema, reader schema) pair.

Why generated code: decoding runs once per Kafka message, and straight-line code with the varint
loops inlined and every value in a local variable is several times faster than a tree of
closures. The generated functions only ever embed identifiers made here and ``repr`` literals, so
a schema's names cannot inject code.

Every read is bounded: lengths and block counts are checked against the bytes left before
anything is allocated; collections share one item budget per payload (``left``); varints stop
after 10 bytes (5 for int). Reading past the end raises IndexError, which the entry function
turns into a ``DecodeError`` (as it does any other stray exception).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from recon.avro._defaults import DATE_MAX_DAYS, DATE_MIN_DAYS, TS_MAX_MILLIS, TS_MIN_MILLIS
from recon.avro._nodes import (
    Array,
    Enum,
    Fixed,
    Map,
    Node,
    Primitive,
    Record,
    Union,
    min_size,
    short_name,
    type_name,
)
from recon.avro._resolve import enum_mapping, matches, reader_branch, reader_field_for, recursive_records

_IMMUTABLE = (type(None), bool, int, float, str, bytes, dt.date)


@dataclass
class _Body:
    lines: list[str] = field(default_factory=list)
    depth: int = 1

    def __call__(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)

    def fail(self, code: str, reason: str) -> None:
        self(f"raise _E({code!r}, {reason!r})")

    def fail_if(self, condition: str, code: str, reason: str) -> None:
        with self.block(f"if {condition}:"):
            self.fail(code, reason)

    @contextmanager
    def block(self, header: str) -> Iterator[None]:
        """A compound statement: ``header`` then the lines emitted inside, one level deeper."""
        self(header)
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1


@dataclass
class Generated:
    """Source of a module defining ``read(buf, pos=0)``, the names it needs, and what did not resolve.

    ``hard`` problems make the pair unusable; ``soft`` ones (a writer enum symbol or union branch the
    reader cannot take) only fail the payloads that use them, with code ``unresolvable``.
    """

    source: str
    constants: dict[str, object]
    hard: list[str]
    soft: list[str]


class Names:
    """What both generators (this decoder's and _encodegen's encoder) share: fresh identifiers, the
    constants the source refers to by them, and the helper functions emitted so far."""

    def __init__(self) -> None:
        self.constants: dict[str, object] = {}
        self.functions: list[str] = []
        self._count = 0

    def name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def constant(self, value: object, prefix: str = "_k") -> str:
        name = self.name(prefix)
        self.constants[name] = value
        return name


class _Emitter(Names):
    def __init__(self, writer: Node, reader: Node, max_items: int) -> None:
        super().__init__()
        self.max_items = max_items
        self.hard: list[str] = []
        self.soft: list[str] = []
        self._recursive = recursive_records(writer) | recursive_records(reader)
        self._record_functions: dict[tuple[int, int], str] = {}

    # --- dispatch ---------------------------------------------------------------------------

    def read(self, w: Node, r: Node, t: str, path: str, out: _Body) -> None:
        """Emit code reading one value written as ``w``, resolved to ``r``, into variable ``t``."""
        if isinstance(w, Union):
            self._writer_union(w, r, t, path, out)
        elif isinstance(r, Union):
            i = reader_branch(w, r)
            if i is None:
                self._problem(
                    self.hard,
                    out,
                    path,
                    f"writer type {type_name(w)} matches no branch of the reader's union",
                )
            else:
                self.read(w, r.branches[i], t, path, out)
        elif not matches(w, r):
            self._problem(
                self.hard, out, path, f"writer type {type_name(w)} cannot be read as {type_name(r)}"
            )
        elif isinstance(w, Primitive) and isinstance(r, Primitive):
            self._primitive(w, r, t, path, out)
        elif isinstance(w, Record) and isinstance(r, Record):
            self._record(w, r, t, path, out)
        elif isinstance(w, Enum) and isinstance(r, Enum):
            self._enum(w, r, t, path, out)
        elif isinstance(w, Fixed):
            self._fixed(w, t, path, out)
        elif isinstance(w, Array) and isinstance(r, Array):
            self._collection(w.items, r.items, None, t, f"{path}[]", out)
        elif isinstance(w, Map) and isinstance(r, Map):
            self._collection(w.values, r.values, "map", t, f"{path}{{}}", out)

    def _problem(self, bucket: list[str], out: _Body, path: str, text: str) -> None:
        bucket.append(f"{path}: {text}")
        out.fail("unresolvable", f"{path}: {text}")

    # --- scalars ----------------------------------------------------------------------------

    def varint(self, t: str, kind: str, path: str, out: _Body) -> None:
        """Zig-zag varint into ``t``: at most 10 bytes and 64 bits (long) or 5 bytes and 32 bits (int)."""
        limit, bits = (70, 64) if kind == "long" else (35, 32)
        out("b = buf[pos]")
        out("pos += 1")
        out(f"{t} = b & 127")
        with out.block("if b > 127:"):
            out("sh = 7")
            with out.block("while b > 127:"):
                out.fail_if(
                    f"sh == {limit}", "malformed", f"{path}: {kind} varint longer than {limit // 7} bytes"
                )
                out("b = buf[pos]")
                out("pos += 1")
                out(f"{t} |= (b & 127) << sh")
                out("sh += 7")
            out.fail_if(f"{t} >> {bits}", "malformed", f"{path}: {kind} varint outside the {bits}-bit range")
        out(f"{t} = ({t} >> 1) ^ -({t} & 1)")

    def _primitive(self, w: Primitive, r: Primitive, t: str, path: str, out: _Body) -> None:
        kind = w.type
        if kind == "null":
            out(f"{t} = None")
        elif kind == "boolean":
            out("b = buf[pos]")
            out("pos += 1")
            out.fail_if("b > 1", "malformed", f"{path}: boolean byte other than 0 or 1")
            out(f"{t} = b == 1")
        elif kind in ("int", "long"):
            self.varint(t, kind, path, out)
            self._number(w, r, t, path, out)
        elif kind in ("float", "double"):
            size, unpack = (4, "_F") if kind == "float" else (8, "_D")
            self._check_room(str(size), f"{path}: {kind} runs past the end of the payload", out)
            out(f"{t} = {unpack}(buf, pos)[0]")
            out(f"pos += {size}")
        else:
            self._blob(t, path, out, utf8=kind == "string", as_text=r.type == "string")

    def _number(self, w: Primitive, r: Primitive, t: str, path: str, out: _Body) -> None:
        if r.type in ("float", "double"):
            out(f"{t} = float({t})")
        elif r.logical == "date" and w.type == "int":
            out.fail_if(
                f"{t} < {DATE_MIN_DAYS} or {t} > {DATE_MAX_DAYS}",
                "malformed",
                f"{path}: date outside the years 1-9999",
            )
            out(f"{t} = _fromordinal({t} + _EPOCH_ORDINAL)")
        elif r.logical == "timestamp-millis":
            out.fail_if(
                f"{t} < {TS_MIN_MILLIS} or {t} > {TS_MAX_MILLIS}",
                "malformed",
                f"{path}: timestamp outside the years 1-9999",
            )

    def _check_room(self, size: str, reason: str, out: _Body) -> None:
        out(f"e = pos + {size}")
        out.fail_if("e > n", "malformed", reason)

    def _blob(self, t: str, path: str, out: _Body, *, utf8: bool, as_text: bool) -> None:
        """bytes or string: a long length, then that many bytes; strings must be valid UTF-8."""
        what = "string" if utf8 else "bytes"
        self.varint("ln", "long", path, out)
        out("e = pos + ln")
        out.fail_if(
            "ln < 0 or e > n",
            "malformed",
            f"{path}: {what} length is negative or runs past the end of the payload",
        )
        if utf8 or as_text:
            with out.block("try:"):
                out(f"{t} = buf[pos:e].decode()" if as_text else "buf[pos:e].decode()")
            with out.block("except UnicodeDecodeError:"):
                code, rule = ("malformed", "is not") if utf8 else ("unresolvable", "read as a string is not")
                out(f"raise _E({code!r}, {f'{path}: {what} {rule} valid UTF-8'!r}) from None")
        if not as_text:
            out(f"{t} = buf[pos:e]")
        out("pos = e")

    def _fixed(self, w: Fixed, t: str, path: str, out: _Body) -> None:
        self._check_room(str(w.size), f"{path}: fixed runs past the end of the payload", out)
        out(f"{t} = buf[pos:e]")
        out("pos = e")

    def _enum(self, w: Enum, r: Enum, t: str, path: str, out: _Body) -> None:
        self.varint("i", "int", path, out)
        out.fail_if(f"i < 0 or i >= {len(w.symbols)}", "malformed", f"{path}: enum index out of range")
        mapping = enum_mapping(w, r)
        out(f"{t} = {self.constant(mapping, '_S')}[i]")
        missing = [s for s, m in zip(w.symbols, mapping, strict=True) if m is None]
        if missing:
            self.soft.append(
                f"{path}: writer symbols {', '.join(missing)} of enum {w.name} are not in the reader's enum, "
                "which has no default"
            )
            out.fail_if(
                f"{t} is None",
                "unresolvable",
                f"{path}: the writer's enum symbol is unknown to the reader, which has no default",
            )

    # --- composites -------------------------------------------------------------------------

    def _writer_union(self, w: Union, r: Node, t: str, path: str, out: _Body) -> None:
        self.varint("i", "int", path, out)
        for i, branch in enumerate(w.branches):
            with out.block(f"{'if' if i == 0 else 'elif'} i == {i}:"):
                if reader_branch(branch, r) is not None if isinstance(r, Union) else matches(branch, r):
                    self.read(branch, r, t, path, out)
                else:
                    text = f"writer union branch {type_name(branch)} has no match in the reader"
                    self._problem(self.soft, out, path, text)
        with out.block("else:") if w.branches else _same_level():
            out.fail("malformed", f"{path}: union branch index out of range")

    def _record(self, w: Record, r: Record, t: str, path: str, out: _Body, *, inline: bool = False) -> None:
        if not inline and (id(w) in self._recursive or id(r) in self._recursive):
            out(f"{t}, pos, left = {self._record_function(w, r)}(buf, pos, n, left)")
            return
        values: dict[str, str] = {}
        for wf in w.fields:
            rf = reader_field_for(wf, r)
            if rf is None or rf.name in values:
                # Read and drop: a field the reader does not know is still checked.
                self.read(wf.type, wf.type, self.name("skip"), f"{path}.{wf.name}", out)
                continue
            var = self.name("v")
            self.read(wf.type, rf.type, var, f"{path}.{rf.name}", out)
            values[rf.name] = var
        items = []
        for rf in r.fields:
            if rf.name in values:
                items.append(f"{rf.name!r}: {values[rf.name]}")
            elif rf.has_default:
                items.append(f"{rf.name!r}: {self._default(rf.default)}")
            else:
                self._problem(
                    self.hard, out, f"{path}.{rf.name}", "reader field has no default and the writer lacks it"
                )
        out(f"{t} = {{{', '.join(items)}}}")

    def _default(self, value: object) -> str:
        name = self.constant(value, "_d")
        return name if isinstance(value, _IMMUTABLE) else f"_deepcopy({name})"

    def _record_function(self, w: Record, r: Record) -> str:
        key = (id(w), id(r))
        if key not in self._record_functions:
            fname = self.name("_rec")
            self._record_functions[key] = fname
            body = _Body()
            self._record(w, r, "t", short_name(r.name), body, inline=True)
            body("return t, pos, left")
            self.functions.append(f"def {fname}(buf, pos, n, left):\n" + "\n".join(body.lines))
        return self._record_functions[key]

    def _collection(self, w: Node, r: Node, kind: str | None, t: str, path: str, out: _Body) -> None:
        """Arrays and maps: blocks of (count, [byte size if count < 0], items) ending with count 0."""
        count, end, what = self.name("c"), self.name("be"), kind or "array"
        out(f"{t} = {{}}" if kind else f"{t} = []")
        with out.block("while True:"):
            self.varint(count, "long", path, out)
            with out.block(f"if not {count}:"):
                out("break")
            with out.block(f"if {count} < 0:"):
                # The spec's form with the block's byte size; a reader may use it to skip.
                self.varint("ln", "long", path, out)
                out.fail_if(
                    "ln < 0 or ln > n - pos", "malformed", f"{path}: {what} block byte size is impossible"
                )
                out(f"{count} = -{count}")
                out(f"{end} = pos + ln")
            with out.block("else:"):
                out(f"{end} = -1")
            size = min_size(w) + (1 if kind else 0)
            if size:
                reason = f"{path}: {what} block count exceeds the bytes left"
                needed = count if size == 1 else f"{count} * {size}"
                out.fail_if(f"{needed} > n - pos", "malformed", reason)
            reason = f"{path}: more than {self.max_items} array or map items"
            out.fail_if(f"{count} > left", "too_large", reason)
            out(f"left -= {count}")
            self._items(w, r, kind, t, path, count, out)
            reason = f"{path}: {what} block byte size does not match its items"
            out.fail_if(f"{end} >= 0 and pos != {end}", "malformed", reason)

    def _items(self, w: Node, r: Node, kind: str | None, t: str, path: str, count: str, out: _Body) -> None:
        item = self.name("x")
        with out.block(f"for _ in range({count}):"):
            if kind:
                key = self.name("k")
                self._blob(key, path, out, utf8=True, as_text=True)
                self.read(w, r, item, path, out)
                out(f"{t}[{key}] = {item}")
            else:
                self.read(w, r, item, path, out)
                out(f"{t}.append({item})")


@contextmanager
def _same_level() -> Iterator[None]:
    yield


_ENTRY_ERRORS = """
    except _E:
        raise
    except IndexError:
        raise _E('malformed', 'the payload ends inside the datum (truncated)') from None
    except RecursionError:
        raise _E('malformed', 'the datum nests too deeply') from None
    except MemoryError:
        raise _E('too_large', 'the datum does not fit in memory') from None
    except Exception as exc:
        raise _E('malformed', 'the datum could not be decoded (' + type(exc).__name__ + ')') from None
"""
_WHOLE_TAIL = """    if pos != n:
        raise _E('trailing_bytes', str(n - pos) + ' byte(s) left over after the datum')
    return t
"""
_SEQUENCE_TAIL = """    return t, pos
"""


def generate(writer: Node, reader: Node, max_items: int, *, sequence: bool = False) -> Generated:
    """The source of ``read(buf, pos=0)``, decoding ``buf[pos:]`` written as ``writer`` into the
    representation of ``reader``; every byte must belong to the datum. With ``sequence`` (data that
    holds datums one after another, as an object container file's block does) ``read`` returns
    ``(datum, end)`` instead, the datum ending anywhere up to the end of ``buf``."""
    emitter = _Emitter(writer, reader, max_items)
    body = _Body(depth=2)
    body("n = len(buf)")
    body(f"left = {max_items}")
    root = short_name(reader.name) if isinstance(reader, Record | Enum | Fixed) else type_name(reader)
    emitter.read(writer, reader, "t", root, body)
    tail = _SEQUENCE_TAIL if sequence else _WHOLE_TAIL
    entry = "def read(buf, pos=0):\n    try:\n" + "\n".join(body.lines) + _ENTRY_ERRORS + tail
    source = "\n\n".join([*emitter.functions, entry]) + "\n"
    return Generated(source, emitter.constants, emitter.hard, emitter.soft)
