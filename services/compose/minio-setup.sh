#!/bin/sh
# Buckets and users of the team's S3 store; safe to run again.
set -eu
mc alias set store http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
for bucket in mlflow-artifacts dvc-remote; do
  mc mb --ignore-existing "store/$bucket"
  cat > "/tmp/$bucket.json" <<POLICY
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*"],
  "Resource": ["arn:aws:s3:::$bucket", "arn:aws:s3:::$bucket/*"]}]}
POLICY
  mc admin policy create store "$bucket-rw" "/tmp/$bucket.json"
done
mc admin user add store "$MLFLOW_S3_KEY_ID" "$MLFLOW_S3_SECRET"
mc admin policy attach store mlflow-artifacts-rw --user "$MLFLOW_S3_KEY_ID" || true
mc admin user add store "$DVC_S3_KEY_ID" "$DVC_S3_SECRET"
mc admin policy attach store dvc-remote-rw --user "$DVC_S3_KEY_ID" || true
