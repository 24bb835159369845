"""The detectors (torchvision's Faster R-CNN, RetinaNet and FCOS on a MobileNetV3 or ResNet
feature pyramid), box-preserving augmentations (transforms v2 with `tv_tensors`), the one
inference function every consumer uses, and the Lightning module that trains a detector."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import Dataset
from torchmetrics.detection import MeanAveragePrecision
from torchvision import tv_tensors
from torchvision.models import get_model
from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import (
    _mobilenet_extractor,
    _resnet_fpn_extractor,
)
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.fcos import FCOSClassificationHead, FCOSHead
from torchvision.models.detection.retinanet import RetinaNetClassificationHead
from torchvision.ops.feature_pyramid_network import (
    FeaturePyramidNetwork,
    LastLevelMaxPool,
    LastLevelP6P7,
)
from torchvision.ops.misc import FrozenBatchNorm2d
from torchvision.transforms import v2

from stages.core.pretrained import pretrained_weights, torchvision_model
from stages.detection.params import COCO_WEIGHTS, ModelSpec

# Anchor sides one octave below torchvision's (which start at 32 px): the objects of the small
# builtin images are 10-50 px. FCOS needs none (its "anchors" are the pyramid's strides).
ANCHOR_SIDES = (16, 32, 64, 128, 256)
FCOS_STRIDES = ((8,), (16,), (32,), (64,), (128,))
# Low enough for mAP (which ranks every detection); users filter with InferenceParams.
SCORE_THRESHOLD = 0.01
# The toolchain's CPU-sane Faster R-CNN sizes (fewer proposals and sampled RoIs per image).
FASTER_RCNN_OPTIONS = {
    "rpn_pre_nms_top_n_train": 1000,
    "rpn_post_nms_top_n_train": 300,
    "rpn_pre_nms_top_n_test": 500,
    "rpn_post_nms_top_n_test": 150,
    "box_batch_size_per_image": 128,
    "box_score_thresh": SCORE_THRESHOLD,
}


def _pyramid(spec: ModelSpec, param_key: str) -> nn.Module:
    """A feature pyramid on a torchvision classifier: P-levels with one extra max-pool level
    for Faster R-CNN, strides 8-128 (P3-P7) for the one-stage detectors."""
    pretrained = spec.pretrained == "backbone"
    # Frozen statistics only make sense for pretrained weights; from scratch they must learn.
    norm = FrozenBatchNorm2d if pretrained else nn.BatchNorm2d
    body = torchvision_model(spec.backbone, pretrained, param_key, norm_layer=norm)
    one_stage = spec.architecture != "fasterrcnn"
    if spec.backbone == "mobilenet_v3_large":
        trainable = 3 if pretrained else 6
        stages = 3 if one_stage else 2
        returned = list(range(6 - stages, 6)) if one_stage else None
        pyramid = _mobilenet_extractor(body, True, trainable, returned)
    else:
        trainable = 3 if pretrained else 5
        pyramid = _resnet_fpn_extractor(body, trainable, [2, 3, 4] if one_stage else None)
    # torchvision's extractors fix the width at 256, sized for COCO fine-tuning; from scratch
    # on a few hundred images a narrower pyramid (and heads) learns faster at a third the cost.
    width = spec.fpn_channels
    pyramid.fpn = FeaturePyramidNetwork(
        [block[0].in_channels for block in pyramid.fpn.inner_blocks],
        width,
        extra_blocks=LastLevelP6P7(width, width) if one_stage else LastLevelMaxPool(),
    )
    pyramid.out_channels = width
    return pyramid


def _anchors(spec: ModelSpec, levels: int) -> AnchorGenerator:
    if spec.architecture == "fcos":
        return AnchorGenerator(FCOS_STRIDES, ((1.0,),) * len(FCOS_STRIDES))
    if spec.architecture == "retinanet":
        sides = tuple((s, s * 2 ** (1 / 3), s * 2 ** (2 / 3)) for s in ANCHOR_SIDES)
    elif levels == len(ANCHOR_SIDES):
        sides = tuple((s,) for s in ANCHOR_SIDES)
    else:  # the MobileNet pyramid: every side on each of its few levels
        sides = (ANCHOR_SIDES,) * levels
    return AnchorGenerator(sides, ((0.5, 1.0, 2.0),) * len(sides))


def _coco_detector(spec: ModelSpec, num_classes: int, size: dict, param_key: str) -> nn.Module:
    """torchvision's COCO-trained detector with a new classifier for our classes."""
    builder = COCO_WEIGHTS[(spec.architecture, spec.backbone)]
    weights = pretrained_weights(builder, True, param_key)
    options = FASTER_RCNN_OPTIONS if spec.architecture == "fasterrcnn" else {}
    model = get_model(builder, weights=weights, **size, **options)
    if spec.architecture == "fasterrcnn":
        features = model.roi_heads.box_predictor.cls_score.in_features
        model.roi_heads.box_predictor = FastRCNNPredictor(features, num_classes)
        return model
    head = {"retinanet": RetinaNetClassificationHead, "fcos": FCOSClassificationHead}[
        spec.architecture
    ]
    anchors = model.anchor_generator.num_anchors_per_location()[0]
    model.head.classification_head = head(256, anchors, num_classes)
    model.score_thresh = SCORE_THRESHOLD
    return model


