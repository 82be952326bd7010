#!/usr/bin/env bash
# Checks deploy/nginx/monlight.conf for real: both services (debug builds) on free ports, the
# example config pointed at them, and every kind of path through one origin — both pages,
# both APIs with one key, the assets, both health checks, a deep link. Installs nginx
# (Debian package) when it is missing. Part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  echo "== installing nginx (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends nginx-light < /dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

cargo build -q -p error-tracker -p log-viewer
work=$(mktemp -d)
pids=()
cleanup() {
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
errors_port=$(free_port); logs_port=$(free_port); metrics_port=$(free_port); proxy_port=$(free_port)
mkdir -p "$work/containers"
python3 scripts/demo-logs.py "$work/containers" >/dev/null
common=(API_KEY=k BIND=127.0.0.1 RATE_LIMIT=0 "UI_LINKS=errors=/,logs=/logs,metrics=/metrics/")
env "${common[@]}" PORT="$errors_port" DATABASE_PATH="$work/errors.db" \
  target/debug/error-tracker 2>"$work/errors.log" & pids+=($!)
env "${common[@]}" PORT="$logs_port" DATABASE_PATH="$work/logs.db" LOG_SOURCES="$work/containers" \
  target/debug/log-viewer 2>"$work/logs.log" & pids+=($!)
env "${common[@]}" PORT="$metrics_port" DATABASE_PATH="$work/metrics.db" \
  target/debug/metrics-collector 2>"$work/metrics.log" & pids+=($!)

sed -e "s/127.0.0.1:5010/127.0.0.1:$errors_port/; s/127.0.0.1:5011/127.0.0.1:$logs_port/" \
    -e "s/127.0.0.1:5012/127.0.0.1:$metrics_port/" \
    -e "s/listen 8080;/listen 127.0.0.1:$proxy_port;/" deploy/nginx/monlight.conf > "$work/monlight.conf"
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    include $work/monlight.conf;
}
CONF
"$NGINX" -t -q -c "$work/nginx.conf"
"$NGINX" -c "$work/nginx.conf"

base="http://127.0.0.1:$proxy_port"
for _ in $(seq 100); do
  curl -sf "$base/health/errors" >/dev/null && curl -sf "$base/health/logs" >/dev/null &&
    curl -sf "$base/health/metrics" >/dev/null && break
  sleep 0.1
done
passed=0; failed=0
check() { # check PATH EXPECTED-STATUS TEXT-IN-BODY
  local body status
  body=$(curl -s -H "X-API-Key: k" -w '\n%{http_code}' "$base$1")
  status=${body##*$'\n'}; body=${body%$'\n'*}
  if [ "$status" = "$2" ] && grep -qF -- "$3" <<<"$body"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); echo "FAIL $1: $status, expected $2 with '$3'"
  fi
}
check /health/errors 200 '"status":"ok"'
check /health/logs 200 '"logs_indexed"'
check / 200 'data-ui="errors"'
check /errors/1 200 'data-ui="errors"'
check /logs 200 'data-ui="logs"'
check /logs/ 200 'data-ui="logs"'
check "/logs/?since=2026-01-01T00:00:00Z&container=shop_web_1" 200 'data-ui-links="errors=/,logs=/logs,metrics=/metrics"'
check "/api/errors?limit=1" 200 '"errors":['
check "/api/logs?limit=1" 200 '"logs":['
check /api/containers 200 '"containers":['
check /api/stats 200 '{'
check /static/errors.js 200 'function'
check /static/logs.js 200 'function'
check /static/monlight.css 200 '{'
check /health/metrics 200 '"metrics_received_24h"'
check /metrics/ 200 'data-ui="metrics"'
check /metrics/health 200 '"metrics_received_24h"'
check "/api/metrics?name=x" 200 '"series":[]'
check /api/metrics/names 200 '"metrics":['
check /api/metrics/projects 200 '"projects":['
check /api/dashboard 200 '"top_metrics":['
check /static/metrics.js 200 'function'
check /static/charts.js 200 'function'
check /metrics 200 'monlight_collector_up 1'
echo "nginx one-origin check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
