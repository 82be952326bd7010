#!/bin/sh
# Consistent online backups of Monlight's SQLite databases, safe while the services run (WAL):
# each database is copied with `VACUUM INTO` (one read transaction, so the copy is a single
# committed state, never a torn file), then the copy must pass `PRAGMA integrity_check`.
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
# Database file per service (as scripts/run.sh names them): errors.db, logs.db, metrics.db,
# browser-relay.db; override with DB_ERROR_TRACKER, DB_LOG_VIEWER, DB_METRICS_COLLECTOR,
# DB_BROWSER_RELAY (full paths).
# Exit status: 0 when every database was copied and checked; 1 otherwise (a failed copy is
# deleted; the run's directory is kept only when complete).
set -eu

BACKUP_DIR=${BACKUP_DIR:-./backups}
BACKUP_KEEP=${BACKUP_KEEP:-7}
SQLITE3=${SQLITE3:-sqlite3}

# shellcheck source=deploy/databases.sh
. "$(dirname "$0")/databases.sh"

if ! command -v "$SQLITE3" >/dev/null 2>&1; then
  echo "backup: the sqlite3 CLI is needed (apt-get install sqlite3)" >&2
  exit 1
fi
case $BACKUP_KEEP in '' | *[!0-9]* | 0) echo "backup: BACKUP_KEEP must be a positive number" >&2; exit 2 ;; esac
[ $# -gt 0 ] || set -- error-tracker log-viewer metrics-collector browser-relay

stamp=$(date -u +%Y%m%dT%H%M%SZ)
run="$BACKUP_DIR/$stamp"
[ ! -e "$run" ] || run="$run-$$"
partial="$BACKUP_DIR/.partial-$stamp-$$"
mkdir -p "$partial"
trap 'rm -rf "$partial"' EXIT

status=0
for svc in "$@"; do
  db=$(db_of "$svc") || { status=1; continue; }
  if [ ! -f "$db" ]; then
    echo "backup: $svc: no database at $db" >&2
    status=1
    continue
  fi
  out="$partial/$svc.db"
  # VACUUM INTO takes a string literal: double any single quote in the path.
  quoted=$(printf '%s' "$out" | sed "s/'/''/g")
  if ! "$SQLITE3" -bail "$db" ".timeout 10000" "VACUUM INTO '$quoted'" >/dev/null; then
    echo "backup: $svc: VACUUM INTO failed" >&2
    rm -f "$out"
    status=1
    continue
  fi
  check=$("$SQLITE3" "$out" "PRAGMA integrity_check" 2>&1 || true)
  if [ "$check" != ok ]; then
    echo "backup: $svc: the copy fails integrity_check: $check" >&2
    rm -f "$out"
    status=1
    continue
  fi
  echo "backup: $svc: $db -> $run/$svc.db ($(wc -c < "$out" | tr -d ' ') bytes, integrity ok)"
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
