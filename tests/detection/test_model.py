"""The detectors params can select: each architecture on each from-scratch backbone trains
(losses) and predicts (boxes in the image), at the pyramid width the params ask for."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from stages.detection.model import build_detector
from stages.detection.params import ModelSpec

SIZE = 96


def _targets() -> list[dict]:
    return [
        {"boxes": torch.tensor([[10.0, 12.0, 40.0, 44.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.tensor([[50.0, 20.0, 90.0, 70.0]]), "labels": torch.tensor([3])},
    ]


@pytest.mark.parametrize("architecture", ["fasterrcnn", "retinanet", "fcos"])
@pytest.mark.parametrize("backbone", ["mobilenet_v3_large", "resnet18"])
def test_every_detector_trains_and_predicts_at_the_asked_width(architecture, backbone):
    spec = ModelSpec(name="d", architecture=architecture, backbone=backbone, fpn_channels=64)
    torch.manual_seed(0)
    network = build_detector(spec, num_classes=4, image_size=SIZE)
    images = [torch.rand(3, SIZE, SIZE) for _ in range(2)]

    losses = network.train()(images, _targets())
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert network.backbone.out_channels == 64
    assert all(p.grad is not None for p in network.backbone.fpn.parameters())

    with torch.no_grad():
        (out,) = network.eval()(images[:1])
    assert set(out) >= {"boxes", "scores", "labels"}
    assert out["boxes"].shape[1:] == (4,) and bool((out["boxes"] <= SIZE).all())


def test_a_narrow_pyramid_and_short_fcos_heads_are_smaller():
    wide = build_detector(ModelSpec(name="w", architecture="fcos", backbone="resnet18"), 4, SIZE)
    narrow = build_detector(
        ModelSpec(
            name="n", architecture="fcos", backbone="resnet18", fpn_channels=128, head_convs=2
        ),
        4,
        SIZE,
    )
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert len(narrow.head.classification_head.conv) < len(wide.head.classification_head.conv)
    assert count(narrow) < count(wide) - 5_000_000


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"architecture": "fcos", "fpn_channels": 100}, "multiple of 32"),
        (
            {"architecture": "fcos", "backbone": "resnet50", "pretrained": "coco", "head_convs": 2},
            "keep torchvision's",
        ),
        ({"architecture": "retinanet", "head_convs": 2}, "fcos only"),
        (
            {"architecture": "retinanet", "backbone": "resnet18", "pretrained": "coco"},
            "COCO weights exist",
        ),
    ],
)
def test_impossible_detectors_are_params_errors(changes, message):
    with pytest.raises(ValidationError, match=message):
        ModelSpec(name="d", **changes)
