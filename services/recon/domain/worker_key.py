"""The worker key: a keyed hash of the NIK, so a worker can be followed without storing the NIK.

HMAC-SHA256 under a secret key (a plain hash of a 16-digit number with a known structure could be
reversed by trying every plausible NIK), truncated to 128 bits, written as 32 hex digits.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from typing import Final

WORKER_KEY_HEX_DIGITS: Final = 32  # 128 bits
MIN_KEY_BYTES: Final = 16


def worker_key(nik: str, key: bytes) -> str:
    """HMAC-SHA256 of the NIK under ``key``, as the first 32 hex digits. Same inputs, same key.

    Raises ValueError when the key is shorter than 16 bytes (a configuration error).
    """
    mac = _keyed(key).copy()  # the keyed state is prepared once per key and copied per NIK
    mac.update(nik.encode())
    return mac.hexdigest()[:WORKER_KEY_HEX_DIGITS]


def check_key(key: bytes) -> None:
    """Raise ValueError, naming the fix, when ``key`` cannot be a worker-key secret."""
    _keyed(key)


@lru_cache(maxsize=8)
def _keyed(key: bytes) -> hmac.HMAC:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"the NIK hashing key must be at least {MIN_KEY_BYTES} random bytes "
            f"(32 recommended); got {len(key)}"
        )
    return hmac.new(key, digestmod=hashlib.sha256)
