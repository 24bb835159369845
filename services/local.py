"""The team's services as real processes on one machine, without Docker (tests, laptops):
PostgreSQL (Debian's server), an S3 endpoint (`moto_server`), `mlflow server` and
`prefect server`, on loopback by default, every one behind credentials.

docker-compose.yml runs the same four for a team (MinIO in place of moto, which is a test
double of S3: its control API at /moto-api is open, so it never listens beyond loopback).
Secrets are generated into the state folder (outside git) and written to two env files:
`server.env` (the bucket keys: only the MLflow server needs them) and `client.env` (what a host
sets: tracking URI and user, Prefect API and auth, the DVC remote's endpoint and keys).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services.mlflow_users import create_users

BIN = Path(sys.executable).parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
DATABASES = ("mlflow", "mlflow_auth", "prefect")
ARTIFACT_BUCKET = "mlflow-artifacts"
DVC_BUCKET = "dvc-remote"
TELEMETRY_OFF = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def start_process(args: list[str], log: Path, env: dict[str, str], **kwargs) -> subprocess.Popen:
    """In a session of its own: stopping the group stops the children too (mlflow's workers)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True, **kwargs
        )


def stop_process(process: subprocess.Popen, sig: int = signal.SIGINT, grace: float = 30) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_until(ready: Callable[[], bool], what: str, log: Path, process=None, timeout=120) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout} s:\n{tail(log)}")
        time.sleep(0.3)


def tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.is_file() else ""


def answers(url: str, **kwargs) -> bool:
    try:
        httpx.get(url, timeout=2, **kwargs)
        return True
    except httpx.HTTPError:
        return False


@dataclass
class Postgres:
    """A PostgreSQL cluster of its own, password auth on TCP only. As root, the server runs as
    Debian's `postgres` user (PostgreSQL refuses root), in a folder that user owns."""

    port: int
    password: str
    data: Path
    user: str = "ml"
    process: subprocess.Popen | None = None

    def url(self, database: str, driver: str = "postgresql") -> str:
        return f"{driver}://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"


def as_postgres_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def start_postgres(state: Path, port: int, password: str, host: str = "127.0.0.1") -> Postgres:
    # /tmp and not the state folder: pytest's and a user's folders are closed to `postgres`
    data = Path(tempfile.mkdtemp(prefix="ml-pipelines-pg-"))
    log = state / "postgres.log"
    secret = data / "pwfile"
    secret.write_text(password)
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
        shutil.chown(secret, "postgres", "postgres")
    subprocess.run(
        as_postgres_user(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(data / "cluster"),
                "-U",
                "ml",
                "--pwfile",
                str(secret),
                "--auth-host=scram-sha-256",
                "--auth-local=reject",
            ]
        ),
        check=True,
        capture_output=True,
    )
    secret.unlink()
    server = Postgres(port=port, password=password, data=data)
    server.process = start_process(
        as_postgres_user(
            [
                str(PG_BIN / "postgres"),
                "-D",
                str(data / "cluster"),
                "-p",
                str(port),
                "-c",
                f"listen_addresses={host}",
                "-c",
                f"unix_socket_directories={data}",
            ]
        ),
        log,
        env={**os.environ},
    )
    import psycopg2

    def ready() -> bool:
        try:
            psycopg2.connect(server.url("postgres"), connect_timeout=2).close()
            return True
        except psycopg2.OperationalError:
            return False

    wait_until(ready, "postgres", log, server.process, timeout=60)
    connection = psycopg2.connect(server.url("postgres"))
    connection.autocommit = True
    with connection.cursor() as cursor:
        for database in DATABASES:
            cursor.execute(f"CREATE DATABASE {database}")
    connection.close()
    return server


@dataclass
class S3:
    """moto's S3 with IAM auth switched on after setup: every request must be signed with the
    keys of a user it created (one for MLflow's artifacts, one for the DVC remote)."""

    endpoint: str
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # user -> (id, secret)
    process: subprocess.Popen | None = None


def bucket_policy(bucket: str) -> str:
    import json

    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                }
            ],
        }
    )


def start_s3(state: Path, port: int, host: str = "127.0.0.1") -> S3:
    import boto3

    log = state / "s3.log"
    endpoint = f"http://{host}:{port}"
    process = start_process(
        [str(BIN / "moto_server"), "-H", host, "-p", str(port)], log, env={**os.environ}
    )
    wait_until(lambda: answers(f"{endpoint}/moto-api/"), "moto_server", log, process, 60)
    setup = dict(
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
    s3, iam = boto3.client("s3", **setup), boto3.client("iam", **setup)
    server = S3(endpoint=endpoint, process=process)
    for user, bucket in (("mlflow", ARTIFACT_BUCKET), ("dvc", DVC_BUCKET)):
        s3.create_bucket(Bucket=bucket)
        iam.create_user(UserName=user)
        iam.put_user_policy(
            UserName=user, PolicyName=f"{bucket}-rw", PolicyDocument=bucket_policy(bucket)
        )
        key = iam.create_access_key(UserName=user)["AccessKey"]
        server.keys[user] = (key["AccessKeyId"], key["SecretAccessKey"])
    httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"0").raise_for_status()
    return server


@dataclass
class Service:
    url: str
    process: subprocess.Popen


# MLflow checks the password of every request (scrypt: 130 ms of server CPU each here;
# churn's evaluate in the team flow took 30-43 s, 17 with the cache) unless its cache holds
# the checked credential; a changed password or removed user then works on for up to this
# long in the server worker that cached it
AUTH_CACHE_SECONDS = 300