def build_detector(
    spec: ModelSpec, num_classes: int, image_size: int, param_key: str = "detection.train.models"
) -> nn.Module:
    """`num_classes` counts the background (label 0). The detector resizes its input so that
    the shorter side is `min_size` (default: the cached size, i.e. no resizing)."""
    min_size = spec.min_size or image_size
    size = {"min_size": min_size, "max_size": spec.max_size or max(min_size, image_size)}
    if spec.pretrained == "coco":
        return _coco_detector(spec, num_classes, size, param_key)
    backbone = _pyramid(spec, param_key)
    levels = len(backbone(torch.zeros(1, 3, 64, 64)))
    anchors = _anchors(spec, levels)
    if spec.architecture == "fasterrcnn":
        return FasterRCNN(
            backbone, num_classes, rpn_anchor_generator=anchors, **size, **FASTER_RCNN_OPTIONS
        )
    if spec.architecture == "retinanet":
        return RetinaNet(
            backbone, num_classes, anchor_generator=anchors, score_thresh=SCORE_THRESHOLD, **size
        )
    head = FCOSHead(backbone.out_channels, 1, num_classes, num_convs=spec.head_convs)
    return FCOS(
        backbone,
        num_classes,
        anchor_generator=anchors,
        head=head,
        score_thresh=SCORE_THRESHOLD,
        **size,
    )


def augmentation(enabled: bool) -> v2.Transform:
    """Photometric jitter, scale/shift jitter and flips that move the boxes with the pixels;
    boxes pushed out of the picture are dropped (with their labels)."""
    to_float = v2.ToDtype(torch.float32, scale=True)
    if not enabled:
        return to_float
    return v2.Compose(
        [
            v2.RandomPhotometricDistort(p=0.5),
            v2.RandomAffine(degrees=0, translate=(0.1, 0.1), scale=(0.75, 1.25), fill=114),
            v2.RandomHorizontalFlip(),
            v2.SanitizeBoundingBoxes(min_size=2),
            to_float,
        ]
    )


class CachedDetections(Dataset):
    """The preprocess cache: uint8 images with their boxes (xyxy, pixels) and labels."""

    def __init__(self, cached: dict, augment: bool):
        self.cached = cached
        self.transform = augmentation(augment)

    def __len__(self) -> int:
        return len(self.cached["images"])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict]:
        image = tv_tensors.Image(self.cached["images"][index])
        target = {
            "boxes": tv_tensors.BoundingBoxes(
                self.cached["boxes"][index], format="XYXY", canvas_size=image.shape[-2:]
            ),
            "labels": self.cached["labels"][index],
        }
        image, target = self.transform(image, target)
        return image.as_subclass(torch.Tensor), {
            "boxes": target["boxes"].as_subclass(torch.Tensor),
            "labels": target["labels"],
        }


