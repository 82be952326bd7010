#!/usr/bin/env bash
# Starts the Monlight stack locally with working defaults:
#   release build, every service on its default port (error-tracker 5010, log-viewer 5011),
#   data under ./data/, a generated dev API key printed and saved in ./data/dev-api-key.
# Ctrl-C stops everything cleanly (each service gets SIGTERM and exits 0).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --workspace --bins

mkdir -p data
if [ ! -s data/dev-api-key ]; then
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > data/dev-api-key
fi
API_KEY=$(cat data/dev-api-key)
export API_KEY
export BIND="${BIND:-127.0.0.1}"
export LOG_LEVEL="${LOG_LEVEL:-info}"

pids=()
stop() {
  trap - INT TERM
  echo "stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait
  exit 0
}
trap stop INT TERM

start() { # name port [VAR=value...]
  local name=$1 port=$2
  shift 2
  env PORT="$port" "$@" "./target/release/$name" &
  pids+=($!)
  echo "$name on http://localhost:$port (pid $!)"
}

start error-tracker 5010 DATABASE_PATH=data/errors.db
if [ -x ./target/release/log-viewer ]; then
  sources=/var/lib/docker/containers
  tail_buffer=65536
  if [ ! -r "$sources" ] || [ -z "$(ls -A "$sources" 2>/dev/null)" ]; then
    sources=data/demo-containers
    tail_buffer=100000000 # show the whole demo history
    python3 ./scripts/demo-logs.py "$sources"
  fi
  start log-viewer 5011 DATABASE_PATH=data/logs.db LOG_SOURCES="$sources" TAIL_BUFFER="$tail_buffer"
fi

echo
echo "API key: $API_KEY   (saved in data/dev-api-key)"
echo "try:     curl -H \"X-API-Key: $API_KEY\" localhost:5010/api/errors"
echo "Ctrl-C stops everything."
wait
