from __future__ import annotations

from typing import Literal

from pydantic import Field

from stages.core.params import PromotionParams, StepBudget, StrictModel, TaskParams
from stages.core.sources import SourceParams


class SimpsonsSource(SourceParams):
    """Sizes of the builtin generator (ignored for url/path sources)."""

    classes: int = Field(default=12, ge=2, le=42)
    images: int = Field(default=1000, ge=10)
    test_images: int = Field(default=150, ge=1)
    size: int = Field(default=96, ge=32)
    min_per_class: int = Field(default=4, ge=3)


class ValidateParams(StrictModel):
    min_images_per_class: int = Field(default=3, ge=3, description="needed for a 3-way split")
    min_side: int = Field(default=16, ge=1)
    max_side: int = Field(default=4096, ge=1)


class PreprocessParams(StrictModel):
    image_size: int = Field(default=64, ge=16, description="side of the cached square images")
    val_fraction: float = Field(default=0.15, gt=0, lt=0.5)
    test_fraction: float = Field(
        default=0.15, gt=0, lt=0.5, description="used when the test set has no labels"
    )


class TrainParams(StepBudget):
    architecture: Literal["mobilenet_v2", "resnet18", "efficientnet_b0"] = "mobilenet_v2"
    pretrained: bool | str = Field(
        default=False,
        description="false | true (torchvision's DEFAULT) | a weights name (IMAGENET1K_V1) | "
        "a path to a .pth; names are read from $TORCH_HOME offline (make weights)",
    )
    freeze_epochs: int = Field(default=2, ge=0, description="pretrained: head only at first")
    backbone_lr_factor: float = Field(
        default=0.1, gt=0, le=1, description="pretrained: the backbone's share of learning_rate"
    )
    epochs: int = Field(default=20, ge=1)
    patience: int | None = Field(default=5, ge=1)
    batch_size: int = Field(default=32, ge=1)
    learning_rate: float = Field(default=2e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    imbalance: Literal["weighted_loss", "weighted_sampler", "none"] = "weighted_loss"
    label_smoothing: float = Field(default=0.05, ge=0, lt=1)


class EvaluateParams(StrictModel):
    promotion: PromotionParams = PromotionParams(metric="f1_micro", direction="maximize")
    misclassified_shown: int = Field(default=16, ge=0)


class Params(TaskParams):
    source: SimpsonsSource = SimpsonsSource()
    validate_: ValidateParams = Field(default=ValidateParams(), alias="validate")
    preprocess: PreprocessParams = PreprocessParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
