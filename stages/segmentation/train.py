"""train: every (model, loss) pair of the grid in params, each a nested MLflow run with its
per-epoch curves, keeping its best epoch by validation IoU; the pair with the best validation
IoU is logged and registered as the task's model. Checkpoints make an interrupted grid continue
where it stopped (finished pairs are not trained again)."""

from __future__ import annotations

import shutil
from functools import partial

import torch

from stages.core import tracking
from stages.core.context import StepContext
from stages.core.fsio import staged_outputs
from stages.core.records import write_training_record
from stages.core.training import (
    budget,
    checkpoint_dir,
    fit_on_datasets,
    member_workers,
    resolve_device,
    seed_everything,
    select_member,
    train_members,
)
from stages.segmentation.model import CachedPairs, LesionSegmenter
from stages.segmentation.params import ModelSpec, TrainParams

PAIRS_DIR = "pairs"
MONITOR = "val_iou"
NEAR_ZERO = 0.05  # val IoU: an empty mask scores 0


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
    train, val = data
    epochs, _ = budget(params, len(train["images"]))  # the cosine schedule spans them
    module = LesionSegmenter(
        model.model_dump(), loss, params.learning_rate, params.weight_decay, epochs
    )
    module = module.to(memory_format=torch.channels_last)  # faster on CPUs (oneDNN) and GPUs
    return fit_on_datasets(
        module,
        CachedPairs(train, augment=True),
        CachedPairs(val, augment=False),
        params,
        device,
        checkpoints,
        monitor=MONITOR,
        bf16_on_cpu=True,
    )


def run(ctx: StepContext) -> None:
    params: TrainParams = ctx.task_params.train
    processed = ctx.paths.processed
    data = (torch.load(processed / "train.pt"), torch.load(processed / "val.pt"))
    device = resolve_device(ctx.common.device)
    checkpoints = checkpoint_dir(
        ctx.root, ctx.task, [params.model_dump(), ctx.common.seed], processed
    )

    with tracking.task_run(ctx.task, ctx.stage, ctx.root, [processed]) as run:
        tracking.log_params({"train": params.model_dump(), "common": ctx.common.model_dump()})
        trained = train_members(
            [
                (
                    pair_name(m, loss),
                    {"model": m.model_dump(), "loss": loss},
                    partial(train_pair, m, loss, params, data, device, ctx.common.seed),
                )
                for m, loss in grid(params)
            ],
            MONITOR,
            checkpoints,
            NEAR_ZERO,
            member_workers(device, len(grid(params))),
        )
        selected = select_member(trained, MONITOR, "selected_pair")
        run_info = tracking.register_torch_model(
            ctx.task,
            ctx.root,
            run,
            trained[selected].network,
            "segmentation-models-pytorch",
            card={"size": int(data[0]["images"].shape[-1]), "pair": selected},
        )

    pairs = {
        pair_name(model, loss): {
            "model": model.name,
            "architecture": model.architecture,
            "loss": loss,
            "best_val_dice": trained[pair_name(model, loss)].best.get("val_dice"),
            **trained[pair_name(model, loss)].summary(MONITOR),
        }
        for model, loss in grid(params)
    }
    out = ctx.paths.models
    with staged_outputs(out) as staging:
        tmp = staging[out]
        (tmp / PAIRS_DIR).mkdir(parents=True)
        for model, loss in grid(params):
            name = pair_name(model, loss)
            torch.save(
                {
                    "state_dict": trained[name].network.state_dict(),
                    "spec": model.model_dump(),
                    "loss": loss,
                },
                tmp / PAIRS_DIR / f"{name}.pt",
            )
        selection = {"selected": selected, "device": device, "pairs": pairs}
        write_training_record(tmp, trained, "pair", selection, run_info)
    shutil.rmtree(checkpoints, ignore_errors=True)
