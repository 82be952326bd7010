#!/bin/sh
# Consistent online backups of Monlight's SQLite databases, safe while the services run (WAL):
# each database is copied with `VACUUM INTO` (one read transaction, so the copy is a single
# committed state, never a torn file), then the copy must pass `PRAGMA integrity_check`.
# Two ways to make the copy (BACKUP_VIA):
#   sqlite3  (default) the host's sqlite3 CLI on the database file: DATA_DIR, or the compose
#            volumes (COMPOSE_PROJECT, as root);
#   exec     the service's own `<service> backup -` inside its running container, streamed out
#            (`$DOCKER exec`): needs COMPOSE_PROJECT and access to the Docker CLI, but neither
#            root nor a sqlite3 on the host (the images are scratch: no sqlite3 inside either).
#
# Usage: deploy/backup.sh [service...]      (default: all four)
#   services: error-tracker log-viewer metrics-collector browser-relay
# Environment:
#   DATA_DIR     where the databases are (default ./data, as scripts/run.sh)
#   COMPOSE_PROJECT  instead of DATA_DIR: the compose project (e.g. monlight) whose named
#                volumes hold the databases; run as root on the Docker host (DOCKER=podman works)
#   BACKUP_DIR   where backups go (default ./backups); each run makes BACKUP_DIR/<UTC time>/
#   BACKUP_KEEP  how many runs to keep (default 7; older ones are deleted)
#   BACKUP_UPLOAD  optional command run with the new backup directory as its argument
#                (e.g. an rclone/rsync wrapper); its failure fails the backup
#   SQLITE3      the sqlite3 CLI (default sqlite3; Debian package sqlite3, 3.27+)
#   BACKUP_VIA   sqlite3 (default) or exec, see above
#   DOCKER       the container CLI for exec and the volumes (default docker; podman works)
# Database file per service (as scripts/run.sh names them): errors.db, logs.db, metrics.db,
# browser-relay.db; override with DB_ERROR_TRACKER, DB_LOG_VIEWER, DB_METRICS_COLLECTOR,
# DB_BROWSER_RELAY (full paths).
# Exit status: 0 when every database was copied and checked; 1 otherwise (a failed copy is
# deleted; the run's directory is kept only when complete).
set -eu

BACKUP_DIR=${BACKUP_DIR:-./backups}
BACKUP_KEEP=${BACKUP_KEEP:-7}
SQLITE3=${SQLITE3:-sqlite3}
BACKUP_VIA=${BACKUP_VIA:-sqlite3}

# shellcheck source=deploy/databases.sh
. "$(dirname "$0")/databases.sh"

case $BACKUP_VIA in
  sqlite3)
    if ! command -v "$SQLITE3" >/dev/null 2>&1; then
      echo "backup: the sqlite3 CLI is needed (apt-get install sqlite3), or BACKUP_VIA=exec with compose" >&2
      exit 1
    fi ;;
  exec)
    if [ -z "${COMPOSE_PROJECT:-}" ]; then
      echo "backup: BACKUP_VIA=exec needs COMPOSE_PROJECT (the compose project, e.g. monlight)" >&2
      exit 2
    fi ;;
  *) echo "backup: BACKUP_VIA must be sqlite3 or exec (got $BACKUP_VIA)" >&2; exit 2 ;;
esac
case $BACKUP_KEEP in '' | *[!0-9]* | 0) echo "backup: BACKUP_KEEP must be a positive number" >&2; exit 2 ;; esac
[ $# -gt 0 ] || set -- error-tracker log-viewer metrics-collector browser-relay

stamp=$(date -u +%Y%m%dT%H%M%SZ)
run="$BACKUP_DIR/$stamp"
[ ! -e "$run" ] || run="$run-$$"
partial="$BACKUP_DIR/.partial-$stamp-$$"
mkdir -p "$partial"
trap 'rm -rf "$partial"' EXIT

status=0
# The running container of compose service $1 in COMPOSE_PROJECT.
container_of() {
  "${DOCKER:-docker}" ps -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT" \
    --filter "label=com.docker.compose.service=$1" | head -n 1
}

# BACKUP_VIA=sqlite3: VACUUM INTO $2 from the database file of service $1.
copy_with_sqlite3() {
  db=$(db_of "$1") || return 1
  if [ ! -f "$db" ]; then
    echo "backup: $1: no database at $db" >&2
    return 1
  fi
  # VACUUM INTO takes a string literal: double any single quote in the path.
  quoted=$(printf '%s' "$2" | sed "s/'/''/g")
  if ! "$SQLITE3" -bail "$db" ".timeout 10000" "VACUUM INTO '$quoted'" >/dev/null; then
    echo "backup: $1: VACUUM INTO failed" >&2
    return 1
  fi
  check=$("$SQLITE3" "$2" "PRAGMA integrity_check" 2>&1 || true)
  if [ "$check" != ok ]; then
    echo "backup: $1: the copy fails integrity_check: $check" >&2
    return 1
  fi
  from=$db
}

# BACKUP_VIA=exec: `/<service> backup -` in the service's container (it checks the copy's
# integrity before writing it out), into $2; the size it reports must be what arrived.
copy_with_exec() {
  case $1 in
    error-tracker | log-viewer | metrics-collector | browser-relay) ;;
    *) echo "unknown service: $1" >&2; return 1 ;;
  esac
  id=$(container_of "$1")
  if [ -z "$id" ]; then
    echo "backup: $1: no running container in compose project $COMPOSE_PROJECT" >&2
    return 1
  fi
  if ! "${DOCKER:-docker}" exec "$id" "/$1" backup - > "$2" 2> "$2.log"; then
    echo "backup: $1: $(cat "$2.log")" >&2
    return 1
  fi
  said=$(sed -n 's/.*(\([0-9]*\) bytes, integrity ok).*/\1/p' "$2.log")
  got=$(wc -c < "$2" | tr -d ' ')
  rm -f "$2.log"
  if [ -z "$said" ] || [ "$said" != "$got" ]; then
    echo "backup: $1: the container wrote ${said:-an unknown number of} bytes, $got arrived" >&2
    return 1
  fi
  from="container $id"
}

for svc in "$@"; do
  out="$partial/$svc.db"
  from=""
  if ! "copy_with_$BACKUP_VIA" "$svc" "$out"; then
    rm -f "$out" "$out.log"
    status=1
    continue
  fi
  echo "backup: $svc: $from -> $run/$svc.db ($(wc -c < "$out" | tr -d ' ') bytes, integrity ok)"
done

if [ "$status" -ne 0 ]; then
  echo "backup: FAILED; nothing kept from this run" >&2
  exit 1
fi
mv "$partial" "$run"
trap - EXIT

if [ -n "${BACKUP_UPLOAD:-}" ]; then
  # shellcheck disable=SC2086 # the hook may carry its own arguments
  $BACKUP_UPLOAD "$run"
fi

# Keep the newest BACKUP_KEEP runs (names sort by time).
for d in "$BACKUP_DIR"/[0-9]*T[0-9]*Z*; do
  [ -d "$d" ] && echo "${d##*/}"
done | sort -r | tail -n +"$((BACKUP_KEEP + 1))" |
  while read -r old; do
    rm -rf "${BACKUP_DIR:?}/$old"
    echo "backup: removed old backup $old"
  done
echo "backup: done: $run"
