"""Build an example once and keep the result, for the tests that run the other-language producers.

``cached_build(name, digest, filename, build)`` returns
``${XDG_CACHE_HOME:-~/.cache}/rentan-recon/<name>-<digest[:16]>/<filename>``, calling ``build(path)`` to
make it first when it is not there. ``digest`` is ``source_digest`` of what the artefact is built from,
so an edit rebuilds and an unchanged example costs a hash. Concurrent test runs wait on a file lock
instead of building twice, and ``build`` writes to a partial path that is renamed into place, so a file
at its final path is always complete.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rentan-recon"


def source_digest(root: Path, files: Iterable[Path]) -> str:
    """SHA-256 over ``files`` (their paths below ``root``, and contents): the cache key."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def cached_build(name: str, digest: str, filename: str, build: Callable[[Path], None]) -> Path:
    """The cached artefact ``filename`` of ``name`` at ``digest``; ``build(partial)`` must write it to
    ``partial`` (or raise, leaving nothing at the final path)."""
    root = cache_root()
    final = root / f"{name}-{digest[:16]}" / filename
    if final.is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if final.is_file():  # another process built it while we waited
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_suffix(".partial")
        build(partial)
        partial.rename(final)  # atomic
    return final
