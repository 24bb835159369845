"""The services a team shares: PostgreSQL, an S3 store, the MLflow server, the Prefect server."""
