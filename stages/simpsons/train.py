"""train: the classifier on the cached train split, early-stopped on validation micro-F1,
checkpointed every epoch and every few steps so an interrupted run continues where it
stopped; the best weights are logged and registered in MLflow."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

from stages.core import tracking
from stages.core.context import StepContext
from stages.core.fsio import dump_json, read_json, staged_outputs
from stages.core.records import HISTORY_FILE
from stages.core.training import (
    budget,
    checkpoint_dir,
    did_not_learn,
    fit_resumable,
    loader_options,
    resolve_device,
    seed_everything,
)
from stages.simpsons.files import CLASSES_FILE
from stages.simpsons.model import CachedImages, ImageClassifier, eval_transform, train_transform
from stages.simpsons.params import TrainParams

MODEL_FILE = "model.pt"


def class_weights(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """Inverse frequency, normalised to mean 1: rare characters count as much as Homer."""
    counts = torch.bincount(labels, minlength=classes).clamp(min=1).float()
    weights = counts.sum() / (classes * counts)
    return weights / weights.mean()


def loaders(train: dict, val: dict, params: TrainParams, classes: int, device: str):
    size = train["images"].shape[-1]
    options = loader_options(device)
    sampler = None
    if params.imbalance == "weighted_sampler":
        per_image = class_weights(train["labels"], classes)[train["labels"]]
        sampler = WeightedRandomSampler(per_image, num_samples=len(per_image), replacement=True)
    train_loader = DataLoader(
        CachedImages(train, train_transform(size)),
        params.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        **options,
    )
    val_loader = DataLoader(CachedImages(val, eval_transform()), params.batch_size * 2, **options)
    return train_loader, val_loader


def describe_training(params: TrainParams, image_size: int, epochs_run: int) -> str:
    """One phrase for the report: the network, where it started, the size and the epochs."""

    def epochs(count: int) -> str:
        return f"{count} epoch" if count == 1 else f"{count} epochs"

    pretrained = params.pretrained
    if pretrained is False:
        return f"{params.architecture} from scratch at {image_size} px for {epochs(epochs_run)}"
    if isinstance(pretrained, str) and pretrained.endswith((".pth", ".pt")):
        weights = f"the weights in {pretrained}"
    else:
        weights = f"ImageNet weights {'DEFAULT' if pretrained is True else pretrained}"
    return (
        f"{params.architecture} from {weights} (the new head alone for "
        f"{epochs(params.freeze_epochs)}, then the backbone at {params.backbone_lr_factor:g}x "
        f"the learning rate) at {image_size} px for {epochs(epochs_run)}"
    )


def run(ctx: StepContext) -> None:
    params: TrainParams = ctx.task_params.train
    processed = ctx.paths.processed
    classes = read_json(processed / CLASSES_FILE)["classes"]
    train = torch.load(processed / "train.pt")
    val = torch.load(processed / "val.pt")
    device = resolve_device(ctx.common.device)
    seed_everything(ctx.common.seed)
    weights = (
        class_weights(train["labels"], len(classes)).tolist()
        if params.imbalance == "weighted_loss"
        else None
    )
    epochs, patience = budget(params, len(train["labels"]))  # the cosine schedule spans them
    module = ImageClassifier(
        params.architecture,
        len(classes),
        params.pretrained,
        params.learning_rate,
        params.weight_decay,
        weights,
        params.label_smoothing,
        params.freeze_epochs,
        epochs,
        params.backbone_lr_factor,
    )
    # channels-last is faster on CPUs (oneDNN: MobileNetV2 314 -> 215 ms a step) and GPUs; bf16
    # on a CPU is not: its depthwise convolutions ran at 474 ms
    module = module.to(memory_format=torch.channels_last)
    train_loader, val_loader = loaders(train, val, params, len(classes), device)
    checkpoints = checkpoint_dir(ctx.root, ctx.task, params.model_dump(), processed)

    with tracking.task_run(ctx.task, ctx.stage, ctx.root, [processed]) as run:
        tracking.log_params(
            {
                "train": params.model_dump(),
                "common": ctx.common.model_dump(),
                "classes": len(classes),
                "device": device,
            }
        )
        module, history, resumed_at = fit_resumable(
            module,
            train_loader,
            val_loader,
            device,
            epochs,
            checkpoints,
            monitor="val_f1_micro",
            mode="max",
            patience=patience,
        )
        # micro-F1 near chance (1 / classes) or below is a model that learned nothing
        verdict = did_not_learn(params.architecture, history, "val_f1_micro", 2 / len(classes))
        import mlflow

        mlflow.set_tag("resumed_at_step", str(resumed_at))
        best = max(history, key=lambda row: row.get("val_f1_micro", -1))
        tracking.log_metrics({f"best_{k}": v for k, v in best.items()})
        network = module.network.to("cpu").eval()
        run_info = tracking.register_torch_model(
            ctx.task,
            ctx.root,
            run,
            network,
            card={"classes": classes, "image_size": int(train["images"].shape[-1])},
        )

    out = ctx.paths.models
    with staged_outputs(out) as staging:
        tmp = staging[out]
        tmp.mkdir()
        torch.save(
            {
                "state_dict": network.state_dict(),
                "architecture": params.architecture,
                "classes": classes,
                "image_size": int(train["images"].shape[-1]),
            },
            tmp / MODEL_FILE,
        )
        pd.DataFrame(history).to_csv(tmp / HISTORY_FILE, index=False)
        (tmp / ctx.paths.run_info.name).write_text(
            dump_json(
                {
                    **run_info,
                    "resumed_at_step": resumed_at,
                    "device": device,
                    "training": describe_training(
                        params, int(train["images"].shape[-1]), len(history)
                    ),
                    "did_not_learn": verdict,
                }
            ),
            encoding="utf-8",
        )
    shutil.rmtree(checkpoints, ignore_errors=True)


def predict(
    network: torch.nn.Module, images: torch.Tensor, device: str = "cpu", batch_size: int = 128
) -> np.ndarray:
    """Class probabilities for cached uint8 images, computed on `device`."""
    transform = eval_transform()
    network.eval().to(device)
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = transform(images[start : start + batch_size].to(device))
            outputs.append(torch.softmax(network(batch), dim=1).cpu())
    return torch.cat(outputs).numpy() if outputs else np.zeros((0, 0))
