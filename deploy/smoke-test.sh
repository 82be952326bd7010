#!/bin/sh
# End-to-end check of a running Monlight stack, with curl and POSIX tools only.
#
# Usage: deploy/smoke-test.sh [BASE_PORT]
#   BASE_PORT (default 5010): error-tracker on BASE_PORT, log-viewer on +1,
#   metrics-collector on +2, browser-relay on +3.
#
# Environment (defaults match scripts/run.sh, which saves its dev key in data/dev-api-key and
# makes it every service's API key and the relay's admin key):
#   SMOKE_HOST                 host to reach (default 127.0.0.1)
#   API_KEY                    default for the four keys below (default: contents of data/dev-api-key)
#   ERROR_TRACKER_API_KEY      X-API-Key of the error tracker
#   LOG_VIEWER_API_KEY         X-API-Key of the log viewer
#   METRICS_COLLECTOR_API_KEY  X-API-Key of the metrics collector
#   RELAY_ADMIN_API_KEY        the relay's ADMIN_API_KEY
#   SMOKE_ORIGIN               an origin in the relay's CORS_ORIGINS (default http://localhost:8080)
#   SMOKE_WAIT                 seconds to wait for forwarded data to show up (default 15)
#
# Prints PASS/FAIL per check and "N passed, M failed" last; exits 1 if any check failed.
# Each run uses its own project name, so it can run again and again against one stack.
set -u

BASE_PORT=${1:-5010}
case $BASE_PORT in
  '' | *[!0-9]*) echo "usage: $0 [BASE_PORT]" >&2; exit 2 ;;
esac
HOST=${SMOKE_HOST:-127.0.0.1}
if [ -z "${API_KEY:-}" ] && [ -r data/dev-api-key ]; then
  API_KEY=$(cat data/dev-api-key)
