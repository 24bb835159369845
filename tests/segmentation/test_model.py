"""Networks, losses and scores of the segmentation task on tiny known cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import binary_jaccard_index

from stages.segmentation.evaluate import rle_encode
from stages.segmentation.model import build_loss, build_network, iou_dice, thresholded_iou
from stages.segmentation.params import LOSSES, ModelSpec

TRUTH = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])  # one lesion pixel of four
SURE = 20.0  # a logit of ±20 is a probability of 1 - 2e-9


@pytest.mark.parametrize("loss", LOSSES)
def test_a_perfect_prediction_costs_nothing(loss):
    logits = (TRUTH * 2 - 1) * SURE
    assert float(build_loss(loss)(logits, TRUTH)) == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        ("bce", np.log(2)),  # -log(0.5) on every pixel
        ("dice", 1 - 2 * 0.5 / (4 * 0.5 + 1)),  # 1 - 2|P∩T| / (|P| + |T|) = 2/3
        ("focal", np.log(2) * 0.5**2),  # BCE × (1 - p_t)^2 with p_t = 0.5
        ("tversky", 1 - 0.5 / (0.5 + 0.3 * 1.5 + 0.7 * 0.5)),  # TP / (TP + .3 FP + .7 FN)
        ("bce_dice", np.log(2) + 2 / 3),
        ("lovasz", 1.0),  # hinge errors 1 - logit * sign = 1 everywhere
    ],
)
def test_known_values_on_a_two_by_two_case(loss, expected):
    """Logits 0 (probability 0.5 everywhere) against one lesion pixel of four."""
    value = float(build_loss(loss)(torch.zeros(1, 1, 2, 2), TRUTH))
    assert value == pytest.approx(expected, rel=1e-4)


def test_a_worse_prediction_costs_more_under_every_loss():
    good = (TRUTH * 2 - 1) * 2
    bad = -good
    for loss in LOSSES:
        criterion = build_loss(loss)
        assert float(criterion(good, TRUTH)) < float(criterion(bad, TRUTH)), loss


SPECS = [
    ModelSpec(name="unet", architecture="unet", width=4, depth=3),
    ModelSpec(name="segnet", architecture="segnet", width=4, depth=3),
    ModelSpec(name="mobilenet", architecture="encoder_unet", encoder="mobilenet_v2", depth=3),
    ModelSpec(name="resnet", architecture="encoder_unet", encoder="resnet18", width=8, depth=2),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
@pytest.mark.parametrize("size", [(64, 64), (44, 76)])
def test_every_network_returns_one_logit_per_pixel(spec, size):
    network = build_network(spec).eval()
    with torch.no_grad():
        out = network(torch.randn(2, 3, *size))
    assert out.shape == (2, 1, *size)


def test_segnet_unpools_with_the_encoders_indices():
    """SegNet's decoder puts values back where the encoder's max-pool found them."""
    network = build_network(SPECS[1])
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in network.modules())
    x = torch.zeros(1, 3, 16, 16)
    x[..., 3, 5] = 10.0
    with torch.no_grad():
        pooled, indices = torch.nn.functional.max_pool2d(x, 2, return_indices=True)
        back = torch.nn.functional.max_unpool2d(pooled, indices, 2, output_size=x.shape[-2:])
    assert torch.equal(back, x)


def test_iou_and_dice_are_per_image_and_agree_with_torchmetrics():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 1, 8, 8, generator=generator)
    truth = (torch.rand(5, 1, 8, 8, generator=generator) > 0.6).float()
    iou, dice = iou_dice(logits, truth)
    for i in range(5):
        expected = binary_jaccard_index((logits[i] > 0).long(), truth[i].long())
        assert float(iou[i]) == pytest.approx(float(expected))
    assert torch.allclose(dice, 2 * iou / (1 + iou))  # Dice = 2 IoU / (1 + IoU) per image


def test_empty_truth_and_empty_prediction_is_a_perfect_score():
    iou, dice = iou_dice(torch.full((1, 1, 4, 4), -5.0), torch.zeros(1, 1, 4, 4))
    assert float(iou[0]) == 1.0 and float(dice[0]) == 1.0


def test_the_course_thresholded_iou():
    iou = torch.tensor([0.3, 0.5, 0.52, 0.54, 0.69, 0.951, 1.0])
    expected = torch.tensor([0.0, 0.0, 0.1, 0.1, 0.4, 1.0, 1.0])
    assert torch.allclose(thresholded_iou(iou), expected)


def test_run_length_encoding_numbers_pixels_down_the_columns():
    mask = np.array([[0, 1, 1], [0, 1, 0], [1, 1, 0]], dtype=bool)
    # column-major pixel order: 0 0 1 | 1 1 1 | 1 0 0 -> runs start at 3 (length 5)
    assert rle_encode(mask) == "3 5"
    assert rle_encode(np.zeros((2, 2), bool)) == ""
