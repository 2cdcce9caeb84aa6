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

import functools
import os
import shutil
import subprocess
from pathlib import Path

import buildcache

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "go-producer"
SCHEMAS = REPO / "schemas"
BINARY_NAME = "go-producer"
_HINT = "install Go 1.26 or later and put `go` on PATH"


class GoKitError(RuntimeError):
    """The example could not be built; the message names the fix or quotes Go's output."""


def source_files(example: Path = EXAMPLE) -> list[Path]:
    """go.mod, go.sum and the example's .go files (not its README): what the binary is built from."""
    return [example / "go.mod", example / "go.sum", *sorted(example.glob("*.go"))]


def source_digest(example: Path = EXAMPLE) -> str:
    """SHA-256 over the source files (names and contents): the cache key."""
    return buildcache.source_digest(example, source_files(example))


def _require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise GoKitError(f"{tool} not found on PATH: {_HINT}")
    return found


@functools.cache
def go_producer(example: Path = EXAMPLE) -> Path:
    """The example's binary, built by ``go build -trimpath`` when its sources changed."""

    def build(partial: Path) -> None:
        env = {**os.environ, "GOFLAGS": "-mod=readonly", "GOWORK": "off"}
        done = subprocess.run(
            [_require("go"), "build", "-trimpath", "-o", str(partial), "."],
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

    return buildcache.cached_build("go-producer", source_digest(example), BINARY_NAME, build)


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
