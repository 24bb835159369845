"""Train throughput of the torch tasks at their real-data sizes, measured two ways in one run:
(a) through the project's own training code — the task's LightningModule, `make_trainer` (bf16-mixed
on CUDA, gradient clipping) and DataLoaders with `loader_options(device)` over a synthetic
in-memory Dataset of the task's own class, so its per-item transforms run as in training — and
(b) a bare torch loop over the same nn.Module with the same batch size, autocast, memory format,
optimizer and clipping, on batches already on the device. The ratio (a) / (b) is the share of
the GPU's pace the pipeline keeps; the loader alone (a's DataLoader iterated without a model)
shows whether the loader is what holds it back. Peak GPU memory is per measurement.

    simpsons      MobileNetV2 at 224 px            images / s
    segmentation  UNet (width 16, depth 3), 256 px images / s
    detection     FCOS as params.yaml trains it, 416 px images / s
    nmt           Transformer, d_model 512         target tokens / s (sentences of 4-64 tokens)
    timeseries    GRU SeriesRNN, 56-period window  windows / s (1782 series: 54 stores x 33)

On a GPU host, from the repository root (nothing else needs to run; no data, no weights):

    .venv/bin/python benchmarks/gpu.py [--tasks simpsons,nmt] [--steps 30] [--batch simpsons=512]

Without CUDA it runs `--tiny` (32 px images, d_model 32, batches of 4, a few steps: seconds on a
CPU), which checks the script, not the hardware. Writes gpu_benchmark.json (one record per task)
and gpu_benchmark.md into --out (default benchmarks/results/gpu/) and prints the table; on CUDA also
the targets: MobileNetV2 at 224 px >= 5,000 img/s with AMP, pipeline >= 0.9x the bare loop.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import inspect
import itertools
import json
import math
import os
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import move_data_to_device
from torch.utils.data import DataLoader, Dataset

from stages.core.params import load_params
from stages.core.training import loader_options, make_trainer, precision_for, seed_everything

REPO = Path(__file__).resolve().parents[1]

TASKS = ("simpsons", "segmentation", "detection", "nmt", "timeseries")
# Real-data sizes (px, d_model, encoder window) and batches that fill a large GPU; --batch
# changes the batches. The tiny ones only exercise the code.
REAL_SIZE = {"simpsons": 224, "segmentation": 256, "detection": 416, "nmt": 512, "timeseries": 56}
REAL_BATCH = {"simpsons": 256, "segmentation": 64, "detection": 32, "nmt": 256, "timeseries": 1024}
TINY_SIZE = {"simpsons": 32, "segmentation": 32, "detection": 64, "nmt": 32, "timeseries": 14}
TINY_BATCH = dict.fromkeys(TASKS, 4)
# Synthetic pictures kept in memory; the Dataset cycles over them (the per-item work is the same).
DISTINCT_IMAGES = 512
# Batches moved to the device once for the bare loop, which cycles over them.
BARE_BATCHES = 4
TARGET_IMAGES_PER_S, TARGET_RATIO = 5000, 0.9  # simpsons MobileNetV2 at 224 px on CUDA
AMP_NAMES = {"bf16-mixed": "bf16", "16-mixed": "fp16", "32-true": "none"}


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def reset_peak_memory(device: str) -> None:
    if device == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_mib(device: str) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if device == "cuda" else None


class Cycled(Dataset):
    """`length` items of `dataset`, cycling over it: the task's own Dataset (its per-item
    transforms) over a few hundred distinct synthetic pictures instead of thousands in memory."""

    def __init__(self, dataset: Dataset, length: int):
        self.dataset, self.length = dataset, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        return self.dataset[i % len(self.dataset)]  # type: ignore[arg-type]


@dataclass
class Workload:
    """One task's training at one size: the module and data both measurements use."""

    task: str
    model: str
    unit: str  # what the throughput counts
    size: int  # image side, d_model or encoder window
    batch_size: int
    module: pl.LightningModule
    dataset: Dataset
    # the task's training_step without self.log: the bare loop's loss
    loss: Callable[[pl.LightningModule, Any], torch.Tensor]
    # items in a batch: an int, or a tensor on the batch's device (summed lazily: no host sync)
    items_in: Callable[[Any], int | torch.Tensor]
    channels_last: bool = False  # the task's train.py puts the module in channels_last
    loader_arguments: dict[str, Any] = field(default_factory=dict)

    def loader(self, device: str) -> DataLoader:
        """As the task's train.py builds its training loader."""
        arguments = self.loader_arguments or {"batch_size": self.batch_size, "shuffle": True}
        return DataLoader(self.dataset, **arguments, **loader_options(device))


