"""train: every detector listed in params, each a nested MLflow run with its per-epoch curves,
keeping its best epoch by validation mAP@0.5; the best one is logged and registered as the
task's model. Checkpoints make an interrupted run continue where it stopped."""

from __future__ import annotations

import shutil
from functools import partial

import torch

from stages.core import tracking
from stages.core.context import StepContext
from stages.core.fsio import read_json, staged_outputs
from stages.core.records import write_training_record
from stages.core.training import (
    checkpoint_dir,
    fit_on_datasets,
    member_workers,
    resolve_device,
    seed_everything,
    select_member,
    train_members,
)
from stages.detection.files import SPLITS_FILE
from stages.detection.model import CachedDetections, Detector, collate
from stages.detection.params import ModelSpec, TrainParams

DETECTORS_DIR = "detectors"
MONITOR = "val_map_50"
NEAR_ZERO = 0.05  # val mAP@0.5: a detector that finds nothing scores ~0


def train_detector(
    spec: ModelSpec,
    params: TrainParams,
    data: tuple[dict, dict],
    image_size: int,
    device: str,
    seed: int,
    checkpoints,
) -> tuple[Detector, list[dict], int]:
    seed_everything(seed)
    train, val = data
    module = Detector(
        spec.model_dump(),
        num_classes=len(train["classes"]) + 1,
        image_size=image_size,
        learning_rate=params.learning_rate,
        weight_decay=params.weight_decay,
    ).to(memory_format=torch.channels_last)
    return fit_on_datasets(
        module,
        CachedDetections(train, augment=params.augment),
        CachedDetections(val, augment=False),
        params,
        device,
        checkpoints,
        monitor=MONITOR,
        collate_fn=collate,
        # 1.7x an epoch; built-in test mAP@0.5 0.879 in bf16, 0.890 / 0.902 in float32: runs
        # from scratch differ by that much whatever the precision
        bf16_on_cpu=True,
    )


def run(ctx: StepContext) -> None:
    params: TrainParams = ctx.task_params.train
    processed = ctx.paths.processed
    data = (torch.load(processed / "train.pt"), torch.load(processed / "val.pt"))
    image_size = read_json(processed / SPLITS_FILE)["size"]
    device = resolve_device(ctx.common.device)
    checkpoints = checkpoint_dir(
        ctx.root, ctx.task, [params.model_dump(), ctx.common.seed], processed
    )

    with tracking.task_run(ctx.task, ctx.stage, ctx.root, [processed]) as run:
        tracking.log_params({"train": params.model_dump(), "common": ctx.common.model_dump()})
        trained = train_members(
            [
                (
                    spec.name,
                    spec.model_dump(),
                    partial(
                        train_detector, spec, params, data, image_size, device, ctx.common.seed
                    ),
                )
                for spec in params.models
            ],
            MONITOR,
            checkpoints,
            NEAR_ZERO,
            member_workers(device, len(params.models)),
        )
        selected = select_member(trained, MONITOR, "selected_model")
        run_info = tracking.register_torch_model(
            ctx.task,
            ctx.root,
            run,
            trained[selected].network,
            card={"classes": data[0]["classes"], "image_size": image_size},
        )

    models = {
        spec.name: {
            "architecture": spec.architecture,
            "backbone": spec.backbone,
            "pretrained": spec.pretrained,
            **trained[spec.name].summary(MONITOR),
        }
        for spec in params.models
    }
    out = ctx.paths.models
    with staged_outputs(out) as staging:
        tmp = staging[out]
        (tmp / DETECTORS_DIR).mkdir(parents=True)
        for spec in params.models:
            torch.save(
                {
                    # the whole module: a pretrained one has frozen norms a fresh build lacks
                    "network": trained[spec.name].network,
                    "spec": spec.model_dump(),
                    "classes": data[0]["classes"],
                    "image_size": image_size,
                },
                tmp / DETECTORS_DIR / f"{spec.name}.pt",
            )
        selection = {"selected": selected, "device": device, "models": models}
        write_training_record(tmp, trained, "model", selection, run_info)
    shutil.rmtree(checkpoints, ignore_errors=True)
