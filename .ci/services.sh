#!/usr/bin/env bash
# Throwaway PostgreSQL and Redis servers for the service tests (tests/service/test_postgres.py,
# test_redis.py), each on a free loopback port, with their data in one temporary directory.
#
#   eval "$(bash .ci/services.sh)"   # installs what is missing (Debian's postgresql, redis-server),
#                                    # starts both, prints export lines for CXR_TEST_POSTGRES_URL,
#                                    # CXR_TEST_REDIS_URL and CXR_TEST_SERVICES_DIR
#   bash .ci/services.sh stop        # stops them and removes the directory (reads CXR_TEST_SERVICES_DIR)
#
# Only the export lines go to stdout; progress and errors go to stderr.
set -euo pipefail

log() { echo "services: $*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}

as_postgres() {
    # initdb and postgres refuse to run as root: run them as the postgres user the package created.
    if [ "$(id -u)" != 0 ]; then "$@"
    elif command -v runuser >/dev/null; then runuser -u postgres -- "$@"
    else su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

pg_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

quietly() {
    # Run a command with its output in $SETUP_LOG; show that log only if the command fails.
    "$@" >>"$SETUP_LOG" 2>&1 || { log "failed: $*"; cat "$SETUP_LOG" >&2; exit 1; }
}

install_missing() {
    local missing=()
    pg_bin >/dev/null || missing+=(postgresql)
    command -v redis-server >/dev/null || missing+=(redis-server)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]} with apt-get"
        quietly as_root apt-get update -qq
        quietly as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}"
    fi
}

start_postgres() {
    local dir=$1 bin port
    bin=$(pg_bin)
    port=$(free_port)
    mkdir -p "$dir/pg"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir/pg"
    quietly as_postgres "$bin/initdb" -D "$dir/pg" -U postgres --auth=trust --no-locale -E UTF8
    quietly as_postgres "$bin/pg_ctl" -D "$dir/pg" -l "$dir/pg/server.log" -w -t 60 \
        -o "-p $port -k $dir/pg -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" start
    echo "$bin" > "$dir/pg.bin"
    log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
    echo "export CXR_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
}

start_redis() {
    local dir=$1 port
    port=$(free_port)
    quietly redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --dir "$dir" --pidfile "$dir/redis.pid" \
        --logfile "$dir/redis.log" --save "" --appendonly no
    for _ in $(seq 50); do
        redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break
        sleep 0.1
    done
    redis-cli -p "$port" ping 2>/dev/null | grep -q PONG || { log "redis did not start"; cat "$dir/redis.log" >&2; exit 1; }
    log "Redis $(redis-server --version | awk '{print $3}') on 127.0.0.1:$port"
    echo "export CXR_TEST_REDIS_URL=redis://127.0.0.1:$port/0"
}

stop_all() {
    local dir=${CXR_TEST_SERVICES_DIR:-}
    if [ -z "$dir" ] || [ ! -d "$dir" ]; then log "nothing to stop (CXR_TEST_SERVICES_DIR unset)"; return 0; fi
    if [ -f "$dir/pg.bin" ]; then as_postgres "$(cat "$dir/pg.bin")/pg_ctl" -D "$dir/pg" -m fast -w stop >/dev/null || true; fi
    if [ -f "$dir/redis.pid" ]; then kill "$(cat "$dir/redis.pid")" 2>/dev/null || true; fi
    rm -rf "$dir"
    log "stopped and removed $dir"
}

main() {
    if [ "${1:-start}" = stop ]; then stop_all; return; fi
    local dir
    dir=$(mktemp -d /tmp/cxr-services.XXXXXX)
    chmod 755 "$dir"  # the postgres user must reach its data directory inside
    SETUP_LOG="$dir/setup.log"
    install_missing
    echo "export CXR_TEST_SERVICES_DIR=$dir"
    start_postgres "$dir"
    start_redis "$dir"
}

main "$@"