def batch_length(batch) -> int:
    """Images or windows: the length of the batch's first element."""
    return len(batch[0])


def field_default(model: type, name: str) -> Any:
    """A params field's default from stages/<task>/params.py (for sections with required keys)."""
    return model.model_fields[name].default


def simpsons(size: int, batch_size: int, batches: int, tiny: bool) -> Workload:
    from stages.simpsons.model import CachedImages, ImageClassifier, train_transform
    from stages.simpsons.params import TrainParams
    from stages.simpsons.train import class_weights

    params = TrainParams()
    classes = 42  # the real journey-springfield set
    distinct = min(batches * batch_size, DISTINCT_IMAGES)
    cached = {
        "images": torch.randint(0, 256, (distinct, 3, size, size), dtype=torch.uint8),
        "labels": torch.randint(0, classes, (distinct,)),
    }
    weights = (
        class_weights(cached["labels"], classes).tolist()
        if params.imbalance == "weighted_loss"
        else None
    )
    module = ImageClassifier(
        params.architecture,
        classes,
        params.pretrained,
        params.learning_rate,
        params.weight_decay,
        weights,
        params.label_smoothing,
        params.freeze_epochs,
        params.epochs,
    )
    return Workload(
        task="simpsons",
        model=params.architecture,
        unit="images",
        size=size,
        batch_size=batch_size,
        module=module,
        dataset=Cycled(CachedImages(cached, train_transform(size)), batches * batch_size),
        loss=lambda m, batch: m.loss(m.network(batch[0]), batch[1]),
        items_in=batch_length,
        channels_last=True,
    )


def segmentation(size: int, batch_size: int, batches: int, tiny: bool) -> Workload:
    from stages.segmentation.model import CachedPairs, LesionSegmenter
    from stages.segmentation.params import ModelSpec, TrainParams

    spec = ModelSpec(name="unet", architecture="unet")
    loss = "bce_dice"  # params.yaml's grid also has bce, dice, focal, tversky: similar cost
    distinct = min(batches * batch_size, DISTINCT_IMAGES)
    cached = {
        "images": torch.randint(0, 256, (distinct, 3, size, size), dtype=torch.uint8),
        "masks": (torch.rand(distinct, 1, size, size) < 0.3).to(torch.uint8),
    }
    module = LesionSegmenter(
        spec.model_dump(),
        loss,
        field_default(TrainParams, "learning_rate"),
        field_default(TrainParams, "weight_decay"),
        field_default(TrainParams, "epochs"),
    )
    return Workload(
        task="segmentation",
        model=f"unet w{spec.width} d{spec.depth} + {loss}",
        unit="images",
        size=size,
        batch_size=batch_size,
        module=module,
        dataset=Cycled(CachedPairs(cached, augment=True), batches * batch_size),
        loss=lambda m, batch: m.loss(m.network(batch[0]), batch[1]),
        items_in=batch_length,
        channels_last=True,
    )


def random_boxes(count: int, size: int, classes: int) -> tuple[list, list]:
    """1-8 boxes an image, 8 px to a third of the side, inside the picture; labels 1..classes
    (0 is the background)."""
    boxes, labels = [], []
    for _ in range(count):
        k = int(torch.randint(1, 9, ()))
        side = torch.empty(k, 2).uniform_(8, max(9, size / 3))
        corner = torch.rand(k, 2) * (size - side)
        boxes.append(torch.cat([corner, corner + side], dim=1))
        labels.append(torch.randint(1, classes + 1, (k,)))
    return boxes, labels


