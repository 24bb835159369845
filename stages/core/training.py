"""Torch training through Lightning: device choice (cuda > mps > cpu), seeding, mixed precision
on GPU, progress only on a terminal, and per-epoch metrics into the active MLflow run."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

log = logging.getLogger(__name__)


def resolve_device(preference: str) -> str:
    """`auto` picks CUDA, then Apple MPS, then the CPU; an explicit choice must exist."""
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": getattr(torch.backends, "mps", None) is not None
        and torch.backends.mps.is_available(),
        "cpu": True,
    }
    if preference == "auto":
        return next(d for d in ("cuda", "mps", "cpu") if available[d])
    if not available[preference]:
        from stages.core.errors import UserError

        raise UserError(f"params.yaml: common.device: {preference!r} is not available here")
    return preference


def native_bf16_cpu() -> bool:
    """The CPU computes in bf16 itself, so oneDNN runs bf16 convolutions and matrix products
    natively: AMX tiles (a Xeon here: UNet 246 -> 103 ms a step, FCOS 783 -> 402) or AVX512-BF16
    (an AMD EPYC here: FCOS 527 -> 308 ms); without either, bf16 is emulated and slower than
    float32."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # torch's own (private)
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def precision_for(device: str, bf16_on_cpu: bool = False) -> str:
    """Mixed precision on CUDA; on a CPU only for models that gain from it (`bf16_on_cpu`:
    depthwise convolutions and small regressions do not) and only with AMX."""
    if device == "cuda":
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if device == "cpu" and bf16_on_cpu and native_bf16_cpu():
        return "bf16-mixed"
    return "32-true"


def seed_everything(seed: int) -> None:
    pl.seed_everything(seed, workers=True, verbose=False)


class MlflowEpochMetrics(pl.Callback):
    """Logs what the module logged per epoch (loss, validation metrics) to the active MLflow run,
    with the epoch as the step, so the MLflow UI draws training curves."""

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        import mlflow

        if mlflow.active_run() is None:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        if metrics:
            mlflow.log_metrics(metrics, step=trainer.current_epoch)


def make_trainer(
    device: str, max_epochs: int, bf16_on_cpu: bool = False, **overrides: Any
) -> pl.Trainer:
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no banner, no tips
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # torch 2.13 vs Lightning 2.6
    options: dict[str, Any] = {
        "accelerator": device,
        "devices": 1,
        "max_epochs": max_epochs,
        "precision": precision_for(device, bf16_on_cpu),
        "gradient_clip_val": 1.0,
        "logger": False,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        "enable_progress_bar": sys.stderr.isatty(),
        "callbacks": [MlflowEpochMetrics()],
        "benchmark": device == "cuda",  # cuDNN picks the fastest kernels for the fixed sizes
    }
    if device == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 for what runs outside autocast
    options.update(overrides)
    return pl.Trainer(**options)


def loader_options(device: str) -> dict[str, Any]:
    """Pinned memory only helps host-to-GPU copies; worker processes only pay off on a GPU,
    where the per-item decoding and augmentation must keep up with it: one worker per spare
    core (up to 8), kept between epochs instead of restarted."""
    if device != "cuda":
        return {"pin_memory": False, "num_workers": 0}
    workers = min(8, max(2, (os.cpu_count() or 2) - 1))
    return {"pin_memory": True, "num_workers": workers, "persistent_workers": True}


class EpochHistory(pl.Callback):
    """Keeps every epoch's logged metrics (train and validation) for the report's curves."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        row = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        self.rows.append({"epoch": trainer.current_epoch, **row})

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = state["rows"]


def checkpoint_dir(root: Path, task: str, config: Any, inputs: Path) -> Path:
    """`.checkpoints/<task>/<fingerprint>/`: an interrupted training may be resumed only by one
    with the same configuration (JSON-able) and the same cached input files (name and size)."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for path in sorted(inputs.glob("*.pt")):
        digest.update(f"{path.name}:{path.stat().st_size}".encode())
    return root / ".checkpoints" / task / digest.hexdigest()[:16]


def training_budget(
    batches_per_epoch: int, epochs: int, patience: int | None, min_steps: int
) -> tuple[int, int | None]:
    """The rule for small data: at least `min_steps` optimizer steps. When `epochs` full passes
    give fewer, the epochs become ceil(min_steps / batches per epoch) and early stopping's
    patience grows by the same factor (it counts epochs, which are now shorter)."""
    batches_per_epoch = max(batches_per_epoch, 1)
    if epochs * batches_per_epoch >= min_steps:
        return epochs, patience
    raised = math.ceil(min_steps / batches_per_epoch)
    scaled = None if patience is None else math.ceil(patience * raised / epochs)
    log.info(
        "%d batches per epoch: %d epochs instead of %d for at least %d optimizer steps "
        "(train.min_steps)",
        batches_per_epoch,
        raised,
        epochs,
        min_steps,
    )
    return raised, scaled


