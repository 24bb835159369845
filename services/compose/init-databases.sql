-- one PostgreSQL for the team: MLflow's tracking store, MLflow's users and permissions, Prefect
CREATE DATABASE mlflow;
CREATE DATABASE mlflow_auth;
CREATE DATABASE prefect;
