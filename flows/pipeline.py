"""The flows: `task-pipeline` runs one task's DVC stages, `full-pipeline` the whole graph.

Each DVC stage is one Prefect task run (`dvc --wait-for-lock repro -s <stage>`, its output
streamed into the task run's logs), so DVC still decides what is up to date. A stage starts as
soon as the stages it depends on have completed, up to `parallelism` at once (no waiting for
the slowest stage of a graph level: nmt's training runs while the other tasks go on beside it);
on a host with a GPU, a stage listed in its task's ACCELERATED_STEPS first takes the one slot
of the GPU's global concurrency limit (ML_PIPELINES_GPU_SLOT=on|off decides it by hand). A
failed stage is retried with back-off unless it failed for a user error (exit 2: bad data or
params); stages downstream of a failure are skipped, independent ones still run.

With a DVC remote configured (the clone's default remote), hosts share their work through it:
a stage runs as `dvc repro --pull`, which restores it from the remote's run-cache when any host
already ran it with the same code, data and params, and a stage that succeeded is pushed with
its run-cache entry (`dvc push --run-cache`). A failed stage's outputs are brought back to the
last good ones (`dvc checkout`). A stage runs in a process group of its own, stopped whole when
the flow run is cancelled or fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency
from prefect.futures import PrefectFuture, as_completed
from prefect.tasks import exponential_backoff

from flows.graph import Stage, levels, needs_accelerator, read_graph, select
from flows.resources import accelerator_limit, stages_take_the_gpu_slot
from stages.core.errors import USER_ERROR_EXIT, UserError
from stages.core.params import PARAMS_FILE, parse_params
from stages.core.processes import THREAD_VARIABLES
from stages.core.rendering import markdown_table

METRICS_ARTIFACT = "pipeline-metrics"


class StageFailed(Exception):
    def __init__(self, stage: str, reason: str, user_error: bool):
        kind = "user error, not retried" if user_error else "failed"
        super().__init__(f"{stage}: {reason} ({kind})")
        self.user_error = user_error


def failure_reason(lines: list[str], returncode: int) -> tuple[str, bool]:
    """The line that explains a failed `dvc repro`, and whether the user must fix something.

    The stages CLI prints `error: ...` and exits 2 for user errors (bad data, bad params);
    DVC reports the exit status as `..., exited with 2`.
    """
    errors = [line for line in lines if line.startswith("error: ")]
    dvc_errors = [line for line in lines if line.startswith("ERROR: ")]
    user_error = any(line.rstrip().endswith(f"exited with {USER_ERROR_EXIT}") for line in lines)
    reason = (errors or dvc_errors or [f"dvc repro exited with {returncode}"])[-1]
    return reason.removeprefix("error: ").removeprefix("ERROR: "), user_error


def stage_environment(threads: int | None = None) -> dict[str, str]:
    """The interpreter running the flow goes first on PATH, so `python -m stages` is this one.
    With `threads`, the stage's torch / BLAS thread pools get that many unless the user set
    them: on 2 cores a torch training beside another one, each with a thread per core, took
    340 s instead of 46 s."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(PYTHONUNBUFFERED="1", DVC_NO_ANALYTICS="1")
    if threads is not None:
        for name in THREAD_VARIABLES:
            env.setdefault(name, str(threads))
    return env


def threads_per_stage(cores: int, parallelism: int, stages: int) -> int:
    """The cores shared out among the stages that run side by side."""
    return max(1, cores // max(1, min(parallelism, stages)))


def dvc_command(*args: str) -> list[str]:
    """DVC under `setpriv --pdeathsig KILL` where util-linux has it: DVC then dies with the flow
    run's process even when that is SIGKILLed, and the stage command follows DVC
    (stages/core/processes.py), so no training outlives its flow run."""
    command = [sys.executable, "-m", "dvc", "--wait-for-lock", *args]
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *command] if setpriv else command


