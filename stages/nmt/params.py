from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from stages.core.params import (
    NamedModelsParams,
    PromotionParams,
    StepBudget,
    StrictModel,
    TaskParams,
)
from stages.core.sources import SourceParams

Direction = Literal["en-ru", "ru-en"]


class NmtSource(SourceParams):
    """The builtin corpus (`stages/nmt/corpus.py`, 14,777 real UI-string pairs) needs no size;
    `max_pairs` keeps a seeded sample of it (ignored for url/path sources)."""

    max_pairs: int | None = Field(default=None, ge=10)


class ValidateParams(StrictModel):
    min_pairs: int = Field(default=100, ge=3, description="usable pairs needed after skipping")
    max_skipped_share: float = Field(
        default=0.01, ge=0, le=1, description="malformed lines and pairs with an empty side"
    )
    min_cyrillic_share: float = Field(
        default=0.95, ge=0, le=1, description="pairs whose Russian side has a Cyrillic letter"
    )
    max_length_ratio: float = Field(
        default=4.0, gt=1, description="longer / shorter side in characters: a misaligned pair"
    )
    max_misaligned_share: float = Field(default=0.02, ge=0, le=1)
    max_duplicate_share: float = Field(
        default=0.5, ge=0, le=1, description="pairs repeating an earlier (english, russian) pair"
    )


class PreprocessParams(StrictModel):
    direction: Direction = "en-ru"
    val_fraction: float = Field(default=0.15, gt=0, lt=0.5)
    test_fraction: float = Field(default=0.05, gt=0, lt=0.5)
    vocab_size: int = Field(default=4000, ge=100, description="BPE vocabulary per language")
    min_frequency: int = Field(default=2, ge=1, description="BPE merges seen fewer times: none")
    max_tokens: int = Field(
        default=64, ge=4, description="training pairs with a longer side are left out"
    )
    lowercase: bool = False


class ModelSchedule(StrictModel):
    """A model's own training schedule; each null takes the train section's value (an LSTM
    with attention wants a higher rate and more epochs than a Transformer)."""

    learning_rate: float | None = Field(default=None, gt=0, description="null: train's")
    epochs: int | None = Field(default=None, ge=1, description="null: train's")
    warmup_steps: int | None = Field(default=None, ge=0, description="null: train's")


class Seq2SeqSpec(ModelSchedule):
    name: str
    architecture: Literal["seq2seq"]
    embedding: int = Field(default=256, ge=8)
    hidden: int = Field(default=256, ge=8)
    layers: int = Field(default=1, ge=1)
    dropout: float = Field(default=0.2, ge=0, lt=1)
    attention: Literal["bahdanau", "luong"] = "bahdanau"
    input_feeding: bool = Field(
        default=True, description="the last attentional vector feeds the next step (sequential)"
    )


class TransformerSpec(ModelSchedule):
    name: str
    architecture: Literal["transformer"]
    d_model: int = Field(default=256, ge=8)
    heads: int = Field(default=4, ge=1)
    encoder_layers: int = Field(default=3, ge=1)
    decoder_layers: int = Field(default=3, ge=1)
    feedforward: int = Field(default=512, ge=8)
    dropout: float = Field(default=0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _heads_divide(self) -> TransformerSpec:
        if self.d_model % self.heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by heads {self.heads}")
        return self


ModelSpec = Annotated[Seq2SeqSpec | TransformerSpec, Field(discriminator="architecture")]
TRAINING_KEYS = {"name", *ModelSchedule.model_fields}  # not the network's shape


def model_kwargs(spec: Seq2SeqSpec | TransformerSpec) -> dict:
    """What `model.build_model` takes: the architecture and its constructor arguments."""
    return spec.model_dump(exclude=TRAINING_KEYS)


class TrainParams(NamedModelsParams, StepBudget):
    models: list[ModelSpec] = Field(min_length=1)
    epochs: int = Field(default=8, ge=1)
    patience: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=64, ge=1, description="sentences per batch (length-bucketed)")
    learning_rate: float = Field(default=3e-3, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_steps: int = Field(default=200, ge=0, description="linear warm-up, then cosine decay")
    label_smoothing: float = Field(default=0.1, ge=0, lt=1)
    val_bleu_sentences: int = Field(
        default=200, ge=1, description="validation sentences decoded (greedy) per epoch"
    )


class EvaluateParams(StrictModel):
    promotion: PromotionParams = PromotionParams(metric="bleu", direction="maximize")
    beam_size: int = Field(default=4, ge=1)
    length_penalty: float = Field(default=1.0, ge=0, description="GNMT alpha of beam search")
    batch_size: int = Field(default=64, ge=1, description="sentences decoded at once")
    examples_shown: int = Field(default=10, ge=1)
    attention_shown: int = Field(default=3, ge=1)


class Params(TaskParams):
    source: NmtSource = NmtSource()
    validate_: ValidateParams = Field(default=ValidateParams(), alias="validate")
    preprocess: PreprocessParams = PreprocessParams()
    train: TrainParams
    evaluate: EvaluateParams = EvaluateParams()
