#!/usr/bin/env bash
# The Python client's whole check, self-contained (CI calls it from scripts/test.sh):
#   release build of error-tracker + metrics-collector, a venv with the package and its
#   pinned [fastapi,dev] extras, mypy --strict, pytest (unit + end-to-end), python -m build,
#   and the wheel installed into a fresh venv and imported.
# Venvs and build output live under target/ (gitignored). PYTHON= picks the interpreter.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"
venv="$root/target/py-client-venv"
wheel_venv="$root/target/py-client-wheel-venv"
dist="$root/target/py-client-dist"
export PIP_CONSTRAINT="$here/constraints.txt"
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PYTHONDONTWRITEBYTECODE=1

step() { printf '\n== python client: %s\n' "$*"; }

step "release build of the services"
(cd "$root" && cargo build --release -p error-tracker -p metrics-collector)

step "venv ($venv)"
make_venv() {
    rm -rf "$1"
    if ! "$python" -m venv "$1" 2>/dev/null; then
        # Debian's python3 without ensurepip: the same fallback as scripts/test.sh.
        apt-get update -q && apt-get install -y -q --no-install-recommends python3-venv < /dev/null
        rm -rf "$1"
        "$python" -m venv "$1"
    fi
}
if ! "$venv/bin/python" -c '' 2>/dev/null; then
    make_venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet -e "$here[fastapi,dev]"

step "mypy --strict"
(cd "$here" && "$venv/bin/python" -m mypy --strict --cache-dir "$root/target/py-client-mypy-cache" src/monlight)

step "pytest (unit + end-to-end)"
(cd "$here" && MONLIGHT_REQUIRE_E2E=1 \
    MONLIGHT_ERROR_TRACKER_BIN="$root/target/release/error-tracker" \
    MONLIGHT_METRICS_COLLECTOR_BIN="$root/target/release/metrics-collector" \
    "$venv/bin/python" -m pytest -p no:cacheprovider -q -rs tests)

step "python -m build (wheel + sdist)"
rm -rf "$dist"
"$venv/bin/python" -m build --outdir "$dist" "$here"
ls -l "$dist"

step "wheel in a fresh venv"
make_venv "$wheel_venv"
"$wheel_venv/bin/python" -m pip install --quiet "$dist"/monlight-*.whl
(cd "$root/target" && "$wheel_venv/bin/python" - <<'PY'
import monlight, pathlib
from monlight import ErrorClient, MetricsClient, MonlightHandler
assert "py-client-wheel-venv" in monlight.__file__, monlight.__file__
assert (pathlib.Path(monlight.__file__).parent / "py.typed").exists()
m = MetricsClient("http://127.0.0.1:9", "k")
m.counter("c")
print("wheel imports:", monlight.__version__, monlight.__file__)
PY
)
step "ok"
