#!/usr/bin/env bash
# Sets up a fresh clone (Debian/Ubuntu) for development and the full test suite. Idempotent, and a few
# seconds when everything is already there:
#   - .venv (python3.11) with every dependency from requirements-dev.lock (exact versions, each file
#     checked against its sha256: pip --require-hashes), then the project itself, editable, without
#     dependencies; redone only when the lock or pyproject.toml changed since the last run (pip's own
#     cache keeps the downloads). A lock that does not match pyproject.toml stops it with one line:
#     run scripts/lock.sh (the one way to refresh the lock files);
#   - java and mvn (apt-get install maven openjdk-17-jre-headless) for the local Kafka broker;
#   - PostgreSQL server binaries (scripts/postgres.sh install) for the PostgreSQL tests;
#   - the Kafka jars, fetched once by Maven into ${XDG_CACHE_HOME:-~/.cache}/rentan-recon (~/.m2 caches
#     the downloads).
# apt-get update runs only when an install fails without it. Run as root (or install the system
# packages yourself first).
set -euo pipefail

cd "$(dirname "$0")/.."
log() { echo "bootstrap: $*" >&2; }

apt_install() {
    [[ "$(id -u)" == 0 ]] || { log "need root to install $*: run 'sudo apt-get install -y $*'"; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    log "installing $*"
    apt-get install -y -q --no-install-recommends "$@" >&2 || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "$@" >&2; }
}

# --- Python ---
if [[ ! -x .venv/bin/python ]]; then
    command -v python3.11 >/dev/null || apt_install python3.11 python3.11-venv
    log "creating .venv"
    python3.11 -m venv .venv
fi
if ! stale="$(scripts/lock.sh --check 2>&1)"; then log "$stale"; exit 1; fi
stamp=.venv/.bootstrap-lock.sha256
want="$(cat pyproject.toml requirements-dev.lock | sha256sum | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" || ! -x .venv/bin/recon ]]; then
    log "installing requirements-dev.lock (pip --require-hashes), then the project (pip install --no-deps -e .)"
    .venv/bin/python -m pip install -q --require-hashes -r requirements-dev.lock
    # The build backend (setuptools) came from the lock too: no unpinned download to build the project.
    .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
    echo "$want" >"$stamp"
fi

# --- Java and Maven, for the local Kafka broker ---
missing=()
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
if ((${#missing[@]})); then apt_install "${missing[@]}"; fi

# --- PostgreSQL server binaries ---
scripts/postgres.sh install

# --- promtool, Prometheus, Alertmanager and Chromium for the operations tests ---
scripts/ops-tools.sh

# --- Kafka jars (the same code `recon broker start` uses) ---
log "Kafka jars in $(.venv/bin/python -m recon.broker fetch)"
log "ready: .venv/bin/pytest -q   (integration tests start their own Kafka and PostgreSQL)"
