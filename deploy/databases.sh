#!/bin/sh
# Where each service's database is, for backup.sh and restore.sh (sourced, not run):
# `db_of <service>` prints its path. With COMPOSE_PROJECT set, a database is in its compose
# named volume (errors, logs, metrics, relay), found with `$DOCKER volume inspect`
# (DOCKER=docker by default; podman works); otherwise under DATA_DIR (./data), or at the path
# DB_<SERVICE> names.

DATA_DIR=${DATA_DIR:-./data}

volume_dir() {
  "${DOCKER:-docker}" volume inspect --format '{{.Mountpoint}}' "${COMPOSE_PROJECT}_$1"
}
db_of() {
  if [ -n "${COMPOSE_PROJECT:-}" ]; then
    case $1 in
      error-tracker) echo "$(volume_dir errors)/errors.db" ;;
      log-viewer) echo "$(volume_dir logs)/logs.db" ;;
      metrics-collector) echo "$(volume_dir metrics)/metrics.db" ;;
      browser-relay) echo "$(volume_dir relay)/browser-relay.db" ;;
      *) echo "unknown service: $1" >&2; return 1 ;;
    esac
    return
  fi
  case $1 in
    error-tracker) echo "${DB_ERROR_TRACKER:-$DATA_DIR/errors.db}" ;;
    log-viewer) echo "${DB_LOG_VIEWER:-$DATA_DIR/logs.db}" ;;
    metrics-collector) echo "${DB_METRICS_COLLECTOR:-$DATA_DIR/metrics.db}" ;;
    browser-relay) echo "${DB_BROWSER_RELAY:-$DATA_DIR/browser-relay.db}" ;;
    *) echo "unknown service: $1" >&2; return 1 ;;
  esac
}
