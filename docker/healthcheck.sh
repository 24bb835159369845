#!/bin/sh
# Healthy = the role's server answers: the web app's page, the Prefect worker's /health.
# Batch roles (repro, a command) have no server and are healthy while they run.
case "$(cat /tmp/role 2>/dev/null)" in
  serve) url="http://127.0.0.1:${SERVE_PORT}/" ;;
  worker) url="http://127.0.0.1:${PREFECT_WORKER_WEBSERVER_PORT}/health" ;;
  *) exit 0 ;;
esac
exec python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=4)" "$url"
