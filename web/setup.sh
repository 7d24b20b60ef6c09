#!/usr/bin/env bash
# Installs what the page and its browser tests need, only what is missing:
#   - the npm packages pinned in web/package-lock.json (LiteRT.js and playwright-core), `npm ci`;
#   - Debian's Chromium (apt-get) when /usr/bin/chromium is missing (not with `npm`).
# playwright-core only drives that Chromium; no browser is ever downloaded from elsewhere.
#
#   bash web/setup.sh        # packages and Chromium (make web-test, make test)
#   bash web/setup.sh npm    # packages only (make web)
set -euo pipefail

WEB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
STAMP="$WEB/node_modules/.package-lock.json" # npm ci writes it last

command -v npm >/dev/null || { echo "web/setup.sh: node and npm (Node 20+) are required" >&2; exit 1; }

if [[ ! -f "$STAMP" || "$WEB/package-lock.json" -nt "$STAMP" || "$WEB/package.json" -nt "$STAMP" ]]; then
    echo "web/setup.sh: npm ci in $WEB"
    (cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error </dev/null)
fi

if [[ "${1:-}" != npm && ! -x "$CHROMIUM" ]]; then
    echo "web/setup.sh: installing chromium (apt-get)"
    SUDO=""
    [[ "$(id -u)" == 0 ]] || SUDO="sudo"
    $SUDO apt-get update -qq </dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium </dev/null >/dev/null
fi
