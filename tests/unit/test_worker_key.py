"""The worker key: HMAC-SHA256 of the NIK, 128 bits as 32 hex digits."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from factories import valid_nik
from recon.domain.worker_key import as_chain, chain_fingerprint, check_key, rewrap, worker_key

KEY = b"0123456789abcdef0123456789abcdef"
NIK = "7271015506900001"


def test_known_key_gives_a_pinned_value() -> None:
    # Pinned: changing the algorithm would split every worker's history in the ledger in two.
    assert worker_key(NIK, KEY) == "9dd9d5fe6761a855a104138c17fa1f39"


def test_it_is_the_first_128_bits_of_hmac_sha256() -> None:
    expected = hmac.new(KEY, NIK.encode(), hashlib.sha256).hexdigest()[:32]
    assert worker_key(NIK, KEY) == expected


def test_same_inputs_same_key_across_calls() -> None:
    assert worker_key(NIK, KEY) == worker_key(NIK, KEY) == worker_key(NIK, bytes(KEY))


def test_different_keys_give_different_values() -> None:
    assert worker_key(NIK, KEY) != worker_key(NIK, KEY[::-1])


def test_different_niks_give_different_values() -> None:
    assert worker_key(valid_nik(serial=1), KEY) != worker_key(valid_nik(serial=2), KEY)


def test_the_value_does_not_contain_the_nik() -> None:
    value = worker_key(NIK, KEY)
    assert len(value) == 32
    assert NIK not in value
    assert set(value) <= set("0123456789abcdef")


@pytest.mark.parametrize("key", [b"", b"short", b"x" * 15])
def test_a_short_key_is_refused(key: bytes) -> None:
    with pytest.raises(ValueError, match="at least 16 random bytes"):
        worker_key(NIK, key)
    with pytest.raises(ValueError, match="at least 16 random bytes"):
        check_key(key)


def test_a_refused_key_is_not_echoed() -> None:
    with pytest.raises(ValueError) as raised:
        check_key(b"secret-short")
    assert "secret" not in str(raised.value)


def test_sixteen_bytes_are_enough() -> None:
    check_key(b"x" * 16)
    assert len(worker_key(NIK, b"x" * 16)) == 32


@given(st.binary(min_size=16, max_size=80), st.from_regex(r"[0-9]{16}", fullmatch=True))
def test_matches_the_stdlib_for_any_key(key: bytes, nik: str) -> None:
    assert worker_key(nik, key) == hmac.new(key, nik.encode(), hashlib.sha256).hexdigest()[:32]


# --- the key chain (rotations) ----------------------------------------------------------------------
K2 = b"fedcba9876543210fedcba9876543210"
K3 = b"a third key, at least 16 bytes!!"


def test_a_chain_of_one_key_is_the_unrotated_function() -> None:
    # Backward compatible: a ledger never rotated keeps matching its workers.
    assert worker_key(NIK, (KEY,)) == worker_key(NIK, [KEY]) == worker_key(NIK, KEY)
    assert worker_key(NIK, (KEY,)) == "9dd9d5fe6761a855a104138c17fa1f39"


def test_a_rotated_key_is_the_new_keys_hmac_of_the_previous_digest() -> None:
    first = hmac.new(KEY, NIK.encode(), hashlib.sha256).hexdigest()[:32]
    second = hmac.new(K2, first.encode(), hashlib.sha256).hexdigest()[:32]
    third = hmac.new(K3, second.encode(), hashlib.sha256).hexdigest()[:32]
    assert worker_key(NIK, (KEY, K2)) == second
    assert worker_key(NIK, (KEY, K2, K3)) == third


def test_rewrap_moves_a_stored_key_one_rotation_on_without_the_nik() -> None:
    assert rewrap(worker_key(NIK, KEY), K2) == worker_key(NIK, (KEY, K2))
    assert rewrap(worker_key(NIK, (KEY, K2)), K3) == worker_key(NIK, (KEY, K2, K3))


def test_the_order_of_the_keys_matters() -> None:
    assert worker_key(NIK, (KEY, K2)) != worker_key(NIK, (K2, KEY))


@pytest.mark.parametrize("short", [b"", b"short", b"x" * 15])
def test_a_short_key_anywhere_in_the_chain_is_refused(short: bytes) -> None:
    for chain in ((short, K2), (KEY, short), (KEY, K2, short)):
        with pytest.raises(ValueError, match="at least 16 random bytes"):
            worker_key(NIK, chain)
        with pytest.raises(ValueError, match="at least 16 random bytes"):
            check_key(chain)
        with pytest.raises(ValueError, match="at least 16 random bytes"):
            as_chain(chain)
    with pytest.raises(ValueError, match="at least 16 random bytes"):
        rewrap(worker_key(NIK, KEY), short)


def test_an_empty_chain_is_refused() -> None:
    with pytest.raises(ValueError, match="chain is empty"):
        worker_key(NIK, ())
    with pytest.raises(ValueError, match="chain is empty"):
        check_key(())


def test_the_chain_fingerprint_tells_chains_apart_and_is_no_workers_key() -> None:
    assert chain_fingerprint((KEY, K2)) == chain_fingerprint([KEY, K2])
    prints = {chain_fingerprint(c) for c in (KEY, (KEY, K2), (K2, KEY), (KEY, K2, K3), (KEY, K3))}
    assert len(prints) == 5
    assert chain_fingerprint((KEY, K2)) != worker_key(NIK, (KEY, K2))
    assert set(chain_fingerprint(KEY)) <= set("0123456789abcdef") and len(chain_fingerprint(KEY)) == 32


@given(
    st.lists(st.binary(min_size=16, max_size=48), min_size=1, max_size=4),
    st.from_regex(r"[0-9]{16}", fullmatch=True),
)
def test_a_chain_is_the_first_key_rewrapped_by_each_later_one(keys: list[bytes], nik: str) -> None:
    value = worker_key(nik, keys[0])
    for key in keys[1:]:
        value = rewrap(value, key)
    assert worker_key(nik, keys) == value
