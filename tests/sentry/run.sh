#!/usr/bin/env bash
# Unmodified Sentry SDKs against Monlight, end to end (CI calls it from scripts/test.sh):
#   release builds of error-tracker and browser-relay;
#   python/: the real sentry-sdk (PyPI, pinned in python/requirements.txt, a venv in
#     target/sentry-venv) in a script and a FastAPI app under uvicorn → the error-tracker's
#     Sentry endpoint, read back through its API (pytest);
#   browser/: the real @sentry/browser (npm, pinned in browser/package-lock.json) bundled and
#     minified with esbuild, in headless Debian Chromium (playwright-core) → the relay's Sentry
#     tunnel (source maps applied) → the error-tracker (node --test).
# Installs what is missing: python3-venv and chromium through apt (CI runs as root), the npm
# packages with `npm ci`. PYTHON= picks the interpreter, CHROMIUM_PATH the browser.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"
venv="$root/target/sentry-venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PYTHONDONTWRITEBYTECODE=1

step() { printf '\n== sentry: %s\n' "$*"; }

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "$@" < /dev/null
}

step "release build of error-tracker and browser-relay"
(cd "$root" && cargo build --release -p error-tracker -p browser-relay)
export MONLIGHT_ERROR_TRACKER_BIN="$root/target/release/error-tracker"
export ERROR_TRACKER_BIN="$root/target/release/error-tracker"
export BROWSER_RELAY_BIN="$root/target/release/browser-relay"

step "python venv ($venv) with python/requirements.txt"
if ! "$venv/bin/python" -c '' 2>/dev/null; then
    rm -rf "$venv"
    if ! "$python" -m venv "$venv" 2>/dev/null; then
        # Debian's python3 without ensurepip.
        apt_install python3-venv
        rm -rf "$venv"
        "$python" -m venv "$venv"
    fi
fi
"$venv/bin/python" -m pip install --quiet -r "$here/python/requirements.txt"

step "pytest python/ (sentry-sdk $("$venv/bin/python" -c 'import sentry_sdk; print(sentry_sdk.VERSION)'))"
(cd "$here/python" && "$venv/bin/python" -m pytest -p no:cacheprovider -q -rs .)

if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
    step "installing chromium (apt)"
    apt_install -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold chromium
fi

step "npm ci (browser/)"
(cd "$here/browser" && npm ci --no-audit --no-fund)

step "node --test browser/ (@sentry/browser $(cd "$here/browser" && node -p 'require("@sentry/browser/package.json").version'))"
(cd "$here/browser" && node --test --test-concurrency=1 ./*.test.mjs)
