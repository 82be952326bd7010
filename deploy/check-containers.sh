#!/usr/bin/env bash
# Builds and runs the images for real with podman (no Docker engine needed):
#   1. static glibc binaries on the host (RUSTFLAGS=+crt-static, packed relative relocations
#      (DT_RELR: a static PIE 0.15 MB smaller), x86_64-unknown-linux-gnu);
#   2. each deploy/docker/<service>.Dockerfile built with the binary from the host
#      (--build-context artifacts=<dir>, replacing the Rust build stage, whose base image CI
#      cannot pull) — the final stage is the one users build; prints each image's size;
#   3. each image alone: healthy via its own --healthcheck, runs as 10001, and `podman stop -t 5`
#      ends it within 1 s with exit code 0;
#   4. deploy/docker-compose.test.yml up through podman's Docker-compatible socket, the smoke
#      test on 15010, deploy/backup.sh from the live volumes (host sqlite3) and through each
#      container's own `backup -` (BACKUP_VIA=exec), restore.sh into a stopped service,
#      deploy/upgrade.sh (rolling restart; a broken image stops it and its printed rollback
#      steps work), each container's peak memory under its 30 MB limit, then down.
# Installs podman, runc and docker-compose (Debian) when missing. Needs root (CI runs as root).
# Leaves nothing running: its containers' conmon monitors (which outlive a removed container
# here) and the podman API service it started are stopped by pid on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
services=(error-tracker log-viewer metrics-collector browser-relay)
status=0

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v docker-compose >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q podman runc docker-compose < /dev/null
fi

work=$(mktemp -d /tmp/monlight-containers.XXXXXX)
sock="$work/podman.sock"
svc_pid=""
project=monlight-check$$
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  if [ -n "$svc_pid" ]; then
    DOCKER_HOST="unix://$sock" docker-compose -p "$project" -f deploy/docker-compose.test.yml down -v >/dev/null 2>&1 || true
    kill "$svc_pid" 2>/dev/null || true
  fi
  podman rm -f -v -t 0 "$project-alone" >/dev/null 2>&1 || true
  # conmon, the monitor podman starts per container, has the container's name on its command
  # line (`-n <name>`; ours are $project-alone and ${project}_<service>_1): stop ours, and
  # only ours, by pid.
  stopped=0
  for cmdline in /proc/[0-9]*/cmdline; do
    pid=${cmdline#/proc/}
    pid=${pid%/cmdline}
    args=$(tr '\0' ' ' < "$cmdline" 2>/dev/null) || continue
    case $args in
      *conmon\ *"-n $project"[-_]*) kill "$pid" 2>/dev/null && stopped=$((stopped + 1)) ;;
    esac
  done
  [ "$stopped" = 0 ] || echo "cleanup: stopped $stopped conmon process(es) of this run's containers"
  rm -rf "$work"
}
trap cleanup EXIT

# podman on this kind of host: runc (crun fails on hybrid cgroups), fixed rlimits, cgroupfs.
cat > "$work/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
export CONTAINERS_CONF="$work/containers.conf"

echo "== static binaries (x86_64-unknown-linux-gnu, crt-static)"
RUSTFLAGS="-C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs" cargo build --release --target x86_64-unknown-linux-gnu \
  -p error-tracker -p log-viewer -p metrics-collector -p browser-relay --bins 2>&1 | tail -n 1

echo "== images (podman build, final stage of deploy/docker/*.Dockerfile)"
for bin in "${services[@]}"; do
  art="$work/artifacts-$bin"
  mkdir -p "$art/out/etc" "$art/out/data"
  cp "target/x86_64-unknown-linux-gnu/release/$bin" "$art/out/"
  echo 'monlight:x:10001:10001::/data:/sbin/nologin' > "$art/out/etc/passwd"
  echo 'monlight:x:10001:' > "$art/out/etc/group"
  podman build -q --format docker --build-context "artifacts=$art" \
    -f "deploy/docker/$bin.Dockerfile" -t "monlight/$bin:latest" . >/dev/null
  size=$(podman image inspect "monlight/$bin:latest" --format '{{.Size}}')
  binary=$(wc -c < "$art/out/$bin" | tr -d ' ')
  if [ "$size" -le 5000000 ]; then
    echo "PASS image monlight/$bin:latest: $size bytes (binary $binary bytes), within 5 MB"
  else
    echo "FAIL image monlight/$bin:latest: $size bytes (binary $binary bytes), over 5 MB"; status=1
  fi
done