def dvc_remote(root: Path) -> str | None:
    """The clone's default DVC remote (`.dvc/config` or `.dvc/config.local`); None: nothing is
    pulled or pushed, as on one machine."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return repo.config["core"].get("remote")


def repro(stage: Stage, root: Path, force: bool, remote: str | None, threads: int) -> None:
    logger = get_run_logger()
    command = dvc_command("repro", "--single-item", stage.name)
    if force:
        command.append("--force")
    if remote:
        command.append("--pull")
    try:
        stream(command, root, stage.name, threads)
    except StageFailed:
        restore_last_outputs(stage, root)
        raise
    if remote and stage.restorable:
        started = time.monotonic()
        stream(dvc_command("push", "--run-cache", stage.name), root, f"{stage.name} (push)")
        logger.info(f"pushed {stage.name} to remote {remote} in {time.monotonic() - started:.1f} s")


def restore_last_outputs(stage: Stage, root: Path) -> None:
    """DVC deleted the stage's outputs before running it: put back the ones dvc.lock records
    (the last good run) from the cache. A stage that never succeeded has none to put back."""
    logger = get_run_logger()
    if not stage.restorable:
        return
    result = subprocess.run(
        dvc_command("checkout", stage.name),
        cwd=root,
        env=stage_environment(),
        capture_output=True,
        text=True,
    )
    if result.returncode == 0:
        logger.info(f"{stage.name} failed: its last good outputs are back (dvc checkout)")
    else:
        logger.warning(f"{stage.name} failed and has no earlier outputs to put back")


def set_arguments(task_name: str, overrides: dict | list[str], root: Path) -> list[str]:
    """Overrides as `dvc exp run -S` arguments, checked first against the params models: a bad
    one fails here with the params error line. Accepts {"churn.train.cv.folds": 3} or
    ["churn.train.cv.folds=3"]."""
    pairs = (
        list(overrides.items())
        if isinstance(overrides, dict)
        else [tuple(item.split("=", 1)) if "=" in item else (item, None) for item in overrides]
    )
    raw = yaml.safe_load((root / PARAMS_FILE).read_text(encoding="utf-8"))
    arguments = []
    for key, value in pairs:
        if value is None or not key.startswith(f"{task_name}."):
            raise UserError(
                f"overrides: {key!r}: expected '<key>=<value>' with a key of {task_name!r} "
                f"(e.g. {task_name}.train...)"
            )
        if isinstance(value, str) and not isinstance(overrides, dict):
            value = yaml.safe_load(value)  # the -S form: YAML values, as DVC reads them
        set_dotted(raw, key, value)
        arguments += ["-S", f"{key}={json.dumps(value)}"]
    parse_params(raw, source=f"{PARAMS_FILE} with overrides")
    return arguments


def set_dotted(tree: dict, key: str, value) -> None:
    *path, last = key.split(".")
    node = tree
    for part in path:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


@task(task_run_name="experiment {task_name}", cache_policy=NO_CACHE)
def run_experiment(task_name: str, arguments: list[str], root: str, gpu_limit: str | None) -> str:
    """The task's stages as a DVC experiment in a temporary copy (`dvc exp run --temp`): the
    workspace's params.yaml stays as it is; the registry judges the new version as usual."""
    command = dvc_command("exp", "run", "--temp", *arguments, f"report@{task_name}")
    if gpu_limit is None:
        stream(command, Path(root), f"experiment {task_name}")
    else:
        with concurrency(gpu_limit, occupy=1, strict=True):
            stream(command, Path(root), f"experiment {task_name}")
    return task_name


_RUNNING: set[subprocess.Popen] = set()  # DVC commands of this flow run, each its own group
_RUNNING_LOCK = threading.Lock()


