from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from stages.core.params import (
    NamedModelsParams,
    PromotionParams,
    StepBudget,
    StrictModel,
    TaskParams,
)
from stages.core.sources import SourceParams

HARD_HAT_CLASSES = ("helmet", "head", "person")


class DetectionSource(SourceParams):
    """Size of the builtin generator (ignored for url/path sources)."""

    images: int = Field(default=600, ge=8, le=20000)
    size: int = Field(default=192, ge=64, le=1024, description="square side in pixels")


class ValidateParams(StrictModel):
    classes: list[str] = Field(
        default=list(HARD_HAT_CLASSES), min_length=1, description="label ids follow this order"
    )
    min_images: int = Field(default=20, ge=3, description="usable annotated images needed")
    max_degenerate_share: float = Field(
        default=0.01, ge=0, le=1, description="share of zero-area boxes (dropped) allowed"
    )

    @model_validator(mode="after")
    def _unique(self) -> ValidateParams:
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be unique, got {self.classes}")
        return self


class PreprocessParams(StrictModel):
    size: int | None = Field(
        default=None, ge=64, description="letterboxed square side; none: builtin size, 416 real"
    )
    val_fraction: float = Field(default=0.15, gt=0, lt=0.5)
    test_fraction: float = Field(default=0.15, gt=0, lt=0.5)


class ModelSpec(StrictModel):
    name: str
    architecture: Literal["fasterrcnn", "retinanet", "fcos"]
    backbone: Literal["mobilenet_v3_large", "resnet18", "resnet50"] = "mobilenet_v3_large"
    pretrained: Literal["none", "backbone", "coco"] = Field(
        default="none", description="ImageNet backbone or COCO detector weights from $TORCH_HOME"
    )
    min_size: int | None = Field(
        default=None, ge=32, description="the detector's internal resize; none: the cached size"
    )
    max_size: int | None = Field(default=None, ge=32)
    fpn_channels: int = Field(
        default=256, ge=16, description="feature-pyramid width (torchvision's 256); from scratch"
    )
    head_convs: int = Field(
        default=4, ge=1, description="FCOS: convolutions per head branch (torchvision's 4)"
    )

    @model_validator(mode="after")
    def _coco_exists(self) -> ModelSpec:
        if self.pretrained == "coco" and (self.architecture, self.backbone) not in COCO_WEIGHTS:
            raise ValueError(
                f"COCO weights exist for {sorted(COCO_WEIGHTS)} only, "
                f"not {self.architecture} + {self.backbone}"
            )
        if self.pretrained == "coco" and (self.fpn_channels, self.head_convs) != (256, 4):
            raise ValueError("COCO detectors keep torchvision's fpn_channels 256 and head_convs 4")
        if self.head_convs != 4 and self.architecture != "fcos":
            raise ValueError(
                f"head_convs applies to fcos only; {self.architecture} keeps torchvision's 4"
            )
        if self.fpn_channels % 32 and self.architecture != "fasterrcnn":
            raise ValueError(
                f"fpn_channels must be a multiple of 32 (the heads' GroupNorm), "
                f"got {self.fpn_channels}"
            )
        return self


# torchvision builders with COCO weights, by (architecture, backbone).
COCO_WEIGHTS = {
    ("fasterrcnn", "mobilenet_v3_large"): "fasterrcnn_mobilenet_v3_large_320_fpn",
    ("fasterrcnn", "resnet50"): "fasterrcnn_resnet50_fpn",
    ("retinanet", "resnet50"): "retinanet_resnet50_fpn",
    ("fcos", "resnet50"): "fcos_resnet50_fpn",
}


class TrainParams(NamedModelsParams, StepBudget):
    models: list[ModelSpec] = Field(min_length=1)
    epochs: int = Field(default=20, ge=1)
    patience: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=8, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    augment: bool = Field(default=True, description="flips, photometric and scale jitter")


class InferenceParams(StrictModel):
    """What a user of the detector chooses: used by evaluate's pictures, the report and the UI."""

    classes: list[str] | None = Field(default=None, description="classes to keep; none: all")
    min_confidence: float = Field(default=0.5, ge=0, le=1)
    max_per_class: int = Field(default=50, ge=1)


class EvaluateParams(StrictModel):
    promotion: PromotionParams = PromotionParams(metric="map_50", direction="maximize")
    inference: InferenceParams = InferenceParams()
    examples_shown: int = Field(default=6, ge=1, description="test images drawn in the report")


class Params(TaskParams):
    source: DetectionSource = DetectionSource()
    validate_: ValidateParams = Field(default=ValidateParams(), alias="validate")
    preprocess: PreprocessParams = PreprocessParams()
    train: TrainParams
    evaluate: EvaluateParams = EvaluateParams()
