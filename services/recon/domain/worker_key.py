"""The worker key: a keyed hash of the NIK, so a worker can be followed without storing the NIK.

HMAC-SHA256 under a secret key (a plain hash of a 16-digit number with a known structure could be
reversed by trying every plausible NIK), truncated to 128 bits, written as 32 hex digits.

The key is a chain, so it can be rotated. The ledger holds no NIK, so stored keys cannot be
recomputed under a new key; instead a rotation wraps every stored key once more:
``worker_key(nik, (k1, k2))`` is ``HMAC(k2, HMAC(k1, nik)[:32])[:32]``, which is exactly
``rewrap(worker_key(nik, k1), k2)``. A chain of one key is the original, unrotated function.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Final

WORKER_KEY_HEX_DIGITS: Final = 32  # 128 bits
MIN_KEY_BYTES: Final = 16
# What the chain's fingerprint hashes: not a NIK (letters), so it can never equal a worker's key.
CHAIN_CHECK_LABEL: Final = "recon-key-check"

KeyChain = tuple[bytes, ...]  # oldest key first: RECON_NIK_HASH_KEY, then each rotation's key


def worker_key(nik: str, keys: bytes | Sequence[bytes]) -> str:
    """The NIK's key under the chain ``keys`` (or one key): HMAC-SHA256 under the first key, then
    each later key's HMAC of the previous 32 hex digits, as 32 hex digits. Same inputs, same key.

    Raises ValueError when the chain is empty or a key is shorter than 16 bytes (configuration).
    """
    if isinstance(keys, bytes):  # the common, unrotated case: ingest calls this once per event
        return _mac(keys, nik)
    if not keys:
        raise ValueError("the NIK hashing key chain is empty: set RECON_NIK_HASH_KEY")
    value = nik
    for key in keys:  # each key is checked by _keyed as it is used
        value = _mac(key, value)
    return value


def rewrap(stored: str, new_key: bytes) -> str:
    """A stored worker key moved one rotation on: ``worker_key(nik, chain + (new_key,))`` from
    ``worker_key(nik, chain)``, without the NIK."""
    return _mac(new_key, stored)


def chain_fingerprint(keys: bytes | Sequence[bytes]) -> str:
    """A check value of the whole chain, recorded with each rotation, so a service configured with
    other keys (or a key missing) is told at start instead of splitting every worker in two."""
    return worker_key(CHAIN_CHECK_LABEL, keys)


def as_chain(keys: bytes | Sequence[bytes]) -> KeyChain:
    """``keys`` as a checked chain; a lone ``bytes`` is a chain of one key."""
    chain: KeyChain = (keys,) if isinstance(keys, bytes) else tuple(keys)
    if not chain:
        raise ValueError("the NIK hashing key chain is empty: set RECON_NIK_HASH_KEY")
    for key in chain:
        check_key(key)
    return chain


def check_key(key: bytes | Sequence[bytes]) -> None:
    """Raise ValueError, naming the fix, when ``key`` (or a key of a chain) cannot be a worker-key
    secret."""
    if isinstance(key, bytes):
        _keyed(key)
    else:
        as_chain(key)


def _mac(key: bytes, text: str) -> str:
    # HMAC by its definition (RFC 2104), from the two SHA-256 states the key leaves after its padded
    # block, prepared once per key and copied per value: about half of hmac.HMAC.copy() per NIK, and
    # the same digest (tests/unit/test_worker_key.py checks it against hmac.new for any key).
    inner, outer = _keyed(key)
    digest = inner.copy()
    digest.update(text.encode())
    mac = outer.copy()
    mac.update(digest.digest())
    hexdigest: str = mac.hexdigest()
    return hexdigest[:WORKER_KEY_HEX_DIGITS]


_BLOCK: Final = 64  # SHA-256's block size in bytes
_INNER_PAD: Final = bytes(b ^ 0x36 for b in range(256))
_OUTER_PAD: Final = bytes(b ^ 0x5C for b in range(256))


@lru_cache(maxsize=16)
def _keyed(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """SHA-256 after the key's inner and outer padded blocks; ValueError for a key too short."""
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"the NIK hashing key must be at least {MIN_KEY_BYTES} random bytes "
            f"(32 recommended); got {len(key)}"
        )
    block = (hashlib.sha256(key).digest() if len(key) > _BLOCK else key).ljust(_BLOCK, b"\0")
    return hashlib.sha256(block.translate(_INNER_PAD)), hashlib.sha256(block.translate(_OUTER_PAD))
