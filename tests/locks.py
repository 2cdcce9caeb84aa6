"""Reading the lock files scripts/lock.sh writes (pip requirements with hashes), for the tests."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
DEV_LOCK = REPO / "requirements-dev.lock"
RUN_LOCK = REPO / "requirements.lock"

Pins = dict[str, tuple[str, list[str]]]  # canonical name -> (version, sha256 hashes)


def read_lock(path: Path) -> Pins:
    """A pip requirements file with hashes: one `name==version [; marker]` entry per package, its
    continuation lines holding `--hash=sha256:…`."""
    text = path.read_text().replace("\\\n", " ")
    pins: Pins = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        spec = line.split(" --hash=", 1)[0]
        requirement = Requirement(spec.strip())
        (pin,) = requirement.specifier  # exactly one specifier …
        assert pin.operator == "==", line  # … and an exact pin
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"{path.name}: {name} twice"
        pins[name] = (pin.version, re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
    return pins
