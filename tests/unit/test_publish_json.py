"""`recon publish` parses lines with orjson where it cannot differ from json: same value, same error."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from recon.publish import _parse

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(alphabet=st.sampled_from('az9"\\é😀\ud800\x01 '), max_size=8),
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


def same(a: object, b: object) -> bool:
    """Equal, with the types too (1 is not 1.0 here) and NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def check(text: str) -> None:
    try:
        expected: object = ("value", json.loads(text))
    except json.JSONDecodeError as exc:
        expected = ("error", exc.msg, exc.colno)
    try:
        got: object = ("value", _parse(text))
    except json.JSONDecodeError as exc:
        got = ("error", exc.msg, exc.colno)
    assert same(list(got), list(expected)), (text, got, expected)


@settings(max_examples=400, deadline=None)
@given(DOCUMENTS)
def test_a_json_document_parses_to_what_json_gives(document: object) -> None:
    check(json.dumps(document))


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from('{}[]:,"0123456789.eE-+ nulltrue\\u\ufeff\x00\ud800é'), max_size=20))
def test_any_text_parses_or_fails_as_json_says(text: str) -> None:
    check(text)


def test_the_cases_orjson_reads_otherwise_go_to_json() -> None:
    for text in ["123456789012345678901234567890", "-9223372036854775809", "1E400", "NaN", '"\\ud800"']:
        check(text)
