"""The Go example producer (examples/go-producer) for tests: built once with `go build`, cached.

``go_producer()`` returns the binary. It is built out of tree (nothing is written into the checkout)
into ``${XDG_CACHE_HOME:-~/.cache}/rentan-recon/go-producer-<hash>/``, the hash covering go.mod, go.sum
and every .go file, so an edit rebuilds and an unchanged example costs a hash. The build runs with
``GOFLAGS=-mod=readonly``: the modules are exactly those go.mod and go.sum pin. The first build
downloads them through the Go module proxy into the module cache (``go env GOMODCACHE``), which keeps
them, so a rebuild takes seconds. Concurrent test runs wait on a file lock instead of building twice.

``run_go_producer("write", "--schemas", ..., ...)`` runs it; the commands are described in
examples/go-producer/README.md.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "go-producer"
SCHEMAS = REPO / "schemas"
BINARY_NAME = "go-producer"
_HINT = "install Go 1.26 or later (https://go.dev/dl/) and put `go` on PATH"


class GoKitError(RuntimeError):
    """The example could not be built; the message names the fix or quotes Go's output."""


def source_files(example: Path = EXAMPLE) -> list[Path]:
    """go.mod, go.sum and the example's .go files (not its README): what the binary is built from."""
    return [example / "go.mod", example / "go.sum", *sorted(example.glob("*.go"))]


def source_digest(example: Path = EXAMPLE) -> str:
    """SHA-256 over the source files (names and contents): the cache key."""
    digest = hashlib.sha256()
    for path in source_files(example):
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rentan-recon"


def _require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise GoKitError(f"{tool} not found on PATH: {_HINT}")
    return found


@functools.cache
def go_producer(example: Path = EXAMPLE) -> Path:
    """The example's binary, built by ``go build -trimpath`` when its sources changed."""
    root = _cache_root()
    binary = root / f"go-producer-{source_digest(example)[:16]}" / BINARY_NAME
    if binary.is_file():
        return binary
    go = _require("go")
    root.mkdir(parents=True, exist_ok=True)
    with (root / "go-producer.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if binary.is_file():  # another process built it while we waited
            return binary
        binary.parent.mkdir(parents=True, exist_ok=True)
        partial = binary.with_suffix(".partial")
        env = {**os.environ, "GOFLAGS": "-mod=readonly", "GOWORK": "off"}
        done = subprocess.run(
            [go, "build", "-trimpath", "-o", str(partial), "."],
            cwd=example,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()[-3000:]
            raise GoKitError(f"go build of {example} failed (is the Go module proxy reachable?):\n{output}")
        partial.rename(binary)  # atomic: a binary at its final path is always complete
    return binary


def run_go_producer(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``go-producer ARGS``; stdout holds what it prints per message, stderr its errors."""
    return subprocess.run(
        [str(go_producer()), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
    )
