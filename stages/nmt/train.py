"""train: every model in params (an attentional LSTM seq2seq, a Transformer, ...), each a nested
MLflow run with its per-epoch curves: teacher forcing with label-smoothed cross entropy, AdamW
with a linear warm-up then cosine decay, length-bucketed batches, and each epoch the validation
loss and the validation BLEU of greedy decoding (on the first `val_bleu_sentences` validation
sentences), which picks the best epoch. The model with the best validation BLEU is logged and
registered as the task's model. Checkpoints make an interrupted run continue where it stopped."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from functools import partial

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from stages.core import tracking
from stages.core.context import StepContext
from stages.core.fsio import staged_outputs
from stages.core.records import write_training_record
from stages.core.training import (
    checkpoint_dir,
    fit_resumable,
    loader_options,
    member_workers,
    resolve_device,
    seed_everything,
    select_member,
    train_members,
    training_budget,
)
from stages.nmt.decoding import MODELS_DIR, collate, decode_all, sacre_bleu
from stages.nmt.model import build_model, translation_loss
from stages.nmt.params import TrainParams, model_kwargs
from stages.nmt.preprocess import PAD_ID, SplitData, load_split, load_tokenizers, split_summary
from stages.nmt.scoring import TOKENIZERS_ARTIFACT

MONITOR = "val_bleu"
NEAR_ZERO = 1.0  # val BLEU (0-100): copying or babbling scores below 1
POOL_BATCHES = 50  # length bucketing: sort this many batches' worth of sentences at a time


class TokenPairs(Dataset):
    def __init__(self, data: SplitData) -> None:
        self.src, self.tgt = data.src, data.tgt

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> tuple[list[int], list[int]]:
        return self.src[i], self.tgt[i]


class BucketBatches(Sampler[list[int]]):
    """Batches of sentences of similar length (little padding): each epoch a seeded shuffle,
    pools of POOL_BATCHES batches sorted by length and cut into batches, the batches shuffled.
    The same seed and epoch give the same batches, so a resumed run sees what it would have."""

    def __init__(
        self, lengths: list[int], batch_size: int, shuffle: bool = True, seed: int = 0
    ) -> None:
        self.lengths = np.asarray(lengths)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:  # Lightning calls this every epoch
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.lengths)) if self.shuffle else np.arange(len(self.lengths))
        pool = self.batch_size * POOL_BATCHES
        batches = []
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [
                chunk[i : i + self.batch_size].tolist()
                for i in range(0, len(chunk), self.batch_size)
            ]
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """Learning-rate factor: linear from 1/warmup to 1, then cosine down to 0 at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1 + math.cos(math.pi * progress))


class Translator(pl.LightningModule):
    """`build_model`'s network trained with teacher forcing; `val_bleu` needs `bleu_data`
    (source ids, reference sentences, the target tokenizer) set before fitting."""

    def __init__(
        self,
        spec: dict,
        src_vocab: int,
        tgt_vocab: int,
        learning_rate: float,
        weight_decay: float,
        warmup_steps: int,
        total_steps: int,
        label_smoothing: float,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.network = build_model(spec, src_vocab, tgt_vocab, PAD_ID)
        self.bleu_data: tuple[list[list[int]], list[str], object] | None = None

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        return self.network(src, tgt_in)

    def _loss(self, batch) -> tuple[torch.Tensor, int]:
        src, tgt_in, tgt_out = batch
        logits = self(src, tgt_in)
        loss = translation_loss(logits, tgt_out, PAD_ID, self.hparams.label_smoothing)
        return loss, int((tgt_out != PAD_ID).sum())

    def training_step(self, batch, _):
        loss, tokens = self._loss(batch)
        self.log("train_loss", loss, on_epoch=True, on_step=False, batch_size=tokens)
        return loss

    def validation_step(self, batch, _):
        loss, tokens = self._loss(batch)
        self.log("val_loss", loss, on_epoch=True, batch_size=tokens)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or self.bleu_data is None:
            return
        sources, references, tokenizer = self.bleu_data
        decoded = decode_all(self.network, sources, device=self.device, batch_size=100)
        hypotheses = tokenizer.decode_batch([d.tokens for d in decoded], skip_special_tokens=True)
        self.log("val_bleu", sacre_bleu(hypotheses, references), prog_bar=True)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(
            self.parameters(),
            lr=self.hparams.learning_rate,
            weight_decay=self.hparams.weight_decay,
            betas=(0.9, 0.98),
        )
        warmup, total = self.hparams.warmup_steps, self.hparams.total_steps
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, warmup, total)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": schedule, "interval": "step"},
        }


