#!/usr/bin/env bash
# Dependency audit: first a CycloneDX SBOM of every pinned package (both lock files, with their
# versions and sha256 hashes), then pip-audit of the same locks against the PyPI advisory service.
# Code audit (bandit's rules, through ruff's "S" set) runs in scripts/test.sh; this needs a
# vulnerability database, which scripts/test.sh cannot count on (see docs/security.md, "Dependency
# and code audit"). The SBOM is written whether or not a database answers, so that any SBOM scanner
# with one (Dependency-Track, osv-scanner, grype…) can check it elsewhere.
#
#   scripts/audit.sh [--sbom-dir DIR]   DIR (default build/sbom) gets rentan-recon.cdx.json (runtime:
#                                       what the image ships) and rentan-recon-dev.cdx.json (everything);
#                                       exit 0: no known vulnerability; 1: some found, or a package
#                                       could not be checked (--strict: an unreachable database is a
#                                       failure, never a pass)
#   scripts/audit.sh --sbom-only [--sbom-dir DIR]   only the SBOMs (offline; no bootstrap: needs .venv)
set -euo pipefail
cd "$(dirname "$0")/.."

sbom_dir=build/sbom
sbom_only=false
while (($#)); do
    case "$1" in
        --sbom-dir) sbom_dir="$2"; shift 2 ;;
        --sbom-only) sbom_only=true; shift ;;
        *) echo "audit: unknown option $1: use --sbom-dir DIR or --sbom-only" >&2; exit 2 ;;
    esac
done

$sbom_only || ./scripts/bootstrap.sh >/dev/null
[[ -x .venv/bin/cyclonedx-py ]] || { echo "audit: .venv/bin/cyclonedx-py is missing: run scripts/bootstrap.sh" >&2; exit 1; }

# --- SBOM: CycloneDX 1.6 JSON, validated against its schema by cyclonedx-py before it is written ---
mkdir -p "$sbom_dir"
for pair in "requirements.lock:rentan-recon.cdx.json" "requirements-dev.lock:rentan-recon-dev.cdx.json"; do
    lock="${pair%%:*}" out="$sbom_dir/${pair#*:}"
    # --output-reproducible: no timestamp or random serial number, so the same lock gives the same file.
    PYTHONWARNINGS=ignore .venv/bin/cyclonedx-py requirements --pyproject pyproject.toml --spec-version 1.6 \
        --output-format JSON --output-reproducible --validate --output-file "$out" "$lock"
    echo "audit: SBOM of $lock in $out" >&2
done
$sbom_only && exit 0

# --- pip-audit, in a venv of its own: its dependencies never mix with ours ---
tools="${XDG_CACHE_HOME:-$HOME/.cache}/rentan-recon/audit-venv"
if [[ ! -x "$tools/bin/pip-audit" ]]; then
    python3.11 -m venv "$tools"
    "$tools/bin/pip" install -q "pip-audit==2.10.1"
fi
# The dev lock holds every runtime package too. --disable-pip: the lock is hashed and complete, nothing
# to resolve.
exec "$tools/bin/pip-audit" --requirement requirements-dev.lock --require-hashes --disable-pip --strict \
    --vulnerability-service pypi --progress-spinner off
