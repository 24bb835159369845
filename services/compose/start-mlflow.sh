#!/bin/sh
# The auth config from the environment (MLflow reads it from a file), then the server. Checked
# credentials are cached for 5 minutes (services/local.py AUTH_CACHE_SECONDS says why).
set -eu
umask 077
cat > "$HOME/basic_auth.ini" <<INI
[mlflow]
default_permission = READ
database_uri = $MLFLOW_AUTH_DATABASE_URI
admin_username = admin
admin_password = $MLFLOW_ADMIN_PASSWORD
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
auth_cache_ttl_seconds = 300
INI
export MLFLOW_AUTH_CONFIG_PATH="$HOME/basic_auth.ini"
exec mlflow server --host 0.0.0.0 --port 5000 \
  --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" \
  --artifacts-destination s3://mlflow-artifacts/ --serve-artifacts \
  --app-name basic-auth
