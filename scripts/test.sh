#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests of the whole workspace, then the
# browser tests (headless Chromium driven by playwright-core), installing what they need.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test --workspace"
cargo test --workspace -- --test-threads 8 2>&1

if [ -d tests/browser ]; then
  echo "== browser tests"
  ./tests/browser/run.sh
fi
