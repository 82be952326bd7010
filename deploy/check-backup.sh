#!/usr/bin/env bash
# Proves deploy/backup.sh and deploy/restore.sh (run by scripts/check-deploy.sh): an
# error-tracker on a free port with a temporary database takes writes from two concurrent
# writers; a backup is taken in the middle of the load; the backup is restored into a fresh
# data dir; the restored database must pass `PRAGMA integrity_check`, hold every report
# acknowledged (201) before the backup started, and serve them again through the service.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=./target/release/error-tracker
tmp=$(mktemp -d /tmp/monlight-check-backup.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
key=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=$((20000 + RANDOM % 20000))
while listening "$port"; do port=$((20000 + RANDOM % 20000)); done

serve() { # data_dir -> pid in $server
  env API_KEY="$key" BIND=127.0.0.1 PORT="$port" LOG_LEVEL=warn DATABASE_PATH="$1/errors.db" "$bin" >>"$tmp/server.log" 2>&1 &
  server=$!
  pids+=("$server")
  for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null && return 0; sleep 0.1; done
  echo "error-tracker did not start" >&2; cat "$tmp/server.log" >&2; return 1
}
stop_server() {
  kill -TERM "$server"; wait "$server"
}

mkdir -p "$tmp/data" "$tmp/restored"
serve "$tmp/data"

# writer W: distinct reports "load W-n" in project load; each acknowledged one is appended to
# $tmp/acked-W after its 201.
writer() {
  local w=$1 n=0
  while [ ! -e "$tmp/stop" ]; do
    n=$((n + 1))
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/api/errors" \
      -H "X-API-Key: $key" -H 'content-type: application/json' \
      -d "{\"project\":\"load\",\"exception_type\":\"LoadError$w-$n\",\"message\":\"load $w-$n\",\"traceback\":\"LoadError: load\"}")
    [ "$code" = 201 ] && echo "load $w-$n" >> "$tmp/acked-$w"
  done
}
writer 1 & wpids=($!)
writer 2 & wpids+=($!)
sleep 1.5
cat "$tmp"/acked-* | sort > "$tmp/acked-before"   # every one of these was committed before the backup
DATA_DIR="$tmp/data" BACKUP_DIR="$tmp/backups" bash deploy/backup.sh error-tracker
sleep 0.5
touch "$tmp/stop"
wait "${wpids[@]}"
stop_server
total_acked=$(cat "$tmp"/acked-* | wc -l)

run=$(find "$tmp/backups" -mindepth 1 -maxdepth 1 -type d | head -n 1)
DATA_DIR="$tmp/restored" bash deploy/restore.sh "$run" error-tracker
check=$(sqlite3 "$tmp/restored/errors.db" 'PRAGMA integrity_check')
[ "$check" = ok ] || { echo "FAIL restored database integrity_check: $check"; exit 1; }
echo "PASS restored database passes integrity_check"
sqlite3 "$tmp/restored/errors.db" "SELECT message FROM errors WHERE project = 'load'" | sort > "$tmp/restored-rows"
missing=$(comm -23 "$tmp/acked-before" "$tmp/restored-rows" | wc -l)
acked_before=$(wc -l < "$tmp/acked-before")
in_backup=$(wc -l < "$tmp/restored-rows")
if [ "$acked_before" -lt 50 ] || [ "$missing" -ne 0 ]; then
  echo "FAIL backup under load: $acked_before acknowledged before the backup, $missing of them missing"
  exit 1
fi
echo "PASS backup under load holds all $acked_before reports acknowledged before it ($in_backup in the backup, $total_acked acknowledged in all)"

# The service opens the restored database and serves what it holds.
serve "$tmp/restored"
listed=$(curl -fsS "http://127.0.0.1:$port/api/errors?project=load&limit=1" -H "X-API-Key: $key" | sed -n 's/.*"total":\([0-9]*\).*/\1/p')
stop_server
if [ "$listed" != "$in_backup" ]; then
  echo "FAIL error-tracker on the restored database lists $listed groups, wanted $in_backup"; exit 1
fi
echo "PASS error-tracker serves the restored database ($listed groups)"

# Retention: 7 runs kept.
for _ in $(seq 9); do DATA_DIR="$tmp/restored" BACKUP_DIR="$tmp/keep" bash deploy/backup.sh error-tracker >/dev/null; done
kept=$(find "$tmp/keep" -mindepth 1 -maxdepth 1 -type d | wc -l)
[ "$kept" -eq 7 ] || { echo "FAIL backup retention: $kept runs kept, wanted 7"; exit 1; }
echo "PASS backup keeps the newest 7 runs"
