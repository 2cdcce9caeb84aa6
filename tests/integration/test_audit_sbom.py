"""scripts/audit.sh's SBOM step, run for real (offline): valid CycloneDX 1.6 JSON for each lock file,
listing every pinned package with its version and hashes, and the project as the described component."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packaging.utils import canonicalize_name

from locks import DEV_LOCK, REPO, RUN_LOCK, read_lock


@pytest.fixture(scope="module")
def sboms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("sbom")
    done = subprocess.run(
        [REPO / "scripts" / "audit.sh", "--sbom-only", "--sbom-dir", str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return {
        RUN_LOCK.name: json.loads((out / "rentan-recon.cdx.json").read_text()),
        DEV_LOCK.name: json.loads((out / "rentan-recon-dev.cdx.json").read_text()),
    }


@pytest.mark.parametrize("lock", [RUN_LOCK, DEV_LOCK], ids=lambda p: p.name)
def test_the_sbom_is_valid_cyclonedx_listing_every_pinned_package(
    lock: Path, sboms: dict[str, dict[str, Any]]
) -> None:
    sbom = sboms[lock.name]
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(sbom))
    assert error is None, error
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.6"
    assert sbom["metadata"]["component"]["name"] == "rentan-recon"
    # --output-reproducible: no timestamp, no random serial number; the same lock gives the same file.
    assert "timestamp" not in sbom["metadata"] and "serialNumber" not in sbom

    listed = {}
    for component in sbom["components"]:
        hashes = sorted(
            h["content"] for ref in component.get("externalReferences", []) for h in ref.get("hashes", [])
        )
        listed[canonicalize_name(component["name"])] = (component["version"], component["purl"], hashes)
    pins = read_lock(lock)
    assert set(listed) == set(pins)
    for name, (version, hashes) in pins.items():
        assert listed[name] == (version, f"pkg:pypi/{name}@{version}", sorted(hashes)), name
