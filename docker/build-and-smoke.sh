#!/usr/bin/env bash
# Build the image and smoke-test every role of it, then print build time and image size.
#   docker/build-and-smoke.sh [--base IMAGE] [--no-cache]   (base: python:3.11-slim-bookworm)
# The roles, each in its own container:
#   repro   the churn pipeline of a fresh clone mounted at /app (`repro report@churn`)
#   serve   the web app over that clone's registry: healthy, and one prediction through the API
#   worker  a Prefect worker against a Prefect server (same image): healthy
# DOCKER (default: docker) names the client, PYTHON (default .venv/bin/python) runs the API call;
# a TLS-intercepting proxy's CA bundle goes to the install step as a build secret when
# SSL_CERT_FILE names one.
set -euo pipefail
cd "$(dirname "$0")/.."
base=python:3.11-slim-bookworm
fresh=()
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base=$2; shift 2 ;;
    --no-cache) fresh=(--no-cache); shift ;;  # a cold build (the package cache mount stays)
    *) echo "usage: $0 [--base IMAGE] [--no-cache]" >&2; exit 2 ;;
  esac
done
docker=${DOCKER:-docker}
image=ml-course-pipelines:smoke
tag=mlcp-smoke-$$
work=$(mktemp -d)
cleanup() {
  $docker rm -f "$tag-app" "$tag-prefect" "$tag-worker" >/dev/null 2>&1 || true
  $docker network rm "$tag" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }
wait_healthy() {  # container, seconds
  local deadline=$((SECONDS + $2)) state
  while state=$($docker inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null); do
    [ "$state" = healthy ] && return 0
    [ $SECONDS -gt "$deadline" ] && break
    sleep 2
  done
  echo "FAIL: $1 is not healthy (${state:-gone})" >&2
  $docker logs --tail 40 "$1" >&2 || true
  return 1
}

secret=()
[ -n "${SSL_CERT_FILE:-}" ] && [ -f "$SSL_CERT_FILE" ] && secret=(--secret "id=ca,src=$SSL_CERT_FILE")
start=$(now)
DOCKER_BUILDKIT=1 $docker build -q "${fresh[@]}" --build-arg "BASE_IMAGE=$base" "${secret[@]}" -t "$image" . >/dev/null
build_s=$(since "$start")
size=$($docker image inspect -f '{{.Size}}' "$image")
echo "built $image on $base in ${build_s} s, $((size / 1024 / 1024)) MiB"
[ "$($docker run --rm "$image" id -u)" != 0 ] || { echo "FAIL: the image runs as root" >&2; exit 1; }

# repro: a fresh clone, owned by the image's user, runs its churn pipeline in the container
git clone -q . "$work/clone"
chown -R 1000:1000 "$work/clone" 2>/dev/null || chmod -R a+rwX "$work/clone"
start=$(now)
$docker run --rm -v "$work/clone:/app" "$image" repro report@churn >"$work/repro.log" 2>&1 \
  || { tail -30 "$work/repro.log" >&2; echo "FAIL: repro report@churn" >&2; exit 1; }
echo "repro report@churn in the container: $(since "$start") s"

# serve: the app over the clone's registry, one churn prediction through the API
port=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
start=$(now)
$docker run -d --name "$tag-app" -p "127.0.0.1:$port:7860" -v "$work/clone:/app" "$image" >/dev/null
wait_healthy "$tag-app" 300
echo "serve healthy after $(since "$start") s on port $port"
# the client side runs in the project's environment (make env): gradio_client, as scripts do
"${PYTHON:-.venv/bin/python}" - "http://127.0.0.1:$port/" "$work/clone" <<'PY'
import sys, time
from pathlib import Path

import pandas as pd
from gradio_client import Client, handle_file

url, clone = sys.argv[1], Path(sys.argv[2])
clients = pd.read_parquet(clone / "data/processed/churn/holdout.parquet").drop(columns=["Churn"])
clients.head(50).to_csv(clone / "clients.csv", index=False)
started = time.perf_counter()
result, _ = Client(url, verbose=False).predict(handle_file(str(clone / "clients.csv")), None, api_name="/churn_csv")
scored = pd.read_csv(result)["Churn"]
assert len(scored) == 50 and scored.between(0, 1).all() and scored.std() > 0.01, scored.describe()
print(f"churn_csv through the API: 50 clients in {time.perf_counter() - started:.2f} s, "
      f"probabilities {scored.min():.3f}-{scored.max():.3f}")
PY

# worker: a Prefect server and a worker of the image on their own network
$docker network create "$tag" >/dev/null
$docker run -d --name "$tag-prefect" --network "$tag" "$image" \
  prefect server start --host 0.0.0.0 >/dev/null
start=$(now)
$docker run -d --name "$tag-worker" --network "$tag" \
  -e PREFECT_API_URL="http://$tag-prefect:4200/api" "$image" \
  worker --pool smoke --type process >/dev/null
wait_healthy "$tag-worker" 300
echo "worker healthy after $(since "$start") s (pool smoke, server in a container)"
echo "smoke test passed"