def write_auth_config(state: Path, database_uri: str, admin: str, password: str) -> Path:
    config = state / "mlflow-auth.ini"
    config.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {database_uri}\n"
        f"admin_username = {admin}\n"
        f"admin_password = {password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        f"auth_cache_ttl_seconds = {AUTH_CACHE_SECONDS}\n"
    )
    config.chmod(0o600)
    return config


def start_mlflow(
    state: Path, port: int, postgres: Postgres, s3: S3, admin_password: str, host="127.0.0.1"
) -> Service:
    """PostgreSQL backend store, artifacts proxied to the bucket (hosts need no bucket keys),
    basic auth with `admin` and per-user permissions (default READ)."""
    log = state / "mlflow.log"
    key_id, key_secret = s3.keys["mlflow"]
    env = {
        **os.environ,
        **TELEMETRY_OFF,
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": key_secret,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "MLFLOW_S3_ENDPOINT_URL": s3.endpoint,
        "MLFLOW_AUTH_CONFIG_PATH": str(
            write_auth_config(state, postgres.url("mlflow_auth"), "admin", admin_password)
        ),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # its job workers outlive a SIGTERM
    }
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        env.pop(name, None)
    url = f"http://{host}:{port}"
    process = start_process(
        [
            str(BIN / "mlflow"),
            "server",
            "--host",
            host,
            "--port",
            str(port),
            "--backend-store-uri",
            postgres.url("mlflow"),
            "--artifacts-destination",
            f"s3://{ARTIFACT_BUCKET}/",
            "--serve-artifacts",
            "--app-name",
            "basic-auth",
            "--workers",
            "2",
        ],
        log,
        env,
        cwd=state,
    )
    wait_until(lambda: answers(f"{url}/health"), "mlflow server", log, process, 180)
    return Service(url, process)


def start_prefect(
    state: Path, port: int, postgres: Postgres, auth_string: str, host="127.0.0.1"
) -> Service:
    log = state / "prefect.log"
    home = state / "prefect-home"
    home.mkdir(exist_ok=True)
    env = {
        **os.environ,
        **TELEMETRY_OFF,
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": postgres.url("prefect", "postgresql+asyncpg"),
        "PREFECT_SERVER_API_AUTH_STRING": auth_string,
        "PREFECT_API_AUTH_STRING": auth_string,  # the server's own services call its API
    }
    env.pop("PREFECT_API_URL", None)
    url = f"http://{host}:{port}/api"
    process = start_process(
        [str(BIN / "prefect"), "server", "start", "--host", host, "--port", str(port)],
        log,
        env,
        cwd=state,
    )
    wait_until(lambda: answers(f"{url}/health"), "prefect server", log, process, 180)
    return Service(url, process)


@dataclass
class TeamServices:
    state: Path
    postgres: Postgres
    s3: S3
    mlflow: Service
    prefect: Service
    secrets: dict[str, str]

    def client_env(self, user: str = "pipeline") -> dict[str, str]:
        """What a host exports: no bucket key of MLflow's, only the DVC remote's."""
        dvc_id, dvc_secret = self.s3.keys["dvc"]
        return {
            "MLFLOW_TRACKING_URI": self.mlflow.url,
            "MLFLOW_TRACKING_USERNAME": user,
            "MLFLOW_TRACKING_PASSWORD": self.secrets[f"mlflow.{user}"],
            "PREFECT_API_URL": self.prefect.url,
            "PREFECT_API_AUTH_STRING": self.secrets["prefect.auth"],
            "DVC_REMOTE_URL": f"s3://{DVC_BUCKET}/",
            "DVC_REMOTE_ENDPOINT": self.s3.endpoint,
            "AWS_ACCESS_KEY_ID": dvc_id,
            "AWS_SECRET_ACCESS_KEY": dvc_secret,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            # artifacts through the server: else it hands out presigned URLs of its S3 endpoint
            "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
        }

    def stop(self) -> None:
        stop_process(self.prefect.process)
        stop_process(self.mlflow.process, signal.SIGTERM)
        stop_process(self.s3.process)
        if self.postgres.process is not None:
            stop_process(self.postgres.process, signal.SIGTERM)  # "smart" shutdown
        shutil.rmtree(self.postgres.data, ignore_errors=True)


def start_team_services(state: Path, host: str = "127.0.0.1") -> TeamServices:
    """Start all four (about 30-60 s); stop them with `.stop()`."""
    state.mkdir(parents=True, exist_ok=True)
    names = ("postgres", "mlflow.admin", "mlflow.pipeline", "mlflow.viewer", "prefect")
    generated = {name: secrets.token_urlsafe(18) for name in names}
    generated["prefect.auth"] = f"admin:{generated.pop('prefect')}"
    started: list = []
    try:
        postgres = start_postgres(state, free_port(), generated["postgres"])
        started.append(lambda: stop_process(postgres.process, signal.SIGTERM))
        s3 = start_s3(state, free_port(host), host="127.0.0.1")
        started.append(lambda: stop_process(s3.process))
        mlflow = start_mlflow(state, free_port(host), postgres, s3, generated["mlflow.admin"], host)
        started.append(lambda: stop_process(mlflow.process, signal.SIGTERM))
        create_users(
            mlflow.url,
            generated["mlflow.admin"],
            {user: generated[f"mlflow.{user}"] for user in ("pipeline", "viewer")},
        )
        prefect = start_prefect(state, free_port(host), postgres, generated["prefect.auth"], host)
    except BaseException:
        for stop in reversed(started):
            stop()
        raise
    return TeamServices(state, postgres, s3, mlflow, prefect, generated)


def write_env_file(path: Path, values: dict[str, str]) -> None:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    path.chmod(0o600)
