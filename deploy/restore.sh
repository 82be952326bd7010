#!/bin/sh
# Restores a Monlight database from a backup made by deploy/backup.sh.
# STOP THE SERVICE FIRST (docker compose stop <service>, or Ctrl-C scripts/run.sh): a running
# service keeps the old file open.
#
# Usage: deploy/restore.sh BACKUP_RUN_DIR [service...]    (default: every database in the run)
#   e.g. deploy/restore.sh backups/20261201T180000Z error-tracker
# Environment: DATA_DIR, COMPOSE_PROJECT, DB_* and SQLITE3 as for deploy/backup.sh.
# The backup must pass `PRAGMA integrity_check` first; the current database (with its -wal and
# -shm files) is moved aside to <db>.before-restore-<UTC time>, never deleted.
set -eu

SQLITE3=${SQLITE3:-sqlite3}

# shellcheck source=deploy/databases.sh
. "$(dirname "$0")/databases.sh"

if [ $# -lt 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 BACKUP_RUN_DIR [service...]" >&2
  exit 2
fi
run=$1
shift
if [ $# -eq 0 ]; then
  for f in "$run"/*.db; do
    [ -f "$f" ] || continue
    name=${f##*/}
    set -- "$@" "${name%.db}"
  done
fi
[ $# -gt 0 ] || { echo "restore: no databases in $run" >&2; exit 1; }

stamp=$(date -u +%Y%m%dT%H%M%SZ)
for svc in "$@"; do
  src="$run/$svc.db"
  db=$(db_of "$svc")
  [ -f "$src" ] || { echo "restore: no $src" >&2; exit 1; }
  check=$("$SQLITE3" "$src" "PRAGMA integrity_check" 2>&1 || true)
  if [ "$check" != ok ]; then
    echo "restore: $src fails integrity_check: $check" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$db")"
  cp "$src" "$db.restoring"
  kept=""
  for ext in "" -wal -shm; do
    if [ -e "$db$ext" ]; then
      mv "$db$ext" "$db.before-restore-$stamp$ext"
      kept=" (previous kept as $db.before-restore-$stamp)"
    fi
  done
  # The service's user owns its data directory (10001 in the images): the file too.
  chown "$(stat -c %u:%g "$(dirname "$db")")" "$db.restoring" 2>/dev/null || true
  mv "$db.restoring" "$db"
  echo "restore: $svc: $src -> $db$kept"
done
