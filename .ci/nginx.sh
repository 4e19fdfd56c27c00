#!/usr/bin/env bash
# Install Debian's nginx, the load balancer in front of the replicas in tests/cluster/test_replicas.py.
# Idempotent and quiet: does nothing when nginx is there, prints apt's output only when it fails.
# The tests start their own nginx (their own config, pid and logs on a free loopback port).
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have nginx && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq \
    && $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends nginx; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "nginx.sh: installing nginx failed" >&2
  exit 1
fi
# Where a service manager runs, the package starts a system nginx on port 80; the tests do not need it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
  $SUDO systemctl stop nginx >/dev/null 2>&1 || true
fi
have nginx || { echo "nginx.sh: nginx is still missing after installing it" >&2; exit 1; }
