#!/usr/bin/env bash
# The lock files: every dependency of pyproject.toml — the runtime ones, the dev extras, the build
# backend and everything they pull in — pinned to one version with the sha256 of every file PyPI has
# for it, for every platform (uv's universal resolution: Linux, macOS, the Docker image alike).
#   requirements-dev.lock   all of it: what scripts/bootstrap.sh installs (pip --require-hashes)
#   requirements.lock       the runtime alone, at the same versions: what the Dockerfile installs
#
#   scripts/lock.sh                       after changing a dependency in pyproject.toml; commit both files
#   scripts/lock.sh --upgrade             also move every unpinned (transitive) dependency to its newest
#   scripts/lock.sh --upgrade-package X   … only X
#   scripts/lock.sh --check               exit 1 with one line when the lock files are not those of
#                                         pyproject.toml's dependencies (bootstrap runs it; no network)
#
# Idempotent: every version already locked is kept unless pyproject.toml needs another, so a second run
# changes nothing. uv runs from a virtualenv of its own (pinned below), never mixed with the project's.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
DEV_LOCK=requirements-dev.lock
RUN_LOCK=requirements.lock
DIGEST_TAG="# pyproject-dependencies-sha256:"

# The sha256 of what pyproject.toml says about dependencies (requires-python, dependencies, every extra,
# build-system.requires), so that an edit anywhere else in the file does not call for a new lock.
inputs_digest() {
    python3.11 - <<'EOF'
import hashlib, json, tomllib
data = tomllib.load(open("pyproject.toml", "rb"))
project = data["project"]
inputs = {
    "requires-python": project.get("requires-python"),
    "dependencies": project.get("dependencies", []),
    "optional-dependencies": project.get("optional-dependencies", {}),
    "build-system": data.get("build-system", {}).get("requires", []),
}
print(hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest())
EOF
}

if [[ "${1:-}" == "--check" ]]; then
    want="$DIGEST_TAG $(inputs_digest)"
    for lock in "$DEV_LOCK" "$RUN_LOCK"; do
        if [[ "$(grep -m1 "^$DIGEST_TAG" "$lock" 2>/dev/null || true)" != "$want" ]]; then
            echo "$lock does not match pyproject.toml's dependencies: run scripts/lock.sh and commit both lock files" >&2
            exit 1
        fi
    done
    exit 0
fi

tools="${XDG_CACHE_HOME:-$HOME/.cache}/rentan-recon/lock-venv"
if [[ "$("$tools/bin/uv" --version 2>/dev/null || true)" != "uv $UV_VERSION"* ]]; then
    rm -rf "$tools"
    python3.11 -m venv "$tools"
    "$tools/bin/pip" install -q "uv==$UV_VERSION"
fi

# The build backend is a dependency too (bootstrap and the image build the project without isolation).
build_requires="$(python3.11 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))')"
digest="$(inputs_digest)"
compile() {  # compile OUT [uv options…]: stdin is the build backend's requirements
    local out="$1"
    shift
    "$tools/bin/uv" pip compile pyproject.toml - --quiet --universal --python-version 3.11 --generate-hashes \
        --custom-compile-command scripts/lock.sh --output-file "$out" "$@" <<<"$build_requires"
    {
        echo "# Every dependency pinned with its hashes. Do not edit: change pyproject.toml, then run scripts/lock.sh."
        echo "$DIGEST_TAG $digest"
        grep -v "^$DIGEST_TAG\|^# Every dependency pinned" "$out"
    } >"$out.tmp"
    mv "$out.tmp" "$out"
}
compile "$DEV_LOCK" --extra dev "$@"
compile "$RUN_LOCK" --constraint "$DEV_LOCK"   # the same versions as the dev lock, runtime only
echo "lock: $DEV_LOCK ($(grep -c '^[A-Za-z0-9].*==' "$DEV_LOCK") packages) and $RUN_LOCK ($(grep -c '^[A-Za-z0-9].*==' "$RUN_LOCK")) match pyproject.toml" >&2