def detection(size: int, batch_size: int, batches: int, tiny: bool) -> Workload:
    from stages.detection.model import CachedDetections, Detector, collate
    from stages.detection.params import HARD_HAT_CLASSES, TrainParams

    # the detector the pipeline trains: the first of params.yaml's detection models
    spec = load_params(REPO / "params.yaml").task("detection").train.models[0]
    if tiny:
        spec = spec.model_copy(update={"fpn_channels": 32, "head_convs": 1})
    classes = len(HARD_HAT_CLASSES)
    distinct = min(batches * batch_size, DISTINCT_IMAGES)
    boxes, labels = random_boxes(distinct, size, classes)
    cached = {
        "images": torch.randint(0, 256, (distinct, 3, size, size), dtype=torch.uint8),
        "boxes": boxes,
        "labels": labels,
    }
    module = Detector(
        spec.model_dump(),
        num_classes=classes + 1,
        image_size=size,
        learning_rate=field_default(TrainParams, "learning_rate"),
        weight_decay=field_default(TrainParams, "weight_decay"),
    )
    augment = field_default(TrainParams, "augment")
    return Workload(
        task="detection",
        model=f"fcos {spec.backbone} fpn{spec.fpn_channels}",
        unit="images",
        size=size,
        batch_size=batch_size,
        module=module,
        dataset=Cycled(CachedDetections(cached, augment=augment), batches * batch_size),
        loss=lambda m, batch: sum(m.network(*batch).values()),
        items_in=batch_length,
        channels_last=True,
        loader_arguments={"batch_size": batch_size, "shuffle": True, "collate_fn": collate},
    )


def nmt(size: int, batch_size: int, batches: int, tiny: bool) -> Workload:
    from stages.nmt.decoding import collate
    from stages.nmt.model import translation_loss
    from stages.nmt.params import PreprocessParams, TrainParams, TransformerSpec, model_kwargs
    from stages.nmt.preprocess import PAD_ID, UNK_ID, SplitData
    from stages.nmt.train import BucketBatches, TokenPairs, Translator

    preprocess = PreprocessParams()
    vocab = 100 if tiny else preprocess.vocab_size
    longest = 12 if tiny else preprocess.max_tokens
    extra = {"feedforward": 64} if tiny else {}
    spec = TransformerSpec(name="transformer", architecture="transformer", d_model=size, **extra)
    sentences = batches * batch_size
    first_word = UNK_ID + 1  # pad, bos, eos, unk come first

    def sentence() -> list[int]:
        length = int(torch.randint(4, longest + 1, ()))
        return torch.randint(first_word, vocab, (length,)).tolist()

    data = SplitData(
        src=[sentence() for _ in range(sentences)],
        tgt=[sentence() for _ in range(sentences)],
        source=[],
        target=[],
        line=[],
    )
    module = Translator(
        model_kwargs(spec),
        vocab,
        vocab,
        field_default(TrainParams, "learning_rate"),
        field_default(TrainParams, "weight_decay"),
        field_default(TrainParams, "warmup_steps"),
        batches,
        field_default(TrainParams, "label_smoothing"),
    )
    lengths = [max(len(s), len(t)) for s, t in zip(data.src, data.tgt, strict=True)]
    label_smoothing = module.hparams.label_smoothing
    return Workload(
        task="nmt",
        model=f"transformer d{spec.d_model} {spec.encoder_layers}+{spec.decoder_layers} layers",
        unit="tokens",
        size=size,
        batch_size=batch_size,
        module=module,
        dataset=TokenPairs(data),
        loss=lambda m, batch: translation_loss(
            m.network(batch[0], batch[1]), batch[2], PAD_ID, label_smoothing
        ),
        # target tokens, as Translator logs its loss per token
        items_in=lambda batch: (batch[2] != PAD_ID).sum(),
        loader_arguments={
            "batch_sampler": BucketBatches(lengths, batch_size, shuffle=True, seed=0),
            "collate_fn": collate,
        },
    )


