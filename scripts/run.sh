#!/usr/bin/env bash
# Starts the Monlight stack locally with working defaults:
#   release build, every service on its default port (error-tracker 5010, log-viewer 5011,
#   metrics-collector 5012, browser-relay 5013 wired to the first and third, with a DSN key
#   for a `demo` project printed and saved in ./data/dev-dsn-key),
#   data under ./data/, a generated dev API key printed and saved in ./data/dev-api-key.
# Each service's log lines are prefixed with its name; the key banner comes last, once every
# service answered /health. Ctrl-C stops everything cleanly (each service gets SIGTERM and
# exits 0).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --workspace --bins

mkdir -p data
if [ ! -s data/dev-api-key ]; then
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > data/dev-api-key
fi
API_KEY=$(cat data/dev-api-key)
export API_KEY
if [ ! -s data/dev-dsn-key ]; then
  head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > data/dev-dsn-key
fi
DSN_KEY=$(cat data/dev-dsn-key)
export BIND="${BIND:-127.0.0.1}"
export LOG_LEVEL="${LOG_LEVEL:-info}"
# Where each web UI lives, for the header every UI shows (see README, UI_LINKS).
export UI_LINKS="${UI_LINKS:-errors=http://localhost:5010,logs=http://localhost:5011,metrics=http://localhost:5012}"

pids=()
stop() {
  trap - INT TERM
  echo "stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait
  exit 0
}
trap stop INT TERM

ports=()
# A service's output, each line prefixed with its name; a container's log path (two 64-hex
# ids) shortened to its short id.
label() {
  sed -u -E -e 's#\(([^()]*/)?([0-9a-f]{12})[0-9a-f]{52}/[0-9a-f]{64}-json\.log\)#(\2)#' -e "s/^/$(printf '%-13s' "$1") | /"
}

start() { # name port [VAR=value...]
  local name=$1 port=$2
  shift 2
  env PORT="$port" "$@" "./target/release/$name" > >(label "$name") 2>&1 &
  pids+=($!)
  ports+=("$port")
  echo "$name on http://localhost:$port (pid $!)"
}

# Waits (up to 30 s) until every started service answers /health with a 200.
wait_healthy() {
  local deadline=$((SECONDS + 30)) port
  for port in "${ports[@]}"; do
    until curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "the service on port $port did not answer /health within 30 s" >&2
        return 1
      fi
      sleep 0.2
    done
  done
}

# The dev DSN key is also a Sentry key of project demo (a Sentry SDK's DSN, printed below).
start error-tracker 5010 DATABASE_PATH=data/errors.db SENTRY_KEYS="demo:$DSN_KEY"
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

start metrics-collector 5012 DATABASE_PATH=data/metrics.db
# The relay: the dev key is its admin key too; pages on localhost may post to it.
start browser-relay 5013 DATABASE_PATH=data/browser-relay.db ADMIN_API_KEY="$API_KEY" \
  ERROR_TRACKER_URL=http://127.0.0.1:5010 ERROR_TRACKER_API_KEY="$API_KEY" \
  METRICS_COLLECTOR_URL=http://127.0.0.1:5012 METRICS_COLLECTOR_API_KEY="$API_KEY" \
  DSN_KEYS="demo:$DSN_KEY" "CORS_ORIGINS=${CORS_ORIGINS:-http://localhost:8080,http://localhost:3000,http://localhost:5173}"

if wait_healthy; then
  echo
  echo "API key: $API_KEY   (saved in data/dev-api-key)"
  echo "DSN key: $DSN_KEY   (project demo, for browsers: http://localhost:5013; saved in data/dev-dsn-key)"
  echo "Sentry:  sentry_sdk.init(dsn=\"http://$DSN_KEY@localhost:5010/1\")   (any Sentry SDK, project demo)"
  echo "UIs:     http://localhost:5010 (errors), http://localhost:5011 (logs), http://localhost:5012 (metrics)"
  echo "try:     curl -H \"X-API-Key: $API_KEY\" localhost:5010/api/errors"
  echo "Ctrl-C stops everything."
  echo
fi
wait
