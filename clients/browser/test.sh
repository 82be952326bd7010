#!/usr/bin/env bash
# @monlight/browser: npm ci, build (ESM + IIFE), the IIFE's gzip budget (≤ 6 KB with web-vitals),
# unit tests (node --test), then the end-to-end tests in headless Debian Chromium against
# freshly built error-tracker, metrics-collector and browser-relay (debug builds).
# Run from anywhere; CHROMIUM_PATH overrides /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")"
SDK="$PWD"
ROOT="$(cd ../.. && pwd)"

echo "== npm ci (clients/browser)"
npm ci --no-audit --no-fund

echo "== build"
node build.mjs

echo "== size budget: IIFE ≤ 6144 B gzip (web-vitals included)"
node -e '
const s = require("./dist/sizes.json");
for (const [f, v] of Object.entries(s)) console.log(`${f}: ${v.raw} B raw, ${v.gzip} B gzip`);
const g = s["monlight.iife.js"].gzip;
if (g > 6144) { console.error(`monlight.iife.js is ${g} B gzip, over the 6144 B budget`); process.exit(1); }
'

echo "== unit tests"
node --test test/unit/

if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  echo "== installing chromium (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends chromium < /dev/null
fi

echo "== npm ci (tests/browser: playwright-core)"
(cd "$ROOT/tests/browser" && npm ci --no-audit --no-fund)

echo "== cargo build -p error-tracker -p metrics-collector -p browser-relay"
(cd "$ROOT" && cargo build -p error-tracker -p metrics-collector -p browser-relay)

echo "== end-to-end tests (headless Chromium)"
node --test --test-concurrency=1 test/e2e/
