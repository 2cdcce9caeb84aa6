#!/usr/bin/env bash
# Dependency audit: every package pinned in .venv (the project's runtime and dev dependencies)
# checked by pip-audit against the PyPI advisory service. Code audit (bandit's rules, through ruff's
# "S" set) runs in scripts/test.sh; this needs a vulnerability database, which scripts/test.sh cannot
# count on (see docs/security.md, "Dependency and code audit").
#
#   scripts/audit.sh            exit 0: no known vulnerability; 1: some found, or a package could
#                               not be checked (--strict: an unreachable database is a failure, never a pass)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh >/dev/null

tools="${XDG_CACHE_HOME:-$HOME/.cache}/rentan-recon/audit-venv"
if [[ ! -x "$tools/bin/pip-audit" ]]; then
    python3.11 -m venv "$tools"
    "$tools/bin/pip" install -q "pip-audit==2.10.1"   # its own venv: its dependencies never mix with ours
fi
frozen="$(mktemp)"
trap 'rm -f "$frozen"' EXIT
.venv/bin/python -m pip freeze --exclude-editable >"$frozen"
exec "$tools/bin/pip-audit" --requirement "$frozen" --no-deps --disable-pip --strict \
    --vulnerability-service pypi --progress-spinner off
