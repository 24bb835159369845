"""Prefect flows that run the DVC graph: `python -m flows run [TASK]` here, or deployments from
prefect.yaml on a work pool. DVC still decides what is up to date; Prefect adds parallelism,
GPU slots, retries, schedules and a UI."""