def stop_process_group(process: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM to DVC and the stage command it started (one process group), SIGKILL after
    `grace` seconds: DVC does not pass a SIGTERM on, the training would go on alone."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        process.poll()  # reap DVC so that only live processes keep the group
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def stop_running_stages() -> None:
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for process in running:
        stop_process_group(process)


def stream(command: list[str], root: Path, stage: str, threads: int | None = None) -> None:
    """Run a DVC command with its output in the task run's log; a failure names its reason."""
    logger = get_run_logger()
    lines = []
    with subprocess.Popen(
        command,
        cwd=root,
        env=stage_environment(threads),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,
    ) as process:
        with _RUNNING_LOCK:
            _RUNNING.add(process)
        try:
            for line in process.stdout:
                line = line.rstrip()
                lines.append(line)
                logger.info(line)
            process.wait()
        finally:
            if process.poll() is None:  # this thread was interrupted, the stage still runs
                stop_process_group(process)
            with _RUNNING_LOCK:
                _RUNNING.discard(process)
    if process.returncode != 0:
        reason, user_error = failure_reason(lines, process.returncode)
        raise StageFailed(stage, reason, user_error)


def retry_unless_user_error(task, task_run, state) -> bool:
    return not (isinstance(state.data, StageFailed) and state.data.user_error)


@task(
    task_run_name="{stage.name}",
    cache_policy=NO_CACHE,
    retry_condition_fn=retry_unless_user_error,
)
def run_stage(
    stage: Stage, root: str, gpu_limit: str | None, force: bool, remote: str | None, threads: int
) -> str:
    if gpu_limit is None:
        repro(stage, Path(root), force, remote, threads)
    else:
        get_run_logger().info(f"waiting for the GPU slot {gpu_limit}")
        with concurrency(gpu_limit, occupy=1, strict=True):
            repro(stage, Path(root), force, remote, threads)
    return stage.name


def metrics_markdown(root: Path, tasks: list[str]) -> str:
    """Each task's headline and the table of the split it is judged on, from metrics.json."""
    parts = ["# Metrics of this run", ""]
    for name in tasks:
        path = root / "reports" / name / "metrics.json"
        if not path.is_file():
            parts += [f"## {name}", "", "no metrics.json (the task did not get that far)", ""]
            continue
        metrics = json.loads(path.read_text())
        headline = metrics.get("headline", {})
        split = headline.get("split")
        title = (
            f"## {name}: {headline.get('metric', '?')} {headline.get('value', float('nan')):.4f}"
        )
        parts += [f"{title} ({split})" if split else title, ""]
        table = metrics.get(split)
        if isinstance(table, dict) and table:
            if all(isinstance(v, dict) for v in table.values()):
                frame = pd.DataFrame(table).T.rename_axis("model").reset_index()
            else:
                frame = pd.DataFrame([table])
            parts += [markdown_table(frame), ""]
    return "\n".join(parts)


def run_when_ready(
    graph: dict[str, Stage], parallelism: int, start, on_gpu, cores: int
) -> tuple[dict[str, list[str]], list[str]]:
    """Runs every stage of `graph` once the stages upstream of it completed, at most
    `parallelism` at a time; returns the outcome (completed / failed / skipped names) and the
    failures' reasons. A stage downstream of a failed or skipped one is skipped.

    Of the ready stages, the one furthest along its chain goes first, so a task started is
    finished before another begins. While a GPU stage runs, CPU stages go first: a second GPU
    stage would only wait for the GPU's slot while holding a place a CPU stage could use.
    `start(stage, threads)` gets the cores shared among the stages running and ready then.
    """
    depth = {name: number for number, level in enumerate(levels(graph)) for name in level}
    upstream = {name: stage.upstream & graph.keys() for name, stage in graph.items()}
    waiting = set(graph)
    running: list[tuple[Stage, PrefectFuture]] = []
    outcome: dict[str, list[str]] = {"completed": [], "failed": [], "skipped": []}
    reasons: list[str] = []
    while waiting or running:
        blocked = {*outcome["failed"], *outcome["skipped"]}
        for name in sorted(waiting, key=depth.get):  # upstream first: skips pass down at once
            if upstream[name] & blocked:
                waiting.remove(name)
                outcome["skipped"].append(name)
                blocked.add(name)
        done_names = set(outcome["completed"])
        ready = sorted(
            (name for name in waiting if upstream[name] <= done_names),
            key=lambda name: (-depth[name], name),
        )
        while ready and len(running) < parallelism:
            gpu_busy = any(on_gpu(stage) for stage, _ in running)
            name = next((n for n in ready if not (gpu_busy and on_gpu(graph[n]))), None)
            if name is None:
                break  # only GPU stages are ready and the GPU is taken: wait for a stage to end
            ready.remove(name)
            waiting.remove(name)
            threads = threads_per_stage(cores, parallelism, len(running) + 1 + len(ready))
            running.append((graph[name], start(graph[name], threads)))
        if not running:
            break
        done = next(as_completed([future for _, future in running]))
        done.wait()  # records the final state in the future (the API may lag behind)
        stage, future = next(entry for entry in running if entry[1] is done)
        running.remove((stage, future))
        if future.state.is_completed():
            outcome["completed"].append(stage.name)
        else:
            outcome["failed"].append(stage.name)
            reasons.append(str(future.result(raise_on_failure=False)))
    return outcome, reasons


def run_graph(
    task_name: str | None,
    parallelism: int | None,
    force: bool,
    retries: int,
    retry_delay: float,
    root: str | None,
) -> dict[str, list[str]]:
    logger = get_run_logger()
    root_path = Path(root or Path.cwd()).resolve()
    graph = select(read_graph(root_path), task_name)
    cores = os.cpu_count() or 1
    parallelism = parallelism or cores
    gpu_limit = accelerator_limit()
    on_gpu = needs_accelerator if stages_take_the_gpu_slot() else lambda stage: False
    remote = dvc_remote(root_path)
    logger.info(f"DVC remote: {remote}" if remote else "no DVC remote: nothing pulled or pushed")
    stage_task = run_stage.with_options(
        retries=retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=retry_delay)(retries),
    )

    def start(stage: Stage, threads: int) -> PrefectFuture:
        logger.info(f"starting {stage.name} ({threads} CPU threads)")
        limit = gpu_limit if on_gpu(stage) else None
        return stage_task.submit(stage, str(root_path), limit, force, remote, threads)

    try:
        outcome, reasons = run_when_ready(graph, parallelism, start, on_gpu, cores)
    except BaseException:  # cancelled (SIGTERM from the worker) or crashed: no stage outlives it
        stop_running_stages()
        raise

    attempted = [*outcome["completed"], *outcome["failed"]]
    tasks = list(dict.fromkeys(graph[s].task for s in attempted if graph[s].task))
    create_markdown_artifact(
        key=METRICS_ARTIFACT,
        markdown=metrics_markdown(root_path, tasks),
        description=f"metrics of {', '.join(tasks) or 'no task'}",
    )
    if outcome["failed"]:
        skipped = (
            f"; skipped downstream: {', '.join(outcome['skipped'])}" if outcome["skipped"] else ""
        )
        raise RuntimeError("; ".join(reasons) + skipped)
    return outcome


