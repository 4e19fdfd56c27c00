#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (tests/web), quietly and only when it is missing.
# Playwright for Python drives it through executable_path=/usr/bin/chromium: no Playwright browser
# download (it cannot work offline, and Debian's build is the one CI can rely on). Idempotent.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "browser.sh: $CHROMIUM is missing and this user cannot install packages;" \
             "the browser tests will be skipped" >&2
        exit 0
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "browser.sh: no apt-get here; install Chromium at $CHROMIUM (or set CXR_CHROMIUM) to run the browser tests" >&2
    exit 0
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
# fonts-dejavu-core: the page uses system fonts only; a headless container may have none.
if ! { $SUDO apt-get update -qq && \
       $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "browser.sh: installing chromium failed" >&2
    exit 1
fi
echo "browser.sh: $("$CHROMIUM" --version 2>/dev/null)"
