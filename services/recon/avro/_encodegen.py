"""Generate the Python source of a validating encoder for one schema (the decoder's twin, see _codegen).

Why generated code: ``recon publish`` encodes every line, and straight-line code with the checks and
the zig-zag varints inlined, one ``bytearray`` per record and no per-field call is several times
faster than a tree of closures. Like the decoder, the source embeds only identifiers made here and
``repr`` literals (paths, field names, defaults), so a schema's names cannot inject code.

What it refuses, and the words it uses, are the encoder's contract (``recon publish`` prints them per
line): every value is checked against its schema (no bool for an int, no unknown enum symbol,
ranges...) and a refusal names the field, never the value. Union branches are tried in order; a
branch that refuses leaves no bytes behind.
"""

from __future__ import annotations

from recon.avro._codegen import Names, _Body
from recon.avro._defaults import INT_MAX, INT_MIN, LONG_MAX, LONG_MIN, TS_MAX_MILLIS, TS_MIN_MILLIS
from recon.avro._nodes import Array, Enum, Fixed, Map, Node, Primitive, Record, Union, short_name
from recon.avro._resolve import recursive_records


def zigzag(value: int) -> bytes:
    """The zig-zag varint of an int in the long range."""
    z = (value << 1) ^ (value >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


class _Emitter(Names):
    def __init__(self, root: Node) -> None:
        super().__init__()
        self._recursive = recursive_records(root)
        self._record_functions: dict[tuple[int, str], str] = {}
        self._open: dict[int, str] = {}  # records being generated: a reference back is a call

    @staticmethod
    def refuse(out: _Body, path: str, rule: str, kind_of: str | None = None) -> None:
        """``raise EncodeError("<path>: <rule>")``, the rule ending with the value's type name if asked."""
        if kind_of is None:
            out(f"raise _E({f'{path}: {rule}'!r})")
        else:
            out(f"raise _E({f'{path}: {rule}'!r} + type({kind_of}).__name__)")

    def long(self, t: str, out: _Body) -> None:
        """Append the zig-zag varint of ``t`` (an int already checked to be in the long range)."""
        out(f"z = ({t} << 1) ^ ({t} >> 63)")
        self._varint_z(out)

    def length(self, t: str, out: _Body) -> None:
        """Append the varint of a length (never negative, so zig-zag is doubling)."""
        out(f"z = {t} << 1")
        self._varint_z(out)

    @staticmethod
    def _varint_z(out: _Body) -> None:
        """Append the varint of ``z`` (already zig-zagged), one byte inline for the common small case."""
        with out.block("if z < 128:"):
            out("out.append(z)")
        with out.block("else:"):
            with out.block("while z > 127:"):
                out("out.append((z & 127) | 128)")
                out("z >>= 7")
            out("out.append(z)")

    # --- dispatch ---------------------------------------------------------------------------

    def write(self, node: Node, t: str, path: str, out: _Body) -> None:
        """Emit code checking the value in variable ``t`` against ``node`` and appending its bytes."""
        match node:
            case Primitive():
                self._primitive(node, t, path, out)
            case Enum(symbols=symbols):
                self._enum(symbols, t, path, out)
            case Fixed(size=size):
                with out.block(f"if not isinstance({t}, _BYTES) or len({t}) != {size}:"):
                    self.refuse(out, path, f"expected exactly {size} bytes")
                out(f"out += {t}")
            case Array(items=items):
                self._array(items, t, path, out)
            case Map(values=values):
                self._map(values, t, path, out)
            case Union(branches=branches):
                self._union(branches, t, path, out)
            case Record():
                self._record(node, t, path, out)

    # --- scalars ----------------------------------------------------------------------------

    def _primitive(self, node: Primitive, t: str, path: str, out: _Body) -> None:
        kind = node.type
        if kind == "string":
            self._string(t, path, out)
        elif kind in ("int", "long"):
            self._integer(node, t, path, out)
        elif kind in ("float", "double"):
            with out.block(f"if not isinstance({t}, _NUMBER) or isinstance({t}, bool):"):
                self.refuse(out, path, "expected a number, got ", t)
            with out.block("try:"):
                out(f"out += {'_FLOAT' if kind == 'float' else '_DOUBLE'}(float({t}))")
            with out.block("except (OverflowError, _StructError):"):
                out(f"raise _E({f'{path}: the number is out of the {kind} range'!r}) from None")
        elif kind == "boolean":
            with out.block(f"if {t} is True:"):
                out("out.append(1)")
            with out.block(f"elif {t} is False:"):
                out("out.append(0)")
            with out.block("else:"):
                self.refuse(out, path, "expected a boolean, got ", t)
        elif kind == "bytes":
            with out.block(f"if not isinstance({t}, _BYTES):"):
                self.refuse(out, path, "expected bytes, got ", t)
            out(f"ln = len({t})")
            self.length("ln", out)
            out(f"out += {t}")
        else:
            with out.block(f"if {t} is not None:"):
                self.refuse(out, path, "expected null, got ", t)

    def _string(self, t: str, path: str, out: _Body, *, checked: bool = False) -> None:
        if not checked:
            with out.block(f"if not isinstance({t}, str):"):
                self.refuse(out, path, "expected a string, got ", t)
        with out.block("try:"):
            out(f"raw = {t}.encode()")
        with out.block("except UnicodeEncodeError:"):
            rule = "the string holds characters UTF-8 cannot encode (lone surrogates)"
            out(f"raise _E({f'{path}: {rule}'!r}) from None")
        out("ln = len(raw)")
        with out.block("if ln < 64:"):
            out("out.append(ln << 1)")
        with out.block("else:"):
            self.length("ln", out)
        out("out += raw")

    def _integer(self, node: Primitive, t: str, path: str, out: _Body) -> None:
        low, high = (INT_MIN, INT_MAX) if node.type == "int" else (LONG_MIN, LONG_MAX)
        if node.logical in ("date", "timestamp-millis"):
            # A new variable: a union's next branch must still see the value as given.
            number = self.name("n")
            if node.logical == "date":
                out(f"{number} = _date_to_days({t}, {path!r})")
            else:
                # The common case inline: int milliseconds within the years 1-9999.
                with out.block(f"if {t}.__class__ is int and {TS_MIN_MILLIS} <= {t} <= {TS_MAX_MILLIS}:"):
                    out(f"{number} = {t}")
                with out.block("else:"):
                    out(f"{number} = _timestamp_to_millis({t}, {path!r})")
            t = number
        else:
            # The common case first: a plain int (bool is an int subclass, and refused).
            check = f"{t}.__class__ is not int and (not isinstance({t}, int) or isinstance({t}, bool))"
            with out.block(f"if {check}:"):
                self.refuse(out, path, "expected an integer, got ", t)
        with out.block(f"if {t} < {low} or {t} > {high}:"):
            self.refuse(out, path, f"the integer is out of the {node.type} range")
        self.long(t, out)

    def _enum(self, symbols: tuple[str, ...], t: str, path: str, out: _Body) -> None:
        encoded = self.constant({s: zigzag(i) for i, s in enumerate(symbols)}, "_S")
        out(f"e = {encoded}.get({t}) if isinstance({t}, str) else None")
        with out.block("if e is None:"):
            self.refuse(out, path, f"not one of the symbols {', '.join(symbols)}")
        out("out += e")

    # --- composites -------------------------------------------------------------------------

    def _array(self, items: Node, t: str, path: str, out: _Body) -> None:
        with out.block(f"if not isinstance({t}, _SEQUENCE):"):
            self.refuse(out, path, "expected an array (list), got ", t)
        with out.block(f"if {t}:"):
            out(f"ln = len({t})")
            self.length("ln", out)
            item = self.name("x")
            with out.block(f"for {item} in {t}:"):
                self.write(items, item, f"{path}[]", out)
        out("out.append(0)")

    def _map(self, values: Node, t: str, path: str, out: _Body) -> None:
        with out.block(f"if not isinstance({t}, _MAPPING):"):
            self.refuse(out, path, "expected a map (mapping), got ", t)
        with out.block(f"if {t}:"):
            out(f"ln = len({t})")
            self.length("ln", out)
            key, item = self.name("k"), self.name("x")
            with out.block(f"for {key}, {item} in {t}.items():"):
                with out.block(f"if not isinstance({key}, str):"):
                    self.refuse(out, path, "map keys must be strings")
                self._string(key, path, out, checked=True)
                self.write(values, item, f"{path}{{}}", out)
        out("out.append(0)")

    def _union(self, branches: tuple[Node, ...], t: str, path: str, out: _Body) -> None:
        null_index = next(
            (i for i, b in enumerate(branches) if isinstance(b, Primitive) and b.type == "null"), None
        )
        others = [(i, b) for i, b in enumerate(branches) if i != null_index]
        if null_index is not None:
            out(f"if {t} is None:")
            out(f"    out += {zigzag(null_index)!r}")
            out("else:")
            out.depth += 1
        if len(others) == 1:
            # One branch to try: its own refusal is the union's.
            index, branch = others[0]
            out(f"out += {zigzag(index)!r}")
            self.write(branch, t, path, out)
        else:
            mark = self.name("m")
            out(f"{mark} = len(out)")
            self._attempts(others, t, path, mark, out)
        if null_index is not None:
            out.depth -= 1

    def _attempts(self, others: list[tuple[int, Node]], t: str, path: str, mark: str, out: _Body) -> None:
        """Try each branch in order; a refused one is cut off the output before the next is tried."""
        if not others:
            out(f"raise _E({f'{path}: a '!r} + type({t}).__name__ + ' value fits no branch of the union')")
            return
        (index, branch), rest = others[0], others[1:]
        with out.block("try:"):
            out(f"out += {zigzag(index)!r}")
            self.write(branch, t, path, out)
        with out.block("except _E:"):
            out(f"del out[{mark}:]")
            self._attempts(rest, t, path, mark, out)

    def _record(self, node: Record, t: str, path: str, out: _Body, *, inline: bool = False) -> None:
        if not inline and id(node) in self._recursive:
            out(f"{self._record_function(node, path)}({t}, out)")
            return
        names = self.constant(frozenset(f.name for f in node.fields), "_N")
        with out.block(f"if {t}.__class__ is not dict and not isinstance({t}, _MAPPING):"):
            self.refuse(out, path, "expected a record (mapping), got ", t)
        with out.block(f"if not {names}.issuperset({t}):"):
            out(f"raise _E({f'{path}: '!r} + _extra({t}, {names}))")
        for fld in node.fields:
            var = self.name("v")
            with out.block(f"if {fld.name!r} in {t}:"):
                out(f"{var} = {t}[{fld.name!r}]")
            with out.block("else:"):
                if fld.has_default:
                    out(f"{var} = {self.constant(fld.default, '_d')}")
                else:
                    self.refuse(out, f"{path}.{fld.name}", "missing, and the field has no default")
            self.write(fld.type, var, f"{path}.{fld.name}", out)

    def _record_function(self, node: Record, path: str) -> str:
        """One function per recursive record and path it is first reached by; inside it, references
        back to the record call it again (so refusals name that first path, however deep)."""
        if id(node) in self._open:
            return self._open[id(node)]
        key = (id(node), path)
        if key not in self._record_functions:
            fname = self.name("_rec")
            self._open[id(node)] = fname
            body = _Body()
            self._record(node, "t", path, body, inline=True)
            del self._open[id(node)]
            self.functions.append(f"def {fname}(t, out):\n" + "\n".join(body.lines))
            self._record_functions[key] = fname
        return self._record_functions[key]


def generate_encoder(root: Node, name: str) -> tuple[str, dict[str, object]]:
    """The source of ``encode(value, prefix=b'')`` returning ``prefix`` followed by the Avro binary
    body of ``value`` written as ``root`` (named ``name`` in refusals), and the constants it needs."""
    emitter = _Emitter(root)
    body = _Body()
    body("out = bytearray(prefix)")
    emitter.write(root, "value", short_name(name), body)
    body("return bytes(out)")
    entry = "def encode(value, prefix=b''):\n" + "\n".join(body.lines)
    return "\n\n".join([*emitter.functions, entry]) + "\n", emitter.constants
