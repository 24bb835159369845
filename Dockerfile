# One image for every role of the project (docker/entrypoint.sh):
#   serve [args]      the web app on :7860 (default)
#   repro [targets]   `dvc repro` of the project in /app (mount a clone there to use its data)
#   worker [args]     a Prefect worker (`prefect worker start`), e.g. worker --pool gpu
#   anything else     run as a command (dvc, mlflow, python -m stages ..., a shell)
#
# Where Docker Hub is not reachable, build on a local base with python3.11 and python3-venv
# (README: "The container image"); docker/build-and-smoke.sh builds and tests the image.
#   docker build --build-arg BASE_IMAGE=local/py-base:bookworm -t ml-course-pipelines .
# A registry behind a TLS proxy: add --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt
# (used by the install step only, never stored in the image).
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
# the lock's exact, hash-checked packages (the dev tools too: `docker run IMAGE pytest` works);
# the project's code is not installed but copied to /app, so a clone mounted there runs its own
RUN --mount=type=cache,target=/root/.cache/uv --mount=type=secret,id=ca \
    --mount=type=bind,source=requirements.lock,target=/tmp/requirements.lock \
    if [ -f /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca PIP_CERT=/run/secrets/ca; fi \
    && python3 -m venv /opt/uv && /opt/uv/bin/python -m pip install --quiet --no-cache-dir uv \
    && python3 -m venv /opt/venv \
    && /opt/uv/bin/uv pip sync --python /opt/venv/bin/python --require-hashes /tmp/requirements.lock

FROM ${BASE_IMAGE} AS runtime
# git: DVC and MLflow read the clone's commit; libgomp1: the OpenMP runtime of CatBoost/LightGBM
RUN apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends git libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 ml
COPY --from=build /opt/venv /opt/venv
# outside /app: a clone mounted there (any version of it) does not hide them
COPY docker/entrypoint.sh docker/healthcheck.sh /usr/local/bin/
COPY --chown=ml:ml . /app
# the image's own copy of the project has no git history: DVC runs without SCM there (a mounted
# clone at /app hides this file and brings its own .git)
RUN printf '[core]\n    no_scm = true\n' > /app/.dvc/config.local && chown ml:ml /app/.dvc/config.local
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    DVC_NO_ANALYTICS=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK=true \
    MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD=false \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    GRADIO_ANALYTICS_ENABLED=False \
    ML_PIPELINES_ROOT=/app \
    SERVE_PORT=7860 \
    PREFECT_WORKER_WEBSERVER_PORT=8080
USER ml
WORKDIR /app
EXPOSE 7860 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 CMD ["healthcheck.sh"]
ENTRYPOINT ["entrypoint.sh"]
CMD ["serve"]