def timeseries(size: int, batch_size: int, batches: int, tiny: bool) -> Workload:
    from stages.timeseries.params import RnnParams
    from stages.timeseries.rnn import FUTURE_FEATURES, SeriesRNN, Windows, gathered

    params = RnnParams()
    series = 10 if tiny else 54 * 33  # the Kaggle store-sales stores x families
    horizon = 4 if tiny else 16  # the Kaggle test window, in days
    hidden = 16 if tiny else params.hidden
    origins = math.ceil(batches * batch_size / series)
    days = size + horizon + origins - 1
    values = torch.randn(series, days).numpy()
    observed = (torch.rand(series, days) < 0.95).float().numpy()
    known = torch.randn(series, days, FUTURE_FEATURES).numpy()
    module = SeriesRNN(series, params.cell, hidden, params.learning_rate)

    def masked_mse(m, batch) -> torch.Tensor:
        encoder, ahead, index, target, seen = batch
        error = (m(encoder, ahead, index) - target) ** 2 * seen
        return error.sum() / seen.sum().clamp(min=1)

    return Workload(
        task="timeseries",
        model=f"{params.cell} h{hidden}",
        unit="windows",
        size=size,
        batch_size=batch_size,
        module=module,
        dataset=Windows(values, observed, known, size, horizon, params.stride),
        loader_arguments={"batch_size": batch_size, "shuffle": True, "collate_fn": gathered},
        loss=masked_mse,
        items_in=batch_length,
    )


BUILDERS = {
    "simpsons": simpsons,
    "segmentation": segmentation,
    "detection": detection,
    "nmt": nmt,
    "timeseries": timeseries,
}


class StepTimer(pl.Callback):
    """Items per second over the steps after the warm-up. The clock starts when the last warm-up
    step ends and stops when the last step ends (CUDA synchronized at both, only there), so it
    covers all the pipeline does between steps — waiting for the loader, the copy to the GPU,
    Lightning's hooks and logging — but not the first steps' one-off costs (worker start, cuDNN
    and allocator warm-up). The loader's queue fills during the warm-up, which flatters the
    first measured steps a little; over tens of steps that is a few percent."""

    def __init__(self, warmup: int, steps: int, items_in: Callable, device: str):
        self.warmup, self.steps, self.items_in, self.device = warmup, steps, items_in, device
        self.done, self.items = 0, 0
        self.started = self.stopped = 0.0

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.done += 1
        if self.done == self.warmup:
            synchronize(self.device)
            self.started = time.perf_counter()
        elif self.done > self.warmup:
            self.items = self.items + self.items_in(batch)
            if self.done == self.warmup + self.steps:
                synchronize(self.device)
                self.stopped = time.perf_counter()

    def items_per_s(self) -> float:
        if self.done < self.warmup + self.steps:
            raise RuntimeError(f"training stopped after {self.done} of the steps to time")
        return float(self.items) / (self.stopped - self.started)


def pipeline_throughput(
    work: Workload, device: str, warmup: int, steps: int
) -> tuple[float, float | None, pl.Trainer]:
    """(a): `make_trainer`'s Lightning fit of the task's module on its DataLoader."""
    if work.channels_last:
        work.module = work.module.to(memory_format=torch.channels_last)
    timer = StepTimer(warmup, steps, work.items_in, device)
    # no progress bar whatever the terminal (make_trainer shows one on a tty), no validation
    trainer = make_trainer(
        device,
        max_epochs=1,
        max_steps=warmup + steps,
        callbacks=[timer],
        enable_progress_bar=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    reset_peak_memory(device)
    trainer.fit(work.module, work.loader(device))
    return timer.items_per_s(), peak_memory_mib(device), trainer


def same_optimizer(used: torch.optim.Optimizer, parameters) -> torch.optim.Optimizer:
    """A fresh optimizer of the type and settings the module configured for the pipeline."""
    accepted = inspect.signature(type(used)).parameters
    return type(used)(parameters, **{k: v for k, v in used.defaults.items() if k in accepted})


def autocast_for(device: str) -> tuple[Callable[[], Any], torch.amp.GradScaler | None]:
    """What Lightning's precision for `device` (precision_for) does around a step."""
    precision = precision_for(device)
    if precision == "bf16-mixed":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16), None
    if precision == "16-mixed":
        return lambda: torch.autocast("cuda", dtype=torch.float16), torch.amp.GradScaler("cuda")
    return contextlib.nullcontext, None


