"""The fingerprints the Go Avro libraries' single-object encoders write: accepted as aliases.

The spec's fingerprint is CRC-64-AVRO of the Parsing Canonical Form, which drops ``logicalType``.
Two common Go libraries hash another text (read from their source and checked by running them,
tests/data/go/README.md):

- github.com/hamba/avro/v2 (``soe.NewCodec``, ``soe.ComputeFingerprint`` =
  ``schema.FingerprintUsing(avro.CRC64AvroLE)``) hashes ``schema.String()``: the canonical form
  with each logical type it recognises kept, ``{"type":"long","logicalType":"timestamp-millis"}``
  for ``"long"`` (a ``decimal`` with its ``precision`` and a non-zero ``scale``).
- github.com/linkedin/goavro/v2 (``Codec.SingleFromNative``, ``Codec.Rabin``, its issue #174)
  canonicalises the schema JSON itself: it drops every attribute but name, type, fields, symbols,
  items, values and size, yet reduces an object to its type name only when ``type`` was its sole
  attribute, so ``{"type":"long","logicalType":"timestamp-millis"}`` becomes ``{"type":"long"}``.
  (Building the codec first deletes a ``logicalType`` goavro does not know, so
  ``{"type":"string","logicalType":"uuid"}`` does become ``"string"``.)

Both put the CRC-64-AVRO of that text little-endian after ``C3 01``, as the spec does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from recon.avro._crc import fingerprint_bytes

HAMBA = "hamba/avro"
"""github.com/hamba/avro/v2, soe.Codec."""
GOAVRO = "goavro"
"""github.com/linkedin/goavro/v2, Codec.SingleFromNative."""

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


@dataclass(frozen=True, slots=True)
class FingerprintAlias:
    """A fingerprint some library writes for a schema instead of the spec's, and the text it hashes."""

    library: str
    fingerprint: bytes
    canonical_form: str


def fingerprint_aliases(schema_json: object, spec_fingerprint: bytes) -> tuple[FingerprintAlias, ...]:
    """The aliases of a schema given as parsed JSON (already checked by the parser), without the
    ones equal to the spec's fingerprint (a schema with nothing the libraries treat differently).
    Two libraries writing the same fingerprint share one alias, ``library`` naming both
    (``hamba/avro+goavro``)."""
    found: dict[bytes, FingerprintAlias] = {}
    forms = ((HAMBA, hamba_canonical_form(schema_json)), (GOAVRO, goavro_canonical_form(schema_json)))
    for library, form in forms:
        if form is None:
            continue
        fingerprint = fingerprint_bytes(form)
        if fingerprint == spec_fingerprint:
            continue
        same = found.get(fingerprint)
        found[fingerprint] = FingerprintAlias(
            library if same is None else f"{same.library}+{library}", fingerprint, form
        )
    return tuple(found.values())


def hamba_canonical_form(schema_json: object) -> str:
    """The text hamba/avro's ``Schema.String()`` gives (schema.go), from the schema's JSON."""
    return _Hamba().form(schema_json, "")


def goavro_canonical_form(schema_json: object) -> str | None:
    """The text goavro's ``parsingCanonicalForm`` gives (canonical.go), from the schema's JSON;
    None for a schema goavro refuses (a decimal without a valid precision and scale, a
    validated-string without a pattern)."""
    try:
        return _Goavro().form(schema_json, "")
    except _GoavroRefuses:
        return None


def _q(text: str) -> str:
    # Both libraries write names and symbols between quotes unescaped; Avro names need no escaping.
    return '"' + text + '"'


