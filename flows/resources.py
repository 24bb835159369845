"""What the flows need from a Prefect server: the `gpu` and `cpu` work pools and one global
concurrency limit (one slot) per GPU. `python -m flows setup` creates what is missing and leaves
what exists alone, so it is safe to run on every host."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

WORK_POOLS = ("gpu", "cpu")


def accelerator_limit(environ: Mapping[str, str] | None = None, host: str | None = None) -> str:
    """The limit that guards the GPU this process may use: `gpu-<host>-<CUDA_VISIBLE_DEVICES>`.

    Named after the host too because GPU 0 of one machine and GPU 0 of another are different
    GPUs. Without CUDA_VISIBLE_DEVICES a process uses GPU 0 (or the CPU, which the same slot
    keeps from being shared by two torch trainings).
    """
    environ = os.environ if environ is None else environ
    visible = environ.get("CUDA_VISIBLE_DEVICES", "").strip() or "0"
    return f"gpu-{host or socket.gethostname()}-{visible.replace(',', '+')}"


def local_gpu_limits(gpus: int) -> list[str]:
    host = socket.gethostname()
    return [accelerator_limit({"CUDA_VISIBLE_DEVICES": str(i)}, host) for i in range(max(gpus, 1))]


def ensure_limits(names: list[str]) -> list[str]:
    """Create each missing limit with one slot; returns the names it created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    created = []
    with get_client(sync_client=True) as client:
        for name in names:
            try:
                client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1)
                )
                created.append(name)
    return created


def ensure_work_pools(names: tuple[str, ...] = WORK_POOLS) -> list[str]:
    """Create each missing `process` work pool; returns the names it created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    created = []
    with get_client(sync_client=True) as client:
        for name in names:
            try:
                client.read_work_pool(name)
            except ObjectNotFound:
                client.create_work_pool(
                    WorkPoolCreate(
                        name=name,
                        type=ProcessWorker.type,
                        base_job_template=ProcessWorker.get_default_base_job_template(),
                    )
                )
                created.append(name)
    return created


def detected_gpus() -> int:
    import torch

    return torch.cuda.device_count()


GPU_SLOT = "ML_PIPELINES_GPU_SLOT"  # auto (default) | on | off


def stages_take_the_gpu_slot(environ: Mapping[str, str] | None = None, gpus=detected_gpus) -> bool:
    """Whether the accelerated stages of a graph run take the GPU's slot, one at a time: with
    `auto`, when torch sees a GPU here. Without one they are CPU work and run side by side like
    any other, each with its share of the cores: on 2 cores, two 1-thread trainings side by
    side get more done than one after the other with 2 threads each (simpsons: 138 s at 1
    thread, 107 s at 2). `on` / `off` decide it by hand."""
    environ = os.environ if environ is None else environ
    choice = environ.get(GPU_SLOT, "auto").strip().lower() or "auto"
    if choice not in ("auto", "on", "off"):
        raise ValueError(f"{GPU_SLOT}={choice!r}: expected auto, on or off")
    return choice == "on" or (choice == "auto" and gpus() > 0)


CRASH_AUTOMATION = "crash flow runs whose host stopped"


def ensure_crash_detection(after_seconds: int) -> bool:
    """Prefect's way to notice a dead host: a flow run sends a heartbeat event every
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds (default 180); this automation marks a run CRASHED
    when `after_seconds` pass without one and without a final state. True if it created it."""
    from datetime import timedelta

    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture

    try:
        Automation.read(name=CRASH_AUTOMATION)
        return False
    except ValueError:  # not found
        pass
    Automation(
        name=CRASH_AUTOMATION,
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match={"prefect.resource.id": ["prefect.flow-run.*"]},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=after_seconds),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {after_seconds} s: the host or its worker died",
            )
        ],
    ).create()
    return True