def bare_throughput(
    work: Workload, device: str, warmup: int, steps: int, trainer: pl.Trainer
) -> tuple[float, float | None]:
    """(b): the same module in a plain loop over batches already on the device, with the
    pipeline's autocast, memory format, optimizer type and settings, and gradient clipping —
    so (a) / (b) is what the loader, the host-to-device copies and Lightning cost."""
    samples = list(itertools.islice(work.loader(device), min(BARE_BATCHES, warmup + steps)))
    counts = [int(work.items_in(batch)) for batch in samples]
    module = work.module.to(device)
    if work.channels_last:
        module = module.to(memory_format=torch.channels_last)
    module.train()
    batches = [move_data_to_device(batch, torch.device(device)) for batch in samples]
    optimizer = same_optimizer(trainer.optimizers[0], module.parameters())
    autocast, scaler = autocast_for(device)
    clip = trainer.gradient_clip_val

    def step(batch) -> None:
        with autocast():
            loss = work.loss(module, batch)
        if scaler is None:
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(module.parameters(), clip)
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            if clip:
                torch.nn.utils.clip_grad_norm_(module.parameters(), clip)
            scaler.step(optimizer)
            scaler.update()
        optimizer.zero_grad(set_to_none=True)

    reset_peak_memory(device)
    for i in range(warmup):
        step(batches[i % len(batches)])
    synchronize(device)
    started, items = time.perf_counter(), 0
    for i in range(warmup, warmup + steps):
        step(batches[i % len(batches)])
        items += counts[i % len(batches)]
    synchronize(device)
    seconds = time.perf_counter() - started
    peak = peak_memory_mib(device)
    module.to("cpu")
    return items / seconds, peak


def loader_throughput(work: Workload, device: str, warmup: int, steps: int) -> float:
    """The pipeline's DataLoader alone (workers, pinning, collate; no model), timed as (a)."""
    batches = iter(work.loader(device))
    for _ in range(warmup):
        next(batches)
    started, items = time.perf_counter(), 0
    for batch in itertools.islice(batches, steps):
        items += int(work.items_in(batch))
    return items / (time.perf_counter() - started)


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def measure(task: str, device: str, tiny: bool, batch_size: int, warmup: int, steps: int) -> dict:
    seed_everything(0)
    size = (TINY_SIZE if tiny else REAL_SIZE)[task]
    work = BUILDERS[task](size, batch_size, warmup + steps, tiny)
    pipeline, peak, trainer = pipeline_throughput(work, device, warmup, steps)
    bare, bare_peak = bare_throughput(work, device, warmup, steps, trainer)
    loader = loader_throughput(work, device, warmup, steps)
    record = {
        "task": task,
        "model": work.model,
        "unit": work.unit,
        "device": device,
        "batch": batch_size,
        "size": size,
        "amp": AMP_NAMES[precision_for(device)],
        "channels_last": work.channels_last,
        "num_workers": loader_options(device)["num_workers"],
        "warmup_steps": warmup,
        "steps": steps,
        "pipeline_items_per_s": round(pipeline, 1),
        "bare_items_per_s": round(bare, 1),
        "ratio": round(pipeline / bare, 3),
        "loader_items_per_s": round(loader, 1),
        "peak_memory_mib": peak,
        "bare_peak_memory_mib": bare_peak,
        "torch": torch.__version__,
        "device_name": device_name(device),
    }
    del work, trainer
    reset_peak_memory(device)
    return record


