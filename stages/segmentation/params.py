from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field

from stages.core.params import (
    NamedModelsParams,
    PromotionParams,
    StepBudget,
    StrictModel,
    TaskParams,
)
from stages.core.sources import SourceParams

Loss = Literal["bce", "dice", "focal", "tversky", "bce_dice", "lovasz"]
LOSSES: tuple[str, ...] = get_args(Loss)


class SegmentationSource(SourceParams):
    """Size of the builtin generator (ignored for url/path sources)."""

    images: int = Field(default=200, ge=8, le=999)
    width: int = Field(default=192, ge=32)
    height: int = Field(default=144, ge=32)


class ValidateParams(StrictModel):
    min_pairs: int = Field(default=8, ge=3, description="usable image/mask pairs needed")
    coverage: tuple[float, float] = Field(
        default=(0.005, 0.95), description="share of an image its lesion mask may cover"
    )
    max_grey_share: float = Field(
        default=0.05, ge=0, le=1, description="mask pixels strictly between 0 and 255 allowed"
    )


class PreprocessParams(StrictModel):
    size: int | None = Field(
        default=None, ge=32, description="side of the cached squares; none: 64 builtin, 256 real"
    )
    val_fraction: float = Field(default=0.25, gt=0, lt=0.5)
    test_fraction: float = Field(default=0.25, gt=0, lt=0.5)


class ModelSpec(StrictModel):
    name: str
    architecture: Literal["unet", "segnet", "encoder_unet"]
    width: int = Field(default=16, ge=4, description="channels of the first level")
    depth: int = Field(default=3, ge=2, le=5, description="down-sampling levels")
    encoder: Literal["mobilenet_v2", "resnet18"] = "mobilenet_v2"  # encoder_unet only
    # encoder_unet: false | true | a torchvision weights name | a .pth path (as simpsons)
    pretrained: bool | str = False


class TrainParams(NamedModelsParams, StepBudget):
    models: list[ModelSpec] = Field(min_length=1)
    losses: list[Loss] = Field(min_length=1)
    epochs: int = Field(default=30, ge=1)
    patience: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=16, ge=1)
    learning_rate: float = Field(default=3e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)


class EvaluateParams(StrictModel):
    promotion: PromotionParams = PromotionParams(metric="iou", direction="maximize")
    overlays_shown: int = Field(default=4, ge=1, description="best and worst test images shown")


class Params(TaskParams):
    source: SegmentationSource = SegmentationSource()
    validate_: ValidateParams = Field(default=ValidateParams(), alias="validate")
    preprocess: PreprocessParams = PreprocessParams()
    train: TrainParams
    evaluate: EvaluateParams = EvaluateParams()
