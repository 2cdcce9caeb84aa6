"""The Java example producer (examples/java-producer) for tests: built with Maven once, cached, run as a jar.

``java_producer_jar()`` returns the runnable jar. It is built out of tree (the checkout gets no
``target/``) into ``${XDG_CACHE_HOME:-~/.cache}/rentan-recon/java-producer-<hash>/``, the hash covering
the pom and every file under ``src/``, so an edit rebuilds and an unchanged example costs a hash. The
first build downloads Avro, the Kafka client and Maven's plugins from Maven Central (minutes); ``~/.m2``
keeps them, so a rebuild takes seconds. Concurrent test runs wait on a file lock instead of building twice.

``run_java_producer("write-container", "--schemas", ..., ...)`` runs it; the commands are described in
examples/java-producer/README.md.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "java-producer"
SCHEMAS = REPO / "schemas"
JAR_NAME = "rentan-java-producer.jar"
_HINT = "run scripts/bootstrap.sh (or apt-get install -y maven openjdk-17-jdk-headless)"


class JavaKitError(RuntimeError):
    """The example could not be built; the message names the fix or quotes Maven's output."""


def source_digest(example: Path = EXAMPLE) -> str:
    """SHA-256 over the pom and every file under src/ (paths and contents): the cache key."""
    digest = hashlib.sha256()
    files = [example / "pom.xml", *sorted(p for p in (example / "src").rglob("*") if p.is_file())]
    for path in files:
        digest.update(path.relative_to(example).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rentan-recon"


def _require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise JavaKitError(f"{tool} not found on PATH: {_HINT}")
    return found


@functools.cache
def java_producer_jar(example: Path = EXAMPLE) -> Path:
    """The example's runnable jar, built by ``mvn -q -B package`` when its sources changed."""
    root = _cache_root()
    jar = root / f"java-producer-{source_digest(example)[:16]}" / JAR_NAME
    if jar.is_file():
        return jar
    mvn = _require("mvn")
    root.mkdir(parents=True, exist_ok=True)
    with (root / "java-producer.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if jar.is_file():  # another process built it while we waited
            return jar
        with tempfile.TemporaryDirectory(prefix="java-producer-build-", dir=root) as tmp:
            build = Path(tmp)
            shutil.copy2(example / "pom.xml", build / "pom.xml")
            shutil.copytree(example / "src", build / "src")
            done = subprocess.run(
                [mvn, "-q", "-B", "-Dstyle.color=never", "package"],
                cwd=build,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                output = (done.stdout + done.stderr).strip()[-3000:]
                raise JavaKitError(
                    f"mvn package of {example} failed (is Maven Central reachable?):\n{output}"
                )
            jar.parent.mkdir(parents=True, exist_ok=True)
            partial = jar.with_suffix(".partial")
            shutil.copy2(build / "target" / JAR_NAME, partial)
            partial.rename(jar)  # atomic: a jar at its final path is always complete
    return jar


def run_java_producer(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``java -jar <the example> ARGS``; stdout holds what it prints per record, stderr its errors."""
    return subprocess.run(
        [_require("java"), "-jar", str(java_producer_jar()), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
    )
