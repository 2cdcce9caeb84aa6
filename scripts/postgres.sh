#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and demos, in a folder of its own.
#
#   scripts/postgres.sh install            install Debian's postgresql when initdb/pg_ctl are missing
#   scripts/postgres.sh start [DIR]        initdb (first time), start, create role + database "recon"; prints the URL
#   scripts/postgres.sh stop  [DIR]        fast shutdown; a no-op when not running
#   scripts/postgres.sh url   [DIR]        postgresql+psycopg://recon@127.0.0.1:PORT/recon
#   scripts/postgres.sh status [DIR]       exit 0 when running
#
# DIR defaults to .recon/pg (relative to the current folder); the port is RECON_PG_PORT (default 55432).
# Layout: DIR/data (the cluster), DIR/.s.PGSQL.PORT (the unix socket), DIR/postgres.log.
# Authentication is `trust`, for connections over the unix socket in DIR and over 127.0.0.1 only (the
# server listens on nothing else): anyone who can reach the machine's loopback can connect, which is
# what a local test/demo database wants, and why this is no way to run a shared or production server.
# The one exception: role `recon_secret` (which tests create) must log in over TCP with its password.
# Role `recon` (LOGIN CREATEDB) owns database `recon`; tests create and drop their own databases with it.
# PostgreSQL refuses to run as root: as root the cluster belongs to, and runs as, the `postgres` user.
# Every command is idempotent.
set -euo pipefail

PORT="${RECON_PG_PORT:-55432}"
ROLE=recon
DB=recon

log() { echo "postgres.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# The folder holding initdb, pg_ctl and psql together (symlinks on PATH resolved to where they live).
find_bindir() {
    local dir
    # Debian keeps the server binaries off PATH, one folder per major version: the newest wins.
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV) \
        "$(dirname "$(readlink -f "$(command -v pg_ctl || echo /nonexistent)")")"; do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/psql" ]]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

apt_install() {
    [[ "$(id -u)" == 0 ]] || die "need root to install $*: run 'sudo apt-get install -y $*'"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "$@" >&2 || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "$@" >&2; }
}

ensure_installed() {
    if [[ -z "$(find_bindir)" ]]; then
        log "PostgreSQL server binaries not found: installing Debian's postgresql"
        apt_install postgresql
        [[ -n "$(find_bindir)" ]] || die "installed postgresql but found no initdb/pg_ctl under /usr/lib/postgresql/*/bin"
    fi
    if [[ "$(id -u)" == 0 ]] && ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
}

# Run a command as the cluster's owner: `postgres` when we are root (from /, as our folder may be
# closed to it; every path here is absolute), else ourselves.
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

is_running() { [[ -n "$BIN" && -f "$DATA/PG_VERSION" ]] && as_owner "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1; }

# The port of the running server (postmaster.pid line 4), else the configured one.
current_port() {
    if is_running && [[ -r "$DATA/postmaster.pid" ]]; then sed -n 4p "$DATA/postmaster.pid"; else echo "$PORT"; fi
}

psql_admin() {
    as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$(current_port)" -U postgres -d postgres "$@"
}

init_cluster() {
    [[ -f "$DATA/PG_VERSION" ]] && return 0
    mkdir -p "$DIR"
    if [[ "$(id -u)" == 0 ]]; then chown postgres: "$DIR"; fi
    as_owner test -w "$DIR" \
        || die "$DIR is not writable by $(as_owner id -un) (a parent folder without o+x?): pass a DIR under /tmp"
    log "creating a cluster in $DATA"
    as_owner "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=trust >"$DIR/initdb.log" 2>&1 \
        || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
    # Loopback only, socket in DIR. (The port is given at each start, so one cluster can move.)
    as_owner tee -a "$DATA/postgresql.conf" >/dev/null <<EOF

# --- scripts/postgres.sh ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
EOF
    # Role recon_secret (made by tests that need it) must give its password over TCP: the first
    # matching line wins, so it comes before trust; with it a test proves a password reaches the server.
    as_owner tee "$DATA/pg_hba.conf" >/dev/null <<'EOF'
# scripts/postgres.sh: trust on the unix socket and 127.0.0.1 only, but recon_secret needs its password
host    all   recon_secret   127.0.0.1/32   scram-sha-256
local   all   all                           trust
host    all   all            127.0.0.1/32   trust
EOF
}

start() {
    ensure_installed
    init_cluster
    if ! is_running; then
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
            die "127.0.0.1:$PORT is already in use by another process: set RECON_PG_PORT to a free port"
        fi
        log "starting on 127.0.0.1:$PORT (log: $DIR/postgres.log)"
        as_owner "$BIN/pg_ctl" start -D "$DATA" -l "$DIR/postgres.log" -w -t 60 -o "-p $PORT" >/dev/null \
            || { tail -n 20 "$DIR/postgres.log" >&2 || true; die "PostgreSQL did not start: see $DIR/postgres.log"; }
    fi
    local found
    found="$(psql_admin -tAc "select 1 from pg_roles where rolname = '$ROLE'")"
    [[ "$found" == 1 ]] || psql_admin -c "create role $ROLE login createdb"
    # Tests drop their databases WITH (FORCE), which must also end autovacuum workers (run as the
    # superuser) still busy on them: without this role the drop fails now and then.
    psql_admin -c "set client_min_messages = warning; grant pg_signal_backend to $ROLE" >/dev/null
    found="$(psql_admin -tAc "select 1 from pg_database where datname = '$DB'")"
    [[ "$found" == 1 ]] || psql_admin -c "create database $DB owner $ROLE"
    url
}

stop() {
    if is_running; then
        as_owner "$BIN/pg_ctl" stop -D "$DATA" -m fast -w -t 60 >/dev/null
        log "stopped"
    else
        log "not running ($DATA)"
    fi
}

url() { echo "postgresql+psycopg://$ROLE@127.0.0.1:$(current_port)/$DB"; }

command="${1:-}"
[[ "$command" =~ ^(install|start|stop|url|status)$ ]] || die "usage: $0 install|start|stop|url|status [DIR]"
DIR="$(realpath -m "${2:-.recon/pg}")"
DATA="$DIR/data"
BIN="$(find_bindir || true)"
case "$command" in
    install) ensure_installed ;;
    start) ensure_installed; BIN="$(find_bindir)"; start ;;
    stop) stop ;;
    url) url ;;
    status) if is_running; then url; else log "not running ($DATA)"; exit 1; fi ;;
esac
