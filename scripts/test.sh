#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what it needs (idempotent), checks the code,
# the schemas' compatibility, then runs unit and integration tests on a real Kafka broker and real
# SQLite and PostgreSQL databases started by the project's own scripts.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== static checks"
ruff check services tests bench
mypy
lint-imports
recon schemas check

echo "== tests"
pytest -q -p no:cacheprovider "$@"
