#!/usr/bin/env bash
# Runs every test: formatting and lints, the Rust unit and integration tests of the whole
# workspace (with a Python venv for the parsers they call), the HTTP engine's fuzzers for a
# bounded time, the one-origin nginx example, then
# the browser tests (headless Chromium driven by playwright-core), the clients, and the real Sentry
# SDKs against the services (tests/sentry), installing what they need.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

# A Python venv with the packages the integration tests call (the Prometheus parser).
echo "== python venv for the tests (target/test-venv)"
if [ ! -x target/test-venv/bin/python ]; then
  mkdir -p target
  if ! python3 -m venv target/test-venv 2>/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q && apt-get install -y -q --no-install-recommends python3-venv < /dev/null
    python3 -m venv target/test-venv
  fi
fi
target/test-venv/bin/pip install -q -r scripts/test-requirements.txt
export MONLIGHT_PYTHON="$PWD/target/test-venv/bin/python"

echo "== cargo test --workspace"
cargo test --workspace -- --test-threads 8 2>&1

# The engine's fuzzers (request parser in memory, the live connection loop over loopback):
# 25 s each, a new seed every run (printed, MONLIGHT_FUZZ_SEED replays it).
echo "== fuzz the HTTP engine (2 x 25 s)"
MONLIGHT_FUZZ_SECONDS=25 cargo test -p shared --lib http::fuzz -- --nocapture 2>&1

# The Sentry envelope parser, decompression and event mapping on mutated real SDK envelopes.
echo "== fuzz the Sentry envelope parser and event mapping (2 x 20 s)"
MONLIGHT_FUZZ_SECONDS=20 cargo test -p error-tracker --lib sentry::fuzz -- --nocapture 2>&1

echo "== nginx: every UI and API behind one origin (deploy/nginx/monlight.conf)"
./scripts/check-nginx.sh

echo "== deployment: lint, smoke test, backup under load, images and compose under podman"
./scripts/check-deploy.sh

if [ -d tests/browser ]; then
  echo "== browser tests"
  ./tests/browser/run.sh
fi

echo "== Python client (clients/python: mypy --strict, pytest with end-to-end tests, wheel)"
./clients/python/test.sh

echo "== browser SDK (clients/browser: build, size budget, unit and end-to-end tests)"
./clients/browser/test.sh

echo "== Sentry SDKs (tests/sentry: sentry-sdk from PyPI, @sentry/browser in Chromium)"
./tests/sentry/run.sh