class _Hamba:
    """Names resolved as the spec says (hamba's parser does too); each named type spelled out at its
    first use only, a later use by its full name."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def form(self, s: object, namespace: str) -> str:
        if isinstance(s, str):
            return _q(s) if s in _PRIMITIVES else _q(self._resolve(s, namespace))
        if isinstance(s, list):
            return "[" + ",".join(self.form(b, namespace) for b in s) + "]"
        assert isinstance(s, Mapping)
        kind = s.get("type")
        if isinstance(kind, list | Mapping):
            return self.form(kind, namespace)
        assert isinstance(kind, str)
        if kind in _PRIMITIVES:
            logical = _hamba_primitive_logical(kind, s)
            return _q(kind) if logical is None else '{"type":' + _q(kind) + "," + logical + "}"
        if kind == "array":
            return '{"type":"array","items":' + self.form(s["items"], namespace) + "}"
        if kind == "map":
            return '{"type":"map","values":' + self.form(s["values"], namespace) + "}"
        if kind not in ("record", "error", "enum", "fixed"):
            return self.form(kind, namespace)
        full = _full_name(s["name"], s.get("namespace", namespace))
        if full in self.seen:
            return _q(full)
        self.seen.add(full)
        head = '{"name":' + _q(full) + ',"type":' + _q(kind)
        inner = full.rpartition(".")[0]
        if kind == "enum":
            return head + ',"symbols":[' + ",".join(_q(x) for x in s["symbols"]) + "]}"
        if kind == "fixed":
            logical = _hamba_fixed_logical(s)
            return head + ',"size":' + str(s["size"]) + ("," + logical if logical else "") + "}"
        fields = ",".join(
            '{"name":' + _q(f["name"]) + ',"type":' + self.form(f["type"], inner) + "}" for f in s["fields"]
        )
        return head + ',"fields":[' + fields + "]}"

    def _resolve(self, name: str, namespace: str) -> str:
        qualified = f"{namespace}.{name}" if namespace and "." not in name else name
        return qualified if qualified in self.seen else name


def _full_name(name: str, namespace: object) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


_HAMBA_PRIMITIVE_LOGICAL = {
    ("string", "uuid"),
    ("int", "date"),
    ("int", "time-millis"),
    ("long", "time-micros"),
    ("long", "timestamp-millis"),
    ("long", "timestamp-micros"),
    ("long", "local-timestamp-millis"),
    ("long", "local-timestamp-micros"),
}


def _hamba_primitive_logical(kind: str, s: Mapping[str, object]) -> str | None:
    logical = s.get("logicalType")
    if not isinstance(logical, str):
        return None
    if (kind, logical) in _HAMBA_PRIMITIVE_LOGICAL:
        return '"logicalType":' + _q(logical)
    if kind == "bytes" and logical == "decimal":
        return _hamba_decimal(s, None)
    return None


def _hamba_fixed_logical(s: Mapping[str, object]) -> str | None:
    logical, size = s.get("logicalType"), s["size"]
    assert isinstance(size, int)
    if logical == "duration" and size == 12:
        return '"logicalType":"duration"'
    if logical == "decimal":
        return _hamba_decimal(s, size)
    return None


def _hamba_decimal(s: Mapping[str, object], size: int | None) -> str | None:
    # schema_parse.go newDecimalLogicalType: precision > 0 (and within what a fixed holds),
    # 0 <= scale <= precision; otherwise no logical type at all. A scale of 0 is not written.
    precision, scale = s.get("precision", 0), s.get("scale", 0)
    if not _whole(precision) or not _whole(scale):
        return None
    assert isinstance(precision, int) and isinstance(scale, int)
    if precision <= 0 or scale < 0 or scale > precision:
        return None
    if size is not None and size > 0 and precision > len(str(2 ** (8 * size) - 1)) - 1:
        return None  # floor(log10(2^(8 size) - 1)): the digits a fixed of that size always holds
    return '"logicalType":"decimal","precision":' + str(precision) + (f',"scale":{scale}' if scale else "")


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# codec.go: the TYPE.LOGICAL names its codec builder knows; it deletes any other logicalType from
# the schema map before canonical.go sees it.
_GOAVRO_LOGICAL = frozenset(
    {
        "long.timestamp-millis",
        "long.timestamp-micros",
        "int.time-millis",
        "long.time-micros",
        "int.date",
        "bytes.decimal",
        "fixed.decimal",
        "string.validated-string",
    }
)
# goavro canonical.go fieldOrder: the attributes kept, in the order written.
_GOAVRO_ORDER = {"name": 1, "type": 2, "fields": 3, "symbols": 4, "items": 5, "values": 6, "size": 7}


class _GoavroRefuses(Exception):
    """goavro.NewCodec would return an error for this schema: it writes no fingerprint at all."""


class _Goavro:
    """canonical.go over the schema map as goavro's codec builder leaves it (codec.go,
    logical_type.go): an unknown logicalType deleted; a bytes decimal, or a validated-string, given
    the name "bytes.decimal" ("string.validated-string") unless one with the same precision and scale
    (any one) was built before."""

    def __init__(self) -> None:
        self.lookup: dict[str, str] = {}
        self.decimals: set[tuple[int, int]] = set()
        self.validated = False

    def form(self, s: object, parent: str) -> str:
        if isinstance(s, Mapping):
            return self._object(self._as_built(s), parent)
        if isinstance(s, list):
            return "[" + ",".join(self.form(x, parent) for x in s) + "]"
        if isinstance(s, str):
            return _q(self.lookup.get(s, s))  # any string equal to a short name seen so far: its full name
        if _whole(s):
            assert isinstance(s, int)
            return _go_number(s)
        raise _GoavroRefuses

    def _as_built(self, s: Mapping[str, object]) -> Mapping[str, object]:
        kind, logical = s.get("type"), s.get("logicalType")
        if not isinstance(kind, str) or logical is None:
            return s
        built = f"{kind}.{logical}"
        if built not in _GOAVRO_LOGICAL:
            return {k: v for k, v in s.items() if k != "logicalType"}
        if built == "bytes.decimal":
            key = _goavro_decimal(s)
            if key in self.decimals:
                return s
            self.decimals.add(key)
        elif built == "string.validated-string":
            if not isinstance(s.get("pattern"), str):
                raise _GoavroRefuses
            if self.validated:
                return s
            self.validated = True
        else:
            return s
        return s if "name" in s else {**s, "name": built}

    def _object(self, s: Mapping[str, object], parent: str) -> str:
        namespace = ""
        given = s.get("namespace")
        if isinstance(given, str):
            namespace = given if parent == "" else f"{parent}.{given}"  # goavro joins nested namespaces
            parent = namespace
        elif s.get("type") in ("record", "enum", "fixed"):
            namespace = parent
        if len(s) == 1 and isinstance(s.get("type"), str):
            return _q(str(s["type"]))
        pairs: list[tuple[int, str]] = []
        # Go iterates a map in random order; "name" first is the order in which a type's own short
        # name used inside it resolves to its full name (the only case where the order shows).
        for key in sorted(s, key=lambda k: k != "name"):
            if key not in _GOAVRO_ORDER:
                continue
            value = s[key]
            if key == "name" and namespace and isinstance(value, str) and "." not in value:
                self.lookup[value] = value = f"{namespace}.{value}"
            pairs.append((_GOAVRO_ORDER[key], self.form(key, parent) + ":" + self.form(value, parent)))
        return "{" + ",".join(text for _, text in sorted(pairs)) + "}"


def _goavro_decimal(s: Mapping[str, object]) -> tuple[int, int]:
    # logical_type.go precisionAndScaleFromSchemaMap: JSON numbers, truncated to int.
    precision, scale = s.get("precision"), s.get("scale", 0)
    if not isinstance(precision, int | float) or not isinstance(scale, int | float):
        raise _GoavroRefuses
    if isinstance(precision, bool) or isinstance(scale, bool):
        raise _GoavroRefuses
    p, sc = int(precision), int(scale)
    if p < 1 or sc < 0 or sc > p:
        raise _GoavroRefuses
    return p, sc


def _go_number(value: int) -> str:
    """Go's strconv.FormatFloat(float64(value), 'g', -1, 64): a size from a million on in e-notation."""
    if value < 1_000_000:
        return str(value)
    digits = str(value).rstrip("0")
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{mantissa}e+{len(str(value)) - 1:02d}"
