"""train: every (model, loss) pair of the grid in params, each a nested MLflow run with its
per-epoch curves, keeping its best epoch by validation IoU; the pair with the best validation
IoU is logged and registered as the task's model. Checkpoints make an interrupted grid continue
where it stopped (finished pairs are not trained again)."""

from __future__ import annotations

import logging
import shutil
import time

import pandas as pd
import torch

from stages.core import tracking
from stages.core.context import StepContext
from stages.core.fsio import dump_json, staged_outputs
from stages.core.training import (
    checkpoint_dir,
    fit_on_datasets,
    resolve_device,
    seed_everything,
)
from stages.segmentation.model import CachedPairs, LesionSegmenter, parameter_count
from stages.segmentation.params import ModelSpec, TrainParams

log = logging.getLogger(__name__)
PAIRS_DIR, HISTORY_FILE, SELECTION_FILE = "pairs", "history.csv", "selection.json"


def pair_name(model: ModelSpec, loss: str) -> str:
    return f"{model.name}+{loss}"


def grid(params: TrainParams) -> list[tuple[ModelSpec, str]]:
    return [(model, loss) for model in params.models for loss in params.losses]


def train_pair(
    model: ModelSpec,
    loss: str,
    params: TrainParams,
    data: tuple[dict, dict],
    device: str,
    seed: int,
    checkpoints,
) -> tuple[LesionSegmenter, list[dict], int]:
    seed_everything(seed)
    module = LesionSegmenter(
        model.model_dump(), loss, params.learning_rate, params.weight_decay, params.epochs
    )
    if device == "cuda":
        module = module.to(memory_format=torch.channels_last)
    train, val = data
    return fit_on_datasets(
        module,
        CachedPairs(train, augment=True),
        CachedPairs(val, augment=False),
        params,
        device,
        checkpoints,
        monitor="val_iou",
    )


def run(ctx: StepContext) -> None:
    params: TrainParams = ctx.task_params.train
    processed = ctx.paths.processed
    data = (torch.load(processed / "train.pt"), torch.load(processed / "val.pt"))
    device = resolve_device(ctx.common.device)
    checkpoints = checkpoint_dir(
        ctx.root, ctx.task, [params.model_dump(), ctx.common.seed], processed
    )

    results, networks, history = {}, {}, []
    with tracking.task_run(ctx.task, ctx.stage, ctx.root, [processed]) as run:
        tracking.log_params({"train": params.model_dump(), "common": ctx.common.model_dump()})
        for model, loss in grid(params):
            name = pair_name(model, loss)
            started = time.perf_counter()
            with tracking.member_run(name, {"model": model.model_dump(), "loss": loss}):
                module, rows, resumed_at = train_pair(
                    model, loss, params, data, device, ctx.common.seed, checkpoints / name
                )
                best = max(rows, key=lambda row: row.get("val_iou", -1.0))
                tracking.log_metrics({f"best_{k}": v for k, v in best.items()})
            seconds = time.perf_counter() - started
            networks[name] = module.network.to("cpu").eval()
            history += [{"pair": name, **row} for row in rows]
            results[name] = {
                "model": model.name,
                "architecture": model.architecture,
                "loss": loss,
                "best_val_iou": best["val_iou"],
                "best_val_dice": best.get("val_dice"),
                "best_epoch": int(best["epoch"]),
                "parameters": parameter_count(networks[name]),
                "seconds": round(seconds, 1),
                "resumed_at_step": resumed_at,
            }
            log.info(f"{name:<28} val IoU {best['val_iou']:.4f}  ({seconds:.1f} s)")
        selected = max(results, key=lambda n: results[n]["best_val_iou"])
        tracking.log_metrics({"selected_val_iou": results[selected]["best_val_iou"]})
        import mlflow

        mlflow.set_tag("selected_pair", selected)
        run_info = tracking.register_torch_model(
            ctx.task, ctx.root, run, networks[selected], "segmentation-models-pytorch"
        )

    out = ctx.paths.models
    specs = {pair_name(m, loss): (m, loss) for m, loss in grid(params)}
    with staged_outputs(out) as staging:
        tmp = staging[out]
        (tmp / PAIRS_DIR).mkdir(parents=True)
        for name, network in networks.items():
            model, loss = specs[name]
            torch.save(
                {"state_dict": network.state_dict(), "spec": model.model_dump(), "loss": loss},
                tmp / PAIRS_DIR / f"{name}.pt",
            )
        pd.DataFrame(history).to_csv(tmp / HISTORY_FILE, index=False)
        selection = {"selected": selected, "device": device, "pairs": results}
        (tmp / SELECTION_FILE).write_text(dump_json(selection), encoding="utf-8")
        (tmp / ctx.paths.run_info.name).write_text(
            dump_json({**run_info, "device": device}), encoding="utf-8"
        )
    shutil.rmtree(checkpoints, ignore_errors=True)
