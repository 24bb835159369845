"""MLflow users through the server's own auth API, as its admin: `pipeline` (the hosts' runs)
and `viewer` (people, the web app). Standard library only: docker-compose.yml's `mlflow-users`
job runs this file in the MLflow server's image, which has no project code.

    MLFLOW_URL=... MLFLOW_ADMIN_PASSWORD=... MLFLOW_PIPELINE_PASSWORD=... \\
    MLFLOW_VIEWER_PASSWORD=... python mlflow_users.py
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.error
import urllib.request

USERS = ("pipeline", "viewer")


def create_users(url: str, admin_password: str, users: dict[str, str]) -> list[str]:
    """Create each user; one that exists already is kept as it is (the job may run again).
    Returns the users created now."""
    token = base64.b64encode(f"admin:{admin_password}".encode()).decode()
    created = []
    for user, password in users.items():
        request = urllib.request.Request(
            f"{url.rstrip('/')}/api/2.0/mlflow/users/create",
            data=json.dumps({"username": user, "password": password}).encode(),
            headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            urllib.request.urlopen(request, timeout=30).close()
            created.append(user)
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
            if "RESOURCE_ALREADY_EXISTS" not in body:
                raise SystemExit(
                    f"error: creating MLflow user {user}: {exc.code} {body[:300]}"
                ) from None
    return created


def main() -> int:
    try:
        passwords = {u: os.environ[f"MLFLOW_{u.upper()}_PASSWORD"] for u in USERS}
        url, admin = os.environ["MLFLOW_URL"], os.environ["MLFLOW_ADMIN_PASSWORD"]
    except KeyError as exc:
        print(f"error: set {exc.args[0]}", file=sys.stderr)
        return 2
    created = create_users(url, admin, passwords)
    print(f"MLflow users created: {', '.join(created) or 'none (all exist)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