@flow(name="task-pipeline")
def task_pipeline(
    task: str,
    parallelism: int | None = None,
    force: bool = False,
    retries: int = 2,
    retry_delay: float = 10.0,
    root: str | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
) -> dict[str, list[str]]:
    """Run one task's DVC stages (and the summary after them).

    parallelism: stages run at once, each when its upstream stages completed (default: the
        number of cores).
    force: re-run stages even when DVC finds them up to date (`dvc repro --force`).
    retries: attempts after a failure that was not a user error.
    retry_delay: seconds before the first retry; each next one waits twice as long.
    root: the repository (default: the working directory the deployment's pull step set).
    overrides: train a challenger with other params, e.g. {"churn.train.cv.folds": 3}, as a DVC
        experiment (`dvc exp run --temp -S ...`): params.yaml is not edited, the new version is
        registered and judged against the champion on the same data.
    """
    if overrides:
        root_path = Path(root or Path.cwd()).resolve()
        arguments = set_arguments(task, overrides, root_path)
        on_gpu = any(needs_accelerator(s) for s in select(read_graph(root_path), task).values())
        run_experiment(task, arguments, str(root_path), accelerator_limit() if on_gpu else None)
        return {"completed": [f"experiment {task}"], "failed": [], "skipped": []}
    return run_graph(task, parallelism, force, retries, retry_delay, root)


@flow(name="full-pipeline")
def full_pipeline(
    parallelism: int | None = None,
    force: bool = False,
    retries: int = 2,
    retry_delay: float = 10.0,
    root: str | None = None,
) -> dict[str, list[str]]:
    """Run every stage of dvc.yaml; parameters as for task-pipeline."""
    return run_graph(None, parallelism, force, retries, retry_delay, root)