def number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def target_lines(records: list[dict]) -> list[str]:
    """The issue's targets beside the simpsons result, on CUDA at 224 px."""
    found = [
        r for r in records if r["task"] == "simpsons" and r["device"] == "cuda" and r["size"] == 224
    ]
    lines = []
    for r in found:
        fast = r["pipeline_items_per_s"] >= TARGET_IMAGES_PER_S
        kept = r["ratio"] >= TARGET_RATIO
        lines += [
            f"- target: MobileNetV2 at 224 px >= {TARGET_IMAGES_PER_S:,} img/s with AMP "
            f"({r['amp']}): pipeline {number(r['pipeline_items_per_s'])} img/s, "
            f"{'met' if fast else 'missed'}",
            f"- target: pipeline >= {TARGET_RATIO}x the bare loop: {r['ratio']:.2f}x, "
            f"{'met' if kept else 'missed'}",
        ]
    return lines


def markdown(records: list[dict]) -> str:
    header = (
        "| task | model | unit | device | batch | size | AMP | channels_last | pipeline /s "
        "| bare /s | pipeline / bare | loader /s | peak MiB (pipeline / bare) |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in records:
        memory = f"{number(r['peak_memory_mib'])} / {number(r['bare_peak_memory_mib'])}"
        lines.append(
            f"| {r['task']} | {r['model']} | {r['unit']} | {r['device']} | {r['batch']} "
            f"| {r['size']} | {r['amp']} | {'yes' if r['channels_last'] else 'no'} "
            f"| {number(r['pipeline_items_per_s'])} | {number(r['bare_items_per_s'])} "
            f"| {r['ratio']:.2f} | {number(r['loader_items_per_s'])} | {memory} |"
        )
    if records:
        first = records[0]
        lines.append(
            f"\ntorch {first['torch']} on {first['device_name']}; {first['warmup_steps']} "
            f"warm-up steps, then {first['steps']} timed; loader workers "
            f"{first['num_workers']} (loader_options)"
        )
    targets = target_lines(records)
    if targets:
        lines += ["", *targets]
    return "\n".join(lines) + "\n"


def batch_sizes(overrides: str | None, tiny: bool) -> dict[str, int]:
    """`simpsons=512,nmt=128` over the defaults."""
    sizes = dict(TINY_BATCH if tiny else REAL_BATCH)
    for item in filter(None, (overrides or "").split(",")):
        task, _, value = item.partition("=")
        if task not in sizes or not value.isdigit() or int(value) < 1:
            raise SystemExit(f"--batch: expected task=N with a task of {TASKS}, got {item!r}")
        sizes[task] = int(value)
    return sizes


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated")
    parser.add_argument(
        "--tiny",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="tiny sizes and a few steps (the default without CUDA)",
    )
    parser.add_argument("--device", choices=("cuda", "cpu"), help="default: cuda if available")
    parser.add_argument("--steps", type=int, help="timed steps (default 30, tiny 3)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 5, tiny 2)")
    parser.add_argument("--batch", help="batch sizes, e.g. simpsons=512,nmt=128")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu"))
    args = parser.parse_args(argv)

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    tiny = device != "cuda" if args.tiny is None else args.tiny
    steps = args.steps or (3 if tiny else 30)
    warmup = args.warmup if args.warmup is not None else (2 if tiny else 5)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown or steps < 1 or warmup < 1:
        parser.error(f"tasks are among {TASKS} (not {unknown}); --steps and --warmup at least 1")
    batches = batch_sizes(args.batch, tiny)
    # the CPU loader has no workers by design (loader_options), and only training is timed:
    # Lightning's hints about both are noise here
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*no `val_dataloader`.*")

    records = []
    for task in tasks:
        records.append(measure(task, device, tiny, batches[task], warmup, steps))
        r = records[-1]
        print(
            f"{task:<13} pipeline {number(r['pipeline_items_per_s'])} {r['unit']}/s, "
            f"bare {number(r['bare_items_per_s'])}, loader {number(r['loader_items_per_s'])}",
            flush=True,
        )
    table = markdown(records)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_benchmark.json").write_text(json.dumps(records, indent=2) + "\n")
    (args.out / "gpu_benchmark.md").write_text(table)
    print("\n" + table, end="")
    return records


if __name__ == "__main__":
    main()