def collate(batch: Sequence[tuple[torch.Tensor, dict]]) -> tuple[list, list]:
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)


def score_targets(cached: dict) -> list[dict[str, torch.Tensor]]:
    """Ground truth for MeanAveragePrecision; `difficult` objects become COCO "crowd" regions:
    a detection on one is neither a hit nor a false positive (the VOC rule)."""
    return [
        {"boxes": boxes, "labels": labels, "iscrowd": difficult.to(torch.int64)}
        for boxes, labels, difficult in zip(
            cached["boxes"], cached["labels"], cached["difficult"], strict=True
        )
    ]


def mean_average_precision(**options) -> MeanAveragePrecision:
    logging.getLogger("faster_coco_eval").setLevel(logging.WARNING)  # its per-call summaries
    return MeanAveragePrecision(
        box_format="xyxy", iou_type="bbox", backend="faster_coco_eval", **options
    )


class Detector(pl.LightningModule):
    def __init__(
        self,
        spec: dict,
        num_classes: int,
        image_size: int,
        learning_rate: float,
        weight_decay: float,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.network = build_detector(ModelSpec(**spec), num_classes, image_size)
        self.val_map = mean_average_precision(iou_thresholds=[0.5])

    def training_step(self, batch, _):
        images, targets = batch
        losses = self.network(images, targets)
        loss = sum(losses.values())
        self.log("train_loss", loss, on_epoch=True, on_step=False, batch_size=len(images))
        return loss

    def validation_step(self, batch, _):
        images, targets = batch
        predictions = self.network(images)
        self.val_map.update(predictions, targets)

    def on_validation_epoch_end(self) -> None:
        self.log("val_map_50", self.val_map.compute()["map"], prog_bar=True)
        self.val_map.reset()

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.hparams.learning_rate, weight_decay=self.hparams.weight_decay
        )
        # Detectors trained from scratch diverge without a warm-up; one cycle gives it.
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=self.hparams.learning_rate,
            total_steps=max(1, int(self.trainer.estimated_stepping_batches)),
            pct_start=0.15,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def detect(
    network: nn.Module,
    images: Sequence[torch.Tensor] | torch.Tensor,
    keep: Sequence[int] | None = None,
    min_confidence: float = 0.0,
    max_per_class: int = 100,
    device: str = "cpu",
    batch_size: int = 16,
) -> list[dict[str, torch.Tensor]]:
    """Detections (boxes xyxy in each image's pixels, scores, labels) on the CPU, for images of
    any size (uint8 or float in [0, 1]): only labels in `keep` (all when None), scores at least
    `min_confidence`, at most `max_per_class` boxes per label, best first."""
    network.eval().to(device)
    found = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = [
                (image.float() / 255 if image.dtype == torch.uint8 else image).to(device)
                for image in images[start : start + batch_size]
            ]
            found += [
                {k: v.float().cpu() if k != "labels" else v.cpu() for k, v in out.items()}
                for out in network(batch)
            ]
    return [_filter(out, keep, min_confidence, max_per_class) for out in found]


def _filter(
    out: dict[str, torch.Tensor], keep: Sequence[int] | None, min_confidence: float, limit: int
) -> dict[str, torch.Tensor]:
    chosen = out["scores"] >= min_confidence
    if keep is not None:
        chosen &= torch.isin(out["labels"], torch.as_tensor(list(keep), dtype=out["labels"].dtype))
    index = torch.nonzero(chosen).flatten()
    # stable: tied scores keep the network's order, so filtering twice equals filtering once
    index = index[torch.argsort(out["scores"][index], descending=True, stable=True)]
    rank = torch.zeros_like(index)
    for label in out["labels"][index].unique():
        same = out["labels"][index] == label
        rank[same] = torch.arange(int(same.sum()))
    index = index[rank < limit]
    return {k: v[index] for k, v in out.items()}
