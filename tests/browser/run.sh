#!/usr/bin/env bash
# The browser tests: headless Debian Chromium driven by playwright-core (pinned in
# package-lock.json) against freshly built services (error-tracker, log-viewer,
# metrics-collector, browser-relay; the relay's test bundles its fixture app with esbuild, also
# pinned there). Installs what is missing:
# Chromium through apt (CI runs as root), the npm packages with `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold chromium < /dev/null
fi

echo "== npm ci (tests/browser)"
(cd tests/browser && npm ci --no-audit --no-fund)

echo "== cargo build -p error-tracker -p log-viewer -p metrics-collector -p browser-relay"
cargo build -p error-tracker -p log-viewer -p metrics-collector -p browser-relay

echo "== node --test tests/browser/*.test.mjs"
node --test tests/browser/*.test.mjs
