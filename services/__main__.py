"""`python -m services up [--state DIR]`: start PostgreSQL, an S3 endpoint, the MLflow server and
the Prefect server as processes on loopback, write `client.env` (source it on a host of this
machine) and keep them running until Ctrl-C. For a team across machines use docker-compose.yml.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the four services until Ctrl-C")
    up.add_argument("--state", type=Path, default=Path(".services"), help="logs and secrets")
    args = parser.parse_args(argv)

    from services.local import start_team_services, write_env_file

    try:
        team = start_team_services(args.state.resolve())
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    client_env = args.state / "client.env"
    write_env_file(client_env, team.client_env())
    write_env_file(
        args.state / "admin.env",
        {"MLFLOW_ADMIN_PASSWORD": team.secrets["mlflow.admin"]}
        | {"MLFLOW_VIEWER_PASSWORD": team.secrets["mlflow.viewer"]},
    )
    print(f"MLflow  {team.mlflow.url}  (users: admin, pipeline, viewer; passwords in {args.state})")
    print(f"Prefect {team.prefect.url.removesuffix('/api')}")
    print(f"S3      {team.s3.endpoint}  (DVC remote s3://dvc-remote/)")
    print(f"a host on this machine: set -a; . {client_env}; set +a   then: make team-host")
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    team.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
