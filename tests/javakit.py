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

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

import buildcache

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "java-producer"
SCHEMAS = REPO / "schemas"
JAR_NAME = "rentan-java-producer.jar"
_HINT = "run scripts/bootstrap.sh (or apt-get install -y maven openjdk-17-jdk-headless)"


class JavaKitError(RuntimeError):
    """The example could not be built; the message names the fix or quotes Maven's output."""


def source_digest(example: Path = EXAMPLE) -> str:
    """SHA-256 over the pom and every file under src/ (paths and contents): the cache key."""
    files = [example / "pom.xml", *sorted(p for p in (example / "src").rglob("*") if p.is_file())]
    return buildcache.source_digest(example, files)


def _require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise JavaKitError(f"{tool} not found on PATH: {_HINT}")
    return found


@functools.cache
def java_producer_jar(example: Path = EXAMPLE) -> Path:
    """The example's runnable jar, built by ``mvn -q -B package`` when its sources changed."""

    def build(partial: Path) -> None:
        mvn = _require("mvn")
        with tempfile.TemporaryDirectory(prefix="java-producer-build-", dir=partial.parent) as tmp:
            work = Path(tmp)
            shutil.copy2(example / "pom.xml", work / "pom.xml")
            shutil.copytree(example / "src", work / "src")
            done = subprocess.run(
                [mvn, "-q", "-B", "-Dstyle.color=never", "package"],
                cwd=work,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                output = (done.stdout + done.stderr).strip()[-3000:]
                raise JavaKitError(
                    f"mvn package of {example} failed (is Maven Central reachable?):\n{output}"
                )
            shutil.copy2(work / "target" / JAR_NAME, partial)

    return buildcache.cached_build("java-producer", source_digest(example), JAR_NAME, build)


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
