#!/bin/sh
# The image's roles (see the Dockerfile). The role is written down for docker/healthcheck.sh.
set -eu
role=${1:-serve}
[ $# -gt 0 ] && shift
echo "$role" > /tmp/role
case "$role" in
  serve)
    exec python -m serve --root /app --host 0.0.0.0 --port "$SERVE_PORT" "$@" ;;
  repro)
    # as `make repro`: DVC deletes a stage's outputs before running it, so a failed run puts
    # the last good ones back
    dvc repro "$@" || { status=$?; dvc checkout --quiet || true; exit $status; } ;;
  worker)
    exec prefect worker start --with-healthcheck "$@" ;;
  *)
    exec "$role" "$@" ;;
esac