def budget(params: Any, train_items: int) -> tuple[int, int | None]:
    """training_budget for a train section (batch_size, epochs, patience, min_steps) over
    `train_items` examples in plain batches. Decided before the module is built: its learning
    rate schedule must span the epochs that will run."""
    batches = math.ceil(train_items / params.batch_size)
    return training_budget(batches, params.epochs, params.patience, params.min_steps)


DID_NOT_LEARN_HINT = (
    "try more optimizer steps (train.min_steps or epochs), another learning_rate, pretrained "
    "weights, or check the labels"
)


def learning_verdict(rows: list[dict[str, float]], monitor: str, near_zero: float) -> str | None:
    """Why a model did not learn, from its per-epoch validation metric (higher is better): it
    stayed below `near_zero`, or it never rose above its first epoch. None when it learned."""
    values = [row[monitor] for row in rows if monitor in row]
    if not values:
        return None
    best, first = max(values), values[0]
    if best < near_zero:
        return f"{monitor} stayed near zero (best {best:.4f} < {near_zero:g})"
    if len(values) > 1 and best <= first:
        return f"{monitor} never rose above its first epoch's {first:.4f} in {len(values)} epochs"
    return None


def did_not_learn(name: str, rows: list[dict[str, float]], monitor: str, near_zero: float):
    """The sentence for the report and the log (a warning) when `name` did not learn."""
    verdict = learning_verdict(rows, monitor, near_zero)
    if verdict is None:
        return None
    sentence = f"{name} did not learn: {verdict}; {DID_NOT_LEARN_HINT}"
    log.warning(sentence)
    return sentence


def fit_on_datasets(
    module: pl.LightningModule,
    train_set: Any,
    val_set: Any,
    params: Any,
    device: str,
    checkpoints: Path,
    monitor: str,
    collate_fn: Any = None,
    bf16_on_cpu: bool = False,
) -> tuple[pl.LightningModule, list[dict[str, float]], int]:
    """`fit_resumable` on shuffled training batches and double-size validation batches;
    `params` is a task's train section (batch_size, epochs, patience, min_steps: `budget`)."""
    from torch.utils.data import DataLoader

    epochs, patience = budget(params, len(train_set))

    options = {**loader_options(device), "collate_fn": collate_fn}
    train_loader = DataLoader(train_set, params.batch_size, shuffle=True, **options)
    val_loader = DataLoader(val_set, params.batch_size * 2, **options)
    return fit_resumable(
        module,
        train_loader,
        val_loader,
        device,
        epochs,
        checkpoints,
        monitor=monitor,
        mode="max",
        patience=patience,
        bf16_on_cpu=bf16_on_cpu,
    )


def fit_resumable(
    module: pl.LightningModule,
    train_loader: Any,
    val_loader: Any,
    device: str,
    max_epochs: int,
    checkpoints: Path,
    monitor: str,
    mode: str = "max",
    patience: int | None = None,
    every_n_train_steps: int = 20,
    extra_callbacks: list[pl.Callback] | None = None,
    bf16_on_cpu: bool = False,
) -> tuple[pl.LightningModule, list[dict[str, float]], int]:
    """Fit with a checkpoint every epoch and every few steps in `checkpoints`; if a previous run
    of the same configuration was interrupted there, continue from its last checkpoint instead
    of starting over. Returns the module with the best weights (by `monitor`), the per-epoch
    history, and the optimizer step it resumed from (0 for a fresh start)."""
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    checkpoints.mkdir(parents=True, exist_ok=True)
    last = checkpoints / "last.ckpt"
    resumed = last.is_file()
    resumed_at = (
        int(torch.load(last, map_location="cpu", weights_only=False)["global_step"])
        if resumed
        else 0
    )
    history = EpochHistory()
    best = ModelCheckpoint(
        dirpath=checkpoints,
        filename="best",
        monitor=monitor,
        mode=mode,
        save_top_k=1,
        enable_version_counter=False,
    )
    latest = ModelCheckpoint(
        dirpath=checkpoints,
        filename="step",
        save_last=True,
        every_n_train_steps=every_n_train_steps,
        save_top_k=1,
        enable_version_counter=False,
    )
    callbacks: list[pl.Callback] = [
        history,
        best,
        latest,
        MlflowEpochMetrics(),
        *(extra_callbacks or []),
    ]
    if patience is not None:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=patience))
    trainer = make_trainer(
        device, max_epochs, bf16_on_cpu, enable_checkpointing=True, callbacks=callbacks
    )
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(last) if resumed else None)
    if best.best_model_path:
        state = torch.load(best.best_model_path, map_location="cpu", weights_only=False)
        module.load_state_dict(state["state_dict"])
    return module, history.rows, resumed_at


