# The MLflow server of docker-compose.yml: basic auth, PostgreSQL store, S3 artifacts.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
RUN python -m pip install --no-cache-dir "mlflow[auth]==3.17.2" "psycopg2-binary==2.9.13" \
        "boto3==1.43.117" \
    && useradd --create-home mlflow
USER mlflow
WORKDIR /home/mlflow
COPY --chown=mlflow start-mlflow.sh /home/mlflow/start-mlflow.sh
EXPOSE 5000
CMD ["/bin/sh", "/home/mlflow/start-mlflow.sh"]
