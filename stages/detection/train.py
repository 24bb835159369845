"""train: every detector listed in params, each a nested MLflow run with its per-epoch curves,
keeping its best epoch by validation mAP@0.5; the best one is logged and registered as the
task's model. Checkpoints make an interrupted run continue where it stopped."""

from __future__ import annotations

import logging
import shutil
import time

import pandas as pd
import torch

from stages.core import tracking
from stages.core.context import StepContext
from stages.core.fsio import dump_json, read_json, staged_outputs
from stages.core.training import (
    checkpoint_dir,
    fit_on_datasets,
    resolve_device,
    seed_everything,
)
from stages.detection.model import CachedDetections, Detector, collate, parameter_count
from stages.detection.params import ModelSpec, TrainParams
from stages.detection.preprocess import SPLITS_FILE

log = logging.getLogger(__name__)
DETECTORS_DIR, HISTORY_FILE, SELECTION_FILE = "detectors", "history.csv", "selection.json"


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
    )
    return fit_on_datasets(
        module,
        CachedDetections(train, augment=params.augment),
        CachedDetections(val, augment=False),
        params,
        device,
        checkpoints,
        monitor="val_map_50",
        collate_fn=collate,
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

    results, networks, history = {}, {}, []
    with tracking.task_run(ctx.task, ctx.stage, ctx.root, [processed]) as run:
        tracking.log_params({"train": params.model_dump(), "common": ctx.common.model_dump()})
        for spec in params.models:
            started = time.perf_counter()
            with tracking.member_run(spec.name, spec.model_dump()):
                module, rows, resumed_at = train_detector(
                    spec, params, data, image_size, device, ctx.common.seed, checkpoints / spec.name
                )
                best = max(rows, key=lambda row: row.get("val_map_50", -1.0))
                tracking.log_metrics({f"best_{k}": v for k, v in best.items()})
            seconds = time.perf_counter() - started
            networks[spec.name] = module.network.to("cpu").eval()
            history += [{"model": spec.name, **row} for row in rows]
            results[spec.name] = {
                "architecture": spec.architecture,
                "backbone": spec.backbone,
                "pretrained": spec.pretrained,
                "best_val_map_50": best["val_map_50"],
                "best_epoch": int(best["epoch"]),
                "parameters": parameter_count(networks[spec.name]),
                "seconds": round(seconds, 1),
                "resumed_at_step": resumed_at,
            }
            log.info(f"{spec.name:<24} val mAP@0.5 {best['val_map_50']:.4f}  ({seconds:.1f} s)")
        selected = max(results, key=lambda n: results[n]["best_val_map_50"])
        tracking.log_metrics({"selected_val_map_50": results[selected]["best_val_map_50"]})
        import mlflow

        mlflow.set_tag("selected_model", selected)
        run_info = tracking.register_torch_model(ctx.task, ctx.root, run, networks[selected])

    out = ctx.paths.models
    specs = {spec.name: spec for spec in params.models}
    with staged_outputs(out) as staging:
        tmp = staging[out]
        (tmp / DETECTORS_DIR).mkdir(parents=True)
        for name, network in networks.items():
            torch.save(
                {
                    # the whole module: a pretrained one has frozen norms a fresh build lacks
                    "network": network,
                    "spec": specs[name].model_dump(),
                    "classes": data[0]["classes"],
                    "image_size": image_size,
                },
                tmp / DETECTORS_DIR / f"{name}.pt",
            )
        pd.DataFrame(history).to_csv(tmp / HISTORY_FILE, index=False)
        selection = {"selected": selected, "device": device, "models": results}
        (tmp / SELECTION_FILE).write_text(dump_json(selection), encoding="utf-8")
        (tmp / ctx.paths.run_info.name).write_text(
            dump_json({**run_info, "device": device}), encoding="utf-8"
        )
    shutil.rmtree(checkpoints, ignore_errors=True)