@dataclass
class TrainedMember:
    """One trained model of a task's list (or grid): its best-epoch network, on the CPU in eval
    mode, with the per-epoch history and the row of its best epoch."""

    network: torch.nn.Module
    rows: list[dict[str, float]]
    best: dict[str, float]
    seconds: float
    resumed_at: int
    did_not_learn: str | None = None

    def summary(self, monitor: str) -> dict[str, Any]:
        """The columns every task's selection table has."""
        return {
            f"best_{monitor}": self.best[monitor],
            "best_epoch": int(self.best["epoch"]),
            "epochs": len(self.rows),
            "parameters": sum(p.numel() for p in self.network.parameters()),
            "seconds": self.seconds,
            "resumed_at_step": self.resumed_at,
            "did_not_learn": self.did_not_learn,
        }


Fit = Callable[[Path], tuple[pl.LightningModule, list[dict[str, float]], int]]


def member_workers(device: str, members: int) -> int:
    """How many members train side by side: on a CPU one per thread torch may use (each then
    gets a share of them), since these small models use a second thread poorly (2 cores: nmt's
    two models 443.8 -> 338.8 s, segmentation's 15 pairs 124.3 -> 103.6 s); on a GPU one at a
    time, the device is shared anyway."""
    if device != "cpu":
        return 1
    return max(1, min(members, torch.get_num_threads()))


def _fit_member(
    fit: Fit, folder: Path, threads: int
) -> tuple[torch.nn.Module, list[dict[str, float]], int, float]:
    """One member in a worker process: its best network on the CPU, history, resumed step and
    seconds (what the parent logs and keeps)."""
    torch.set_num_threads(threads)
    started = time.perf_counter()
    module, rows, resumed_at = fit(folder)
    seconds = round(time.perf_counter() - started, 1)
    return module.network.to("cpu").eval(), rows, resumed_at, seconds


def _fit_side_by_side(
    members: list[tuple[str, Mapping[str, Any], Fit]], checkpoints: Path, workers: int
) -> dict[str, tuple[torch.nn.Module, list[dict[str, float]], int, float]]:
    from stages.core.processes import worker_pool

    threads = max(1, torch.get_num_threads() // workers)
    log.info("%d members side by side, %d thread(s) each", workers, threads)
    with worker_pool(workers, threads) as pool:
        futures = {
            name: pool.submit(_fit_member, fit, checkpoints / name, threads)
            for name, _, fit in members
        }
        return {name: future.result() for name, future in futures.items()}


def train_members(
    members: Iterable[tuple[str, Mapping[str, Any], Fit]],
    monitor: str,
    checkpoints: Path,
    near_zero: float,
    workers: int = 1,
) -> dict[str, TrainedMember]:
    """Train each (name, params logged, fit) member as a nested MLflow run of the active task
    run: `fit(checkpoints / name)` returns what `fit_resumable` does; the member's best-epoch
    metrics are logged as `best_<metric>`, and a member that did not learn (`monitor` below
    `near_zero` or never above its first epoch) is said so in the log and its summary.

    With `workers` > 1 (`member_workers`) the members train side by side in worker processes
    (each `fit` must then pickle: a module-level function with its arguments bound); their
    per-epoch curves reach MLflow when they end instead of live."""
    from stages.core import tracking

    members = list(members)
    side_by_side = _fit_side_by_side(members, checkpoints, workers) if workers > 1 else {}
    trained = {}
    for name, run_params, fit in members:
        started = time.perf_counter()
        with tracking.member_run(name, run_params):
            if name in side_by_side:
                network, rows, resumed_at, seconds = side_by_side[name]
                for row in rows:
                    epoch = int(row["epoch"])
                    tracking.log_metrics({k: v for k, v in row.items() if k != "epoch"}, epoch)
            else:
                module, rows, resumed_at = fit(checkpoints / name)
                network = module.network.to("cpu").eval()
                seconds = round(time.perf_counter() - started, 1)
            best = max(rows, key=lambda row: row.get(monitor, -math.inf))
            tracking.log_metrics({f"best_{k}": v for k, v in best.items()})
        verdict = did_not_learn(name, rows, monitor, near_zero)
        trained[name] = TrainedMember(network, rows, best, seconds, resumed_at, verdict)
        log.info(f"{name:<28} {monitor} {best[monitor]:.4f}  ({seconds:.1f} s)")
    return trained


def select_member(trained: Mapping[str, TrainedMember], monitor: str, tag: str) -> str:
    """The member with the highest best `monitor`, logged to the active run as
    `selected_<monitor>` and the tag `tag`."""
    import mlflow

    from stages.core import tracking

    selected = max(trained, key=lambda name: trained[name].best[monitor])
    tracking.log_metrics({f"selected_{monitor}": trained[selected].best[monitor]})
    mlflow.set_tag(tag, selected)
    return selected
