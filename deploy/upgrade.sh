#!/bin/sh
# Upgrades a running Monlight compose stack, one service at a time:
#   1. deploy/backup.sh of the databases (from the compose volumes);
#   2. the image each service runs now tagged :rollback;
#   3. git pull --ff-only (unless --no-pull), then docker-compose build (unless --no-build);
#   4. rolling restart: each service recreated alone, then waited for (its own --healthcheck,
#      up to UPGRADE_HEALTH_WAIT seconds) before the next one;
#   5. on a failure: stops, and prints the rollback steps (image and data).
#
# Usage: deploy/upgrade.sh [--no-pull] [--no-build] [service...]   (default: all four)
# Environment:
#   COMPOSE_FILE, COMPOSE_PROJECT_NAME  as docker-compose reads them (default: ./docker-compose.yml,
#                        project = the directory's name); run from the repository root
#   MONLIGHT_ENV_FILE    variables for compose (default deploy/secrets.env when it exists)
#   DOCKER               docker (default) or podman, for tags and volumes
#   UPGRADE_HEALTH_WAIT  seconds (default 60)
#   plus deploy/backup.sh's BACKUP_DIR, BACKUP_KEEP, BACKUP_UPLOAD
set -eu

pull=1 build=1
while [ $# -gt 0 ]; do
  case $1 in
    --no-pull) pull=0 ;;
    --no-build) build=0 ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
[ $# -gt 0 ] || set -- error-tracker log-viewer metrics-collector browser-relay

DOCKER=${DOCKER:-docker}
WAIT=${UPGRADE_HEALTH_WAIT:-60}
env_file=${MONLIGHT_ENV_FILE:-}
if [ -z "$env_file" ] && [ -f deploy/secrets.env ]; then env_file=deploy/secrets.env; fi
compose() {
  if [ -n "$env_file" ]; then docker-compose --env-file "$env_file" "$@"; else docker-compose "$@"; fi
}
project=${COMPOSE_PROJECT_NAME:-$(basename "$PWD" | tr '[:upper:]' '[:lower:]' | tr -cd 'a-z0-9_-')}
backup_dir=${BACKUP_DIR:-./backups}

rollback_steps() { # failed service, services already restarted
  echo
  echo "UPGRADE FAILED at $1. To roll back:"
  for s in $2 $1; do
    echo "  $DOCKER tag $(image_of "$s" rollback) $(image_of "$s" "${MONLIGHT_TAG:-latest}")"
  done
  echo "  docker-compose up -d --no-deps --force-recreate $2 $1"
  echo "and, if the new version changed a database (it migrates at start), restore the backup"
  echo "taken before the upgrade (stop the service first):"
  echo "  docker-compose stop $1 && COMPOSE_PROJECT=$project deploy/restore.sh $last_backup $1 && docker-compose start $1"
}
image_of() { # service tag
  echo "monlight/$1:$2"
}

echo "== backup"
COMPOSE_PROJECT=$project DOCKER=$DOCKER BACKUP_DIR=$backup_dir sh "$(dirname "$0")/backup.sh" "$@"
last_backup=$(find "$backup_dir" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*T[0-9]*Z*' | sort | tail -n 1)

echo "== tag the running images :rollback"
for s in "$@"; do
  # The image the running container was started from (not whatever :latest is now).
  id=$(compose ps -q "$s" | head -n 1)
  if [ -n "$id" ]; then
    image=$("$DOCKER" inspect --format '{{.Image}}' "$id")
  else
    image=$(image_of "$s" "${MONLIGHT_TAG:-latest}")
  fi
  "$DOCKER" tag "$image" "$(image_of "$s" rollback)"
  echo "$s: $(image_of "$s" rollback) = $image"
done

if [ "$pull" = 1 ]; then
  echo "== git pull --ff-only"
  git pull --ff-only
fi
if [ "$build" = 1 ]; then
  echo "== build"
  compose build "$@"
fi

done_list=""
for s in "$@"; do
  echo "== restart $s"
  if ! compose up -d --no-deps --force-recreate "$s"; then
    rollback_steps "$s" "$done_list"
    exit 1
  fi
  end=$(($(date +%s) + WAIT))
  until compose exec -T "$s" "/$s" --healthcheck >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$end" ]; then
      echo "$s is not healthy within $WAIT s; its last log lines:"
      compose logs --tail 20 "$s" || true
      rollback_steps "$s" "$done_list"
      exit 1
    fi
    sleep 1
  done
  echo "$s: healthy"
  done_list="$done_list $s"
done
echo "upgrade: done (previous images kept as monlight/<service>:rollback; backup $last_backup)"
