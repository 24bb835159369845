"""Torch training through Lightning: device choice (cuda > mps > cpu), seeding, mixed precision
on GPU, progress only on a terminal, and per-epoch metrics into the active MLflow run."""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any

import lightning.pytorch as pl
import torch


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


def precision_for(device: str) -> str:
    if device == "cuda":
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
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


def make_trainer(device: str, max_epochs: int, **overrides: Any) -> pl.Trainer:
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no banner, no tips
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # torch 2.13 vs Lightning 2.6
    options: dict[str, Any] = {
        "accelerator": device,
        "devices": 1,
        "max_epochs": max_epochs,
        "precision": precision_for(device),
        "gradient_clip_val": 1.0,
        "logger": False,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        "enable_progress_bar": sys.stderr.isatty(),
        "callbacks": [MlflowEpochMetrics()],
    }
    options.update(overrides)
    return pl.Trainer(**options)


def loader_options(device: str) -> dict[str, Any]:
    """Pinned memory only helps host-to-GPU copies; worker processes only pay off on a GPU."""
    return {"pin_memory": device == "cuda", "num_workers": 2 if device == "cuda" else 0}