fi
API_KEY=${API_KEY:-}
ET_KEY=${ERROR_TRACKER_API_KEY:-$API_KEY}
LV_KEY=${LOG_VIEWER_API_KEY:-$API_KEY}
MC_KEY=${METRICS_COLLECTOR_API_KEY:-$API_KEY}
ADMIN_KEY=${RELAY_ADMIN_API_KEY:-$API_KEY}
ORIGIN=${SMOKE_ORIGIN:-http://localhost:8080}
WAIT=${SMOKE_WAIT:-15}

ET="http://$HOST:$BASE_PORT"
LV="http://$HOST:$((BASE_PORT + 1))"
MC="http://$HOST:$((BASE_PORT + 2))"
BR="http://$HOST:$((BASE_PORT + 3))"

RUN="smoke$$x$(date +%s)"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/monlight-smoke.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0

pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1${2:+ — $2}"; }

# req METHOD URL [curl args...]: the body in $TMP/body, the status in $STATUS.
req() {
  method=$1 url=$2
  shift 2
  STATUS=$(curl -sS -m 10 -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' -X "$method" "$@" "$url" 2>"$TMP/err") || STATUS=000
  BODY=$(cat "$TMP/body" 2>/dev/null)
}

# check NAME EXPECTED_STATUS [FIXED_STRING...]: the last request answered that status and its
# body holds every string.
check() {
  name=$1 want=$2
  shift 2
  if [ "$STATUS" != "$want" ]; then
    fail "$name" "status $STATUS, wanted $want: $(printf '%s' "$BODY" | head -c 300)$(cat "$TMP/err")"
    return 1
  fi
  for s in "$@"; do
    if ! grep -qF -- "$s" "$TMP/body"; then
      fail "$name" "no $s in: $(printf '%s' "$BODY" | head -c 300)"
      return 1
    fi
  done
  pass "$name"
}

# The value of the first "field": number or "string" in the last body.
field() {
  sed -n "s/.*\"$1\": *\"\{0,1\}\([^\",}]*\).*/\1/p" "$TMP/body" | head -n 1
}

# eventually NAME SECONDS COMMAND...: retries COMMAND (quietly) until it succeeds.
eventually() {
  name=$1 secs=$2
  shift 2
  end=$(($(date +%s) + secs))
  while :; do
    if "$@"; then pass "$name"; return 0; fi
    if [ "$(date +%s)" -ge "$end" ]; then
      fail "$name" "not within ${secs} s; last status $STATUS: $(printf '%s' "$BODY" | head -c 300)"
      return 1
    fi
    sleep 0.5
  done
}

echo "smoke test of $HOST:$BASE_PORT-$((BASE_PORT + 3)) (run $RUN)"

# --- health of all four
for svc in "error-tracker $ET" "log-viewer $LV" "metrics-collector $MC" "browser-relay $BR"; do
  name=${svc% *} url=${svc#* }
  req GET "$url/health"
  check "$name: /health 200" 200 '"status":"ok"'
done

# --- error tracker: create → duplicate → resolve → reopen
err_body="{\"project\":\"$RUN\",\"exception_type\":\"SmokeError\",\"message\":\"smoke test $RUN\",\"traceback\":\"Traceback (most recent call last):\\n  File \\\"/app/smoke.py\\\", line 1, in <module>\\nSmokeError: smoke test\",\"environment\":\"smoke\"}"
req POST "$ET/api/errors" -H "X-API-Key: $ET_KEY" -H 'content-type: application/json' -d "$err_body"
check "error-tracker: report creates a group (201)" 201 '"status":"created"' '"count":1'
ERR_ID=$(field id)
req POST "$ET/api/errors" -H "X-API-Key: $ET_KEY" -H 'content-type: application/json' -d "$err_body"
check "error-tracker: same report again increments it (200)" 200 '"count":2' "\"id\":$ERR_ID"
req GET "$ET/api/errors"
check "error-tracker: no key is refused (401)" 401
req POST "$ET/api/errors/$ERR_ID/resolve" -H "X-API-Key: $ET_KEY"
check "error-tracker: resolve" 200 '"status":"resolved"'
req GET "$ET/api/errors?project=$RUN&resolved=true" -H "X-API-Key: $ET_KEY"
check "error-tracker: listed as resolved" 200 "\"id\":$ERR_ID"
req POST "$ET/api/errors" -H "X-API-Key: $ET_KEY" -H 'content-type: application/json' -d "$err_body"
check "error-tracker: the error again reopens it (201)" 201 '"status":"reopened"' "\"id\":$ERR_ID" '"count":3'
req GET "$ET/api/errors?project=$RUN" -H "X-API-Key: $ET_KEY"
check "error-tracker: listed as unresolved again" 200 "\"id\":$ERR_ID"

# --- log viewer: health (above) and a query
req GET "$LV/api/logs?limit=5" -H "X-API-Key: $LV_KEY"
check "log-viewer: query /api/logs" 200 '"logs"'
req GET "$LV/api/containers" -H "X-API-Key: $LV_KEY"
check "log-viewer: /api/containers" 200 '"containers"'
req GET "$LV/api/logs?limit=5"
check "log-viewer: no key is refused (401)" 401

# --- metrics collector: ingest and query
req POST "$MC/api/metrics" -H "X-API-Key: $MC_KEY" -H 'content-type: application/json' \
  -d "[{\"name\":\"smoke_requests_total\",\"type\":\"counter\",\"value\":3,\"project\":\"$RUN\",\"labels\":{\"run\":\"$RUN\"}}]"
check "metrics-collector: ingest a batch (202)" 202 '"count":1'
req GET "$MC/api/metrics?name=smoke_requests_total&labels=run:$RUN&period=1h" -H "X-API-Key: $MC_KEY"
check "metrics-collector: query it back" 200 "$RUN"
req GET "$MC/api/metrics/names" -H "X-API-Key: $MC_KEY"
check "metrics-collector: listed in /api/metrics/names" 200 smoke_requests_total

# --- browser relay: a DSN key, CORS, forwarding, source maps
req POST "$BR/api/dsn-keys" -H "X-API-Key: $ADMIN_KEY" -H 'content-type: application/json' -d "{\"project\":\"$RUN\"}"
check "browser-relay: create a DSN key (admin key)" 201 "\"project\":\"$RUN\""
DSN=$(field public_key)
req POST "$BR/api/dsn-keys" -H 'X-API-Key: wrong' -d "{\"project\":\"$RUN\"}"
check "browser-relay: a wrong admin key is refused (401)" 401

req OPTIONS "$BR/api/browser/errors" -H "Origin: $ORIGIN" -H 'Access-Control-Request-Method: POST' \
  -H 'Access-Control-Request-Headers: X-Monlight-Key, Content-Type'
if check "browser-relay: CORS preflight from $ORIGIN (204)" 204; then
  if grep -qi "^access-control-allow-origin: $ORIGIN" "$TMP/headers"; then
    pass "browser-relay: preflight allows the origin"
  else
    fail "browser-relay: preflight allows the origin" "$(tr -d '\r' < "$TMP/headers")"
  fi
fi
req OPTIONS "$BR/api/browser/errors" -H 'Origin: https://evil.example' -H 'Access-Control-Request-Method: POST'
check "browser-relay: preflight from another origin refused (403)" 403

# A source map for release 1.0.0 of https://cdn.example.com/smoke.min.js: generated line 1
# column 0 is src/smoke-original.js line 1.
MAP='{\"version\":3,\"sources\":[\"src/smoke-original.js\"],\"names\":[],\"mappings\":\"AAAA\"}'
req POST "$BR/api/source-maps" -H "X-API-Key: $ADMIN_KEY" -H 'content-type: application/json' \
  -d "{\"project\":\"$RUN\",\"release\":\"1.0.0\",\"file_url\":\"https://cdn.example.com/smoke.min.js\",\"map_content\":\"$MAP\"}"
check "browser-relay: source map upload" 201
req GET "$BR/api/source-maps?project=$RUN" -H "X-API-Key: $ADMIN_KEY"
check "browser-relay: source map listed" 200 "smoke.min.js"

req POST "$BR/api/browser/errors" -H "X-Monlight-Key: $DSN" -H "Origin: $ORIGIN" -H 'content-type: application/json' \
  -d "{\"type\":\"TypeError\",\"message\":\"browser smoke $RUN\",\"stack\":\"TypeError: browser smoke\\n    at f (https://cdn.example.com/smoke.min.js:1:1)\",\"release\":\"1.0.0\",\"url\":\"https://shop.example.com/cart\"}"
check "browser-relay: browser error accepted (202)" 202 '"status":"accepted"'
if grep -qi "^access-control-allow-origin: $ORIGIN" "$TMP/headers"; then
  pass "browser-relay: answer carries CORS headers"
else
  fail "browser-relay: answer carries CORS headers" "$(tr -d '\r' < "$TMP/headers")"
fi
req POST "$BR/api/browser/metrics?key=$DSN" -H 'content-type: text/plain' \
  -d "{\"metrics\":[{\"name\":\"smoke_web_vitals_lcp\",\"type\":\"histogram\",\"value\":1250.5}],\"session_id\":\"s1\",\"url\":\"https://shop.example.com/cart\"}"
check "browser-relay: browser metric accepted (202)" 202 '"count":1'
req POST "$BR/api/browser/errors" -H 'X-Monlight-Key: 0000000000000000nokey' -d '{"type":"E","message":"m"}'
check "browser-relay: unknown DSN key refused (401)" 401

tracker_has_browser_error() {
  req GET "$ET/api/errors?project=$RUN&source=browser" -H "X-API-Key: $ET_KEY"
  [ "$STATUS" = 200 ] && grep -qF "browser smoke $RUN" "$TMP/body"
}
if eventually "relay → error-tracker: browser error visible" "$WAIT" tracker_has_browser_error; then
  BID=$(field id)
  req GET "$ET/api/errors/$BID" -H "X-API-Key: $ET_KEY"
  check "relay → error-tracker: stack rewritten by the source map" 200 "src/smoke-original.js"
fi
collector_has_browser_metric() {
  req GET "$MC/api/metrics?name=smoke_web_vitals_lcp&period=1h&project=$RUN" -H "X-API-Key: $MC_KEY"
  [ "$STATUS" = 200 ] && grep -qF "1250.5" "$TMP/body"
}
eventually "relay → metrics-collector: browser metric visible" "$WAIT" collector_has_browser_metric

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