echo "== each image alone: healthcheck, user, SIGTERM"
port=$((20000 + RANDOM % 20000))
for bin in "${services[@]}"; do
  name="$project-alone"
  extra=()
  if [ "$bin" = browser-relay ]; then
    extra=(-e ADMIN_API_KEY=test-key-0123456789abcdef -e ERROR_TRACKER_URL=http://127.0.0.1:1
      -e ERROR_TRACKER_API_KEY=x -e METRICS_COLLECTOR_URL=http://127.0.0.1:1 -e METRICS_COLLECTOR_API_KEY=x)
  fi
  if [ "$bin" = log-viewer ]; then extra=(-e "LOG_SOURCES=/data"); fi
  podman run -d --name "$name" --network host -e PORT="$port" -e API_KEY=test-key-0123456789abcdef \
    "${extra[@]}" "monlight/$bin:latest" >/dev/null 2>>"$work/podman.log"
  ok=""
  for _ in $(seq 50); do
    if podman exec "$name" "/$bin" --healthcheck >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.1
  done
  user=$(podman inspect "$name" --format '{{.Config.User}}')
  t0=$(date +%s%N)
  podman stop -t 5 "$name" >/dev/null 2>>"$work/podman.log"
  ms=$((($(date +%s%N) - t0) / 1000000))
  code=$(podman inspect "$name" --format '{{.State.ExitCode}}')
  if [ -n "$ok" ] && [ "$code" = 0 ] && [ "$ms" -lt 1000 ] && [ "$user" = 10001:10001 ]; then
    echo "PASS $bin: /$bin --healthcheck ok, user $user, stopped in $ms ms with exit 0"
  else
    echo "FAIL $bin: healthy=${ok:-no} user=$user stop=${ms} ms exit=$code"
    podman logs "$name" 2>&1 | tail -n 20
    status=1
  fi
  podman rm -f -v -t 0 "$name" >/dev/null 2>>"$work/podman.log"
done

echo "== deploy/docker-compose.test.yml through podman's Docker API"
mkdir -p "$work/containers"
python3 scripts/demo-logs.py "$work/containers" >/dev/null
podman system service --time=0 "unix://$sock" >"$work/podman-service.log" 2>&1 &
svc_pid=$!
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
export DOCKER_HOST="unix://$sock" TEST_LOG_SOURCES="$work/containers"
compose=(docker-compose -p "$project" -f deploy/docker-compose.test.yml)
"${compose[@]}" up -d --no-build 2>&1 | grep -v '^Creating\|^$' || true
deadline=$((SECONDS + 30))
for p in 15010 15011 15012 15013; do
  until curl -fsS -o /dev/null "http://127.0.0.1:$p/health" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then echo "FAIL port $p not healthy within 30 s"; "${compose[@]}" logs --tail 20; exit 1; fi
    sleep 0.2
  done
done
API_KEY=test-key-0123456789abcdef sh deploy/smoke-test.sh 15010 || status=1

echo "== memory (limit 30 MiB each; peak during the smoke test)"
for id in $("${compose[@]}" ps -q); do
  name=$(podman inspect "$id" --format '{{.Name}}')
  limit=$(podman inspect "$id" --format '{{.HostConfig.Memory}}')
  full=$(podman inspect "$id" --format '{{.Id}}')
  peak=$(cat /sys/fs/cgroup/memory/libpod_parent/libpod-"$full"/memory.max_usage_in_bytes 2>/dev/null ||
    cat /sys/fs/cgroup/libpod_parent/libpod-"$full"/memory.peak 2>/dev/null || echo unknown)
  echo "$name: limit $limit bytes, peak ${peak} bytes"
  [ "$limit" = 31457280 ] || { echo "FAIL $name: memory limit not applied"; status=1; }
done

echo "== deploy/backup.sh from the live compose volumes, restore.sh into a stopped service"
if ! command -v sqlite3 >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q --no-install-recommends sqlite3 < /dev/null
fi
before=$(curl -fsS http://127.0.0.1:15010/health | sed -n 's/.*"errors_total":\([0-9]*\).*/\1/p')
COMPOSE_PROJECT="$project" DOCKER=podman BACKUP_DIR="$work/backups" sh deploy/backup.sh >/dev/null || status=1
# The same through each container's own `/<service> backup -` (no sqlite3 in the images).
if COMPOSE_PROJECT="$project" DOCKER=podman BACKUP_VIA=exec BACKUP_DIR="$work/exec-backups" \
  sh deploy/backup.sh > "$work/exec-backup.log" 2>&1; then
  run=$(find "$work/exec-backups" -mindepth 1 -maxdepth 1 -type d)
  bad=""
  for svc in "${services[@]}"; do
    [ "$(sqlite3 "$run/$svc.db" 'PRAGMA integrity_check' 2>&1)" = ok ] || bad="$bad $svc"
  done
  groups=$(sqlite3 "$run/error-tracker.db" 'SELECT count(*) FROM errors' 2>&1)
  if [ -z "$bad" ] && [ "$groups" = "$before" ]; then
    echo "PASS backup.sh BACKUP_VIA=exec: the four databases streamed out of their containers, integrity ok, error-tracker's $groups groups"
  else
    echo "FAIL backup.sh BACKUP_VIA=exec: integrity failed for:${bad:- none}; $groups groups, wanted $before"; status=1
  fi
else
  echo "FAIL backup.sh BACKUP_VIA=exec"; cat "$work/exec-backup.log"; status=1
fi
# Something after the backup, then restore: it must be gone again.
curl -fsS -o /dev/null -X POST http://127.0.0.1:15010/api/errors -H 'X-API-Key: test-key-0123456789abcdef' \
  -H 'content-type: application/json' -d '{"project":"after-backup","exception_type":"E","message":"m","traceback":"E: m"}'
"${compose[@]}" stop -t 10 error-tracker >/dev/null 2>&1
COMPOSE_PROJECT="$project" DOCKER=podman sh deploy/restore.sh "$(find "$work/backups" -mindepth 1 -maxdepth 1 -type d)" error-tracker >/dev/null
"${compose[@]}" start error-tracker >/dev/null 2>&1
after=""
for _ in $(seq 50); do
  after=$(curl -fsS http://127.0.0.1:15010/health 2>/dev/null | sed -n 's/.*"errors_total":\([0-9]*\).*/\1/p')
  [ -n "$after" ] && break
  sleep 0.2
done
if [ -n "$before" ] && [ "$after" = "$before" ]; then
  echo "PASS backup of the live volumes restored: error-tracker back to $after groups, writable as 10001"
else
  echo "FAIL restore: $before groups at the backup, ${after:-no answer} after the restore"; status=1
fi
curl -fsS -o /dev/null -X POST http://127.0.0.1:15010/api/errors -H 'X-API-Key: test-key-0123456789abcdef' \
  -H 'content-type: application/json' -d '{"project":"after-restore","exception_type":"E","message":"m","traceback":"E: m"}' ||
  { echo "FAIL the restored error-tracker cannot write"; status=1; }

echo "== deploy/upgrade.sh: rolling restart, then a broken image and its rollback"
upgrade_env=(env COMPOSE_FILE=deploy/docker-compose.test.yml COMPOSE_PROJECT_NAME="$project" DOCKER=podman
  BACKUP_DIR="$work/upgrade-backups" UPGRADE_HEALTH_WAIT=10)
if "${upgrade_env[@]}" sh deploy/upgrade.sh --no-pull --no-build > "$work/upgrade.log" 2>&1 &&
  grep -q 'upgrade: done' "$work/upgrade.log"; then
  echo "PASS upgrade.sh: backup, :rollback tags, four services restarted one by one, each healthy"
else
  echo "FAIL upgrade.sh"; tail -n 30 "$work/upgrade.log"; status=1
fi
# A "new version" that cannot start: the upgrade must stop at it and print the rollback.
mkdir -p "$work/broken"
printf 'not a program\n' > "$work/broken/metrics-collector"
printf 'FROM scratch\nCOPY metrics-collector /metrics-collector\nENTRYPOINT ["/metrics-collector"]\n' > "$work/broken/Dockerfile"
podman tag monlight/metrics-collector:latest monlight/metrics-collector:good >/dev/null
podman build -q -t monlight/metrics-collector:latest "$work/broken" >/dev/null 2>&1
if "${upgrade_env[@]}" sh deploy/upgrade.sh --no-pull --no-build metrics-collector > "$work/upgrade-bad.log" 2>&1; then
  echo "FAIL upgrade.sh succeeded with a broken image"; status=1
elif grep -q 'UPGRADE FAILED at metrics-collector' "$work/upgrade-bad.log"; then
  # Follow the printed image steps.
  grep -E '^  podman tag |^  docker-compose up ' "$work/upgrade-bad.log" > "$work/rollback.sh" || true
  (export COMPOSE_FILE=deploy/docker-compose.test.yml COMPOSE_PROJECT_NAME="$project"; sh -e "$work/rollback.sh" >"$work/rollback.log" 2>&1) || true
  ok=""
  for _ in $(seq 50); do curl -fsS -o /dev/null http://127.0.0.1:15012/health 2>/dev/null && { ok=1; break; }; sleep 0.2; done
  if [ -n "$ok" ]; then
    echo "PASS upgrade.sh stops at a broken image with rollback steps; following them, metrics-collector is healthy again"
  else
    echo "FAIL the printed rollback steps did not bring metrics-collector back"
    cat "$work/upgrade-bad.log" "$work/rollback.sh" "$work/rollback.log"; status=1
  fi
else
  echo "FAIL upgrade.sh failed without rollback steps"; tail -n 30 "$work/upgrade-bad.log"; status=1
fi
podman tag monlight/metrics-collector:good monlight/metrics-collector:latest >/dev/null

t0=$SECONDS
"${compose[@]}" stop -t 10 >/dev/null 2>&1
for id in $("${compose[@]}" ps -q); do
  code=$(podman inspect "$id" --format '{{.State.ExitCode}}')
  name=$(podman inspect "$id" --format '{{.Name}}')
  if [ "$code" = 0 ]; then echo "PASS $name stopped with exit 0"; else echo "FAIL $name exit $code"; status=1; fi
done
echo "compose stop took $((SECONDS - t0)) s"
"${compose[@]}" down -v >/dev/null 2>&1

echo "check-containers: $([ "$status" = 0 ] && echo ok || echo FAILED) in $((SECONDS - started)) s"
exit "$status"
