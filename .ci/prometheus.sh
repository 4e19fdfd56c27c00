#!/usr/bin/env bash
# Install Debian's Prometheus: the monitoring tests run `promtool check rules` / `promtool test rules`
# on deploy/prometheus and start a real Prometheus on loopback that scrapes a real `cxr serve`.
# Idempotent and quiet: does nothing when both binaries are there, prints apt's output only on failure.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
{ have prometheus && have promtool; } && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends prometheus; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "prometheus.sh: installing prometheus failed" >&2
  exit 1
fi

# Where a service manager runs, the package starts a system Prometheus on :9090; the tests start their
# own on a free port and do not need it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  $SUDO systemctl stop prometheus >/dev/null 2>&1 || true
fi

for bin in prometheus promtool; do
  have "$bin" || { echo "prometheus.sh: $bin is still missing after installing prometheus" >&2; exit 1; }
done
