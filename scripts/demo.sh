#!/usr/bin/env bash
# The main job, on a fresh machine: installs what it needs (idempotent), then `recon demo`:
# a local Apache Kafka, both services, the Sulawesi scenario, the coverage report and alerts.
# Extra arguments go to `recon demo` (e.g. --scale 0.25 for a quicker run).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
exec .venv/bin/recon demo "$@"