def train_model(
    spec,
    params: TrainParams,
    data: tuple[SplitData, SplitData],
    tokenizers,
    device: str,
    seed: int,
    checkpoints,
) -> tuple[Translator, list[dict], int]:
    seed_everything(seed)
    train, val = data
    source_tokenizer, target_tokenizer = tokenizers
    batches = BucketBatches(
        [max(len(s), len(t)) for s, t in zip(train.src, train.tgt, strict=True)],
        params.batch_size,
        shuffle=True,
        seed=seed,
    )
    # decided before the module: its warm-up + cosine schedule spans every step that will run
    epochs, patience = training_budget(
        len(batches), spec.epochs or params.epochs, params.patience, params.min_steps
    )
    module = Translator(
        model_kwargs(spec),
        source_tokenizer.get_vocab_size(),
        target_tokenizer.get_vocab_size(),
        spec.learning_rate or params.learning_rate,
        params.weight_decay,
        params.warmup_steps if spec.warmup_steps is None else spec.warmup_steps,
        epochs * len(batches),
        params.label_smoothing,
    )
    shown = min(params.val_bleu_sentences, len(val))
    module.bleu_data = (val.src[:shown], val.target[:shown], target_tokenizer)
    options = loader_options(device)
    train_loader = DataLoader(
        TokenPairs(train), batch_sampler=batches, collate_fn=collate, **options
    )
    val_batches = BucketBatches(
        [len(s) for s in val.src], params.batch_size * 2, shuffle=False, seed=seed
    )
    val_loader = DataLoader(
        TokenPairs(val), batch_sampler=val_batches, collate_fn=collate, **options
    )
    return fit_resumable(
        module,
        train_loader,
        val_loader,
        device,
        epochs,
        checkpoints,
        monitor=MONITOR,
        mode="max",
        patience=patience,
        # no bf16 on a CPU: with batches of every length oneDNN builds new kernels for each
        # shape, and a whole epoch got slower (Transformer 19 -> 23 s, LSTM 19 -> 27 s)
    )


def run(ctx: StepContext) -> None:
    params: TrainParams = ctx.task_params.train
    processed = ctx.paths.processed
    data = (load_split(processed, "train"), load_split(processed, "val"))
    tokenizers = load_tokenizers(processed)
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
                    {"model": spec.model_dump()},
                    partial(train_model, spec, params, data, tokenizers, device, ctx.common.seed),
                )
                for spec in params.models
            ],
            MONITOR,
            checkpoints,
            NEAR_ZERO,
            member_workers(device, len(params.models)),
        )
        selected = select_member(trained, MONITOR, "selected_model")
        import mlflow

        info = mlflow.pytorch.log_model(
            trained[selected].network,
            name="model",
            serialization_format="pickle",
            pip_requirements=tracking.pinned("torch", "tokenizers"),
        )
        # the model reads and writes token ids: its tokenizers travel with it, and its card
        # says what it translates (a later scorer checks the current data against both)
        for path in sorted(processed.glob("tokenizer_*.json")):
            mlflow.log_artifact(str(path), artifact_path=TOKENIZERS_ARTIFACT)
        summary = split_summary(processed)
        mlflow.log_dict(
            {
                "direction": summary["direction"],
                "lowercase": summary["lowercase"],
                "vocab": summary["vocab"],
            },
            tracking.MODEL_CARD,
        )
        run_info = tracking.register_run_model(ctx.task, ctx.root, run, info.model_uri)

    models = {
        spec.name: {
            "architecture": spec.architecture,
            "best_val_loss": trained[spec.name].best.get("val_loss"),
            **trained[spec.name].summary(MONITOR),
        }
        for spec in params.models
    }
    vocab = {
        "src_vocab": tokenizers[0].get_vocab_size(),
        "tgt_vocab": tokenizers[1].get_vocab_size(),
    }
    out = ctx.paths.models
    with staged_outputs(out) as staging:
        tmp = staging[out]
        (tmp / MODELS_DIR).mkdir(parents=True)
        for spec in params.models:
            torch.save(
                {
                    "name": spec.name,
                    "spec": model_kwargs(spec),
                    **vocab,
                    "state_dict": trained[spec.name].network.state_dict(),
                },
                tmp / MODELS_DIR / f"{spec.name}.pt",
            )
        selection = {"selected": selected, "device": device, "models": models}
        write_training_record(tmp, trained, "model", selection, run_info)
    shutil.rmtree(checkpoints, ignore_errors=True)
