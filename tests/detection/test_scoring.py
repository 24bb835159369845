"""A detector version scored per test image for the promotion rule and `compare`: the fast
resampled mAP@0.5 equals evaluate's torchmetrics score (hand-made boxes, random boxes, a real
detector's output; whole set and bootstrap resamples), 1000 resamples take well under seconds,
and a registered version is scored from a real MLflow store, or named unscorable."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from stages.core import tracking
from stages.core.comparison import Unscorable, group_deltas
from stages.core.context import StepContext
from stages.core.params import load_params
from stages.core.training import resolve_device
from stages.detection.evaluate import score
from stages.detection.model import build_detector, detect, score_targets
from stages.detection.params import InferenceParams, ModelSpec
from stages.detection.scoring import (
    NO_OBJECTS,
    check_classes,
    disagreement_figure,
    item_scores,
    predictions,
    registered_scorer,
)
from tests.conftest import REPO

CLASSES = ["helmet", "head", "person"]
SIZE = 96


def split(boxes, labels, difficult, images: torch.Tensor | None = None) -> dict:
    """A test split as preprocess caches it."""
    return {
        "images": images,
        "boxes": [torch.tensor(b, dtype=torch.float32).reshape(-1, 4) for b in boxes],
        "labels": [torch.tensor(lab, dtype=torch.int64) for lab in labels],
        "difficult": [torch.tensor(d, dtype=torch.bool) for d in difficult],
        "names": [f"img{i}.png" for i in range(len(boxes))],
        "scales": [1.0] * len(boxes),
        "classes": list(CLASSES),
    }


def found(boxes, labels, scores) -> dict:
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "scores": torch.tensor(scores, dtype=torch.float32),
    }


def torchmetrics_map(test: dict, detections: list[dict], indices=None) -> float:
    """evaluate's score of the images at `indices` (repeats: the same image again)."""
    indices = range(len(detections)) if indices is None else indices
    drawn = {k: [test[k][i] for i in indices] for k in ("boxes", "labels", "difficult")}
    return float(score([detections[i] for i in indices], score_targets(drawn))[1]["map"])


def hand_made() -> tuple[dict, list[dict]]:
    """A hit, a duplicate on the same object, a hit on a difficult object (neither hit nor
    miss), a wrong class, a box just under IoU 0.5 ranked above the hit, an image without
    objects, a class (person) with difficult objects only, tied scores."""
    test = split(
        boxes=[
            [[10, 10, 40, 40], [50, 50, 80, 90], [5, 50, 30, 90]],
            [[20, 20, 60, 60]],
            [],
            [[10, 10, 30, 30], [25, 10, 45, 30]],
        ],
        labels=[[1, 2, 3], [2], [], [1, 1]],
        difficult=[[False, False, True], [False], [], [False, False]],
    )
    detections = [
        found(
            [
                [11, 10, 41, 40],
                [12, 12, 40, 42],
                [50, 52, 80, 88],
                [5, 50, 30, 88],
                [60, 5, 90, 30],
            ],
            [1, 1, 2, 3, 1],
            [0.9, 0.8, 0.7, 0.6, 0.3],
        ),
        found(
            [[20, 20, 60, 38], [20, 21, 60, 60], [20, 20, 60, 60]],
            [2, 2, 1],
            [0.95, 0.5, 0.85],
        ),
        found([[10, 10, 50, 50], [0, 0, 20, 20]], [3, 2], [0.75, 0.65]),
        found([[17, 10, 37, 30], [26, 10, 46, 30]], [1, 1], [0.7, 0.7]),
    ]
    return test, detections


def random_boxes(images: int, seed: int, false_per_image: int = 30) -> tuple[dict, list[dict]]:
    """Objects of 8-48 px (15% difficult) and detections: most objects found with jittered
    boxes (some under the wrong class), plus random false positives with lower scores."""
    g = torch.Generator().manual_seed(seed)
    boxes, labels, difficult, detections = [], [], [], []
    for _ in range(images):
        k = int(torch.randint(0, 5, (1,), generator=g))
        corner = torch.rand(k, 2, generator=g) * (192 - 48)
        truth = torch.cat([corner, corner + 8 + torch.rand(k, 2, generator=g) * 40], 1)
        label = torch.randint(1, 4, (k,), generator=g)
        boxes.append(truth.tolist())
        labels.append(label.tolist())
        difficult.append((torch.rand(k, generator=g) < 0.15).tolist())
        hit = torch.rand(k, generator=g) < 0.8
        near = truth[hit] + torch.randn(int(hit.sum()), 4, generator=g) * 4
        near_label = label[hit].clone()
        wrong = torch.rand(len(near_label), generator=g) < 0.1
        near_label[wrong] = torch.randint(1, 4, (int(wrong.sum()),), generator=g)
        m = int(torch.randint(0, false_per_image, (1,), generator=g))
        corner = torch.rand(m, 2, generator=g) * (192 - 48)
        false = torch.cat([corner, corner + 8 + torch.rand(m, 2, generator=g) * 40], 1)
        detections.append(
            {
                "boxes": torch.cat([near, false]),
                "labels": torch.cat([near_label, torch.randint(1, 4, (m,), generator=g)]),
                "scores": torch.cat(
                    [
                        0.4 + 0.6 * torch.rand(len(near_label), generator=g),
                        0.8 * torch.rand(m, generator=g),
                    ]
                ),
            }
        )
    return split(boxes, labels, difficult), detections


def test_hand_made_boxes_score_as_torchmetrics_does():
    test, detections = hand_made()
    scores = item_scores(test, detections, detections)
    expected = torchmetrics_map(test, detections)
    assert 0.3 < expected < 0.9  # hits and misses both count
    assert scores.value() == pytest.approx(expected, abs=1e-4)
    for indices in ([0, 1], [1, 3, 3], [0, 0, 1, 2, 3, 3], [2, 2]):
        assert scores.metric(np.array(indices)) == pytest.approx(
            torchmetrics_map(test, detections, indices), abs=1e-4
        )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_boxes_and_resamples_score_as_torchmetrics_does(seed):
    test, detections = random_boxes(30, seed)
    scores = item_scores(test, detections, detections)
    assert scores.value() == pytest.approx(torchmetrics_map(test, detections), abs=1e-4)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        resample = rng.integers(0, 30, 30)
        assert scores.metric(resample) == pytest.approx(
            torchmetrics_map(test, detections, resample), abs=1e-4
        )


def tiny_detector(num_classes: int = len(CLASSES) + 1) -> torch.nn.Module:
    torch.manual_seed(0)
    spec = ModelSpec(
        name="tiny",
        architecture="fcos",
        backbone="mobilenet_v3_large",
        fpn_channels=32,
        head_convs=1,
    )
    return build_detector(spec, num_classes=num_classes, image_size=SIZE).eval()


def with_images(images: int = 4) -> dict:
    test, _ = random_boxes(images, seed=5)
    pictures = torch.randint(0, 256, (images, 3, SIZE, SIZE), dtype=torch.uint8)
    return {**test, "boxes": [b / 2 for b in test["boxes"]], "images": pictures}


def test_a_real_detector_is_scored_from_the_detections_evaluate_takes():
    """One detection pass gives what evaluate's two detect calls gave: every detection for
    mAP, and what the inference settings keep; the resampled mAP of it equals torchmetrics'."""
    torch.set_num_threads(1)
    network = tiny_detector()
    test = with_images()
    inference = InferenceParams(classes=["head", "person"], min_confidence=0.05, max_per_class=3)
    every, kept = predictions(network, test["images"], inference, [2, 3], "cpu")
    assert sum(len(f["labels"]) for f in every) > 20  # untrained: many low-score boxes

    for got, want in zip(every, detect(network, test["images"]), strict=True):
        assert all(torch.equal(got[k], want[k]) for k in want)
    for got, want in zip(
        kept,
        detect(network, test["images"], keep=[2, 3], min_confidence=0.05, max_per_class=3),
        strict=True,
    ):
        assert all(torch.equal(got[k], want[k]) for k in want)

    # Untrained, its boxes are points and its scores mostly tied: grown to 12 px, with objects
    # (a few difficult) where some of them lie, the ties decide the ranking.
    every = [{**f, "boxes": f["boxes"] + torch.tensor([-6.0, -6.0, 6.0, 6.0])} for f in every]
    g = torch.Generator().manual_seed(1)
    at = [f["boxes"][::9] + torch.randn(len(f["boxes"][::9]), 4, generator=g) for f in every]
    test = {
        **test,
        "boxes": at,
        "labels": [torch.randint(1, 4, (len(b),), generator=g) for b in at],
        "difficult": [torch.rand(len(b), generator=g) < 0.15 for b in at],
    }
    scores = item_scores(test, every, kept)
    expected = torchmetrics_map(test, every)
    assert expected > 0.01
    assert scores.value() == pytest.approx(expected, abs=1e-4)
    # Tied boxes of different images rank by image here, by list position in torchmetrics:
    # on a resample (no order of its own) the two orders differ a little, with ties only.
    for resample in ([1, 1, 3, 0], [2, 2, 2, 0]):
        assert scores.metric(np.array(resample)) == pytest.approx(
            torchmetrics_map(test, every, resample), abs=3e-3
        )


def test_1000_resamples_of_90_images_take_well_under_seconds():
    test, detections = random_boxes(90, seed=7, false_per_image=300)
    scores = item_scores(test, detections, detections)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(1000):
        scores.metric(rng.integers(0, 90, 90))
    assert time.perf_counter() - start < 10  # ~0.2 s alone on one core


def test_groups_outcomes_and_truths_say_what_each_image_holds():
    test, detections = hand_made()
    kept = [*detections]
    kept[1] = {k: v[:1] for k, v in detections[1].items()}  # the user keeps the best box only
    scores = item_scores(test, detections, kept)
    assert scores.items == 4
    assert scores.groups == ["helmet", "head", NO_OBJECTS, "helmet"]
    assert scores.truths == ["helmet×1 head×1 +1 difficult", "head×1", "nothing", "helmet×2"]
    assert scores.outcomes == ["helmet×3 head×1 person×1", "head×1", "head×1 person×1", "helmet×2"]
    assert scores.item_ids == [f"img{i}.png" for i in range(4)]
    deltas = group_deltas(scores, scores)
    assert deltas["helmet"]["items"] == 2 and deltas["helmet"]["difference"] == 0
    assert deltas[NO_OBJECTS]["a"] == -1  # torchmetrics' value without any object


def test_a_detector_for_other_classes_is_unscorable():
    network = tiny_detector(num_classes=3)
    with pytest.raises(Unscorable, match="it detects 2 classes, the current test split has 3"):
        check_classes({}, network, CLASSES)
    with pytest.raises(Unscorable, match=r"it detects 2 classes \(helmet, head\)"):
        check_classes({"classes": ["helmet", "head"]}, tiny_detector(), CLASSES)
    check_classes({"classes": CLASSES}, tiny_detector(), CLASSES)
    check_classes({}, tiny_detector(), CLASSES)


def register(root: Path, network, card: dict) -> str:
    with tracking.task_run("detection", "train@detection", root, []) as run:
        info = tracking.register_torch_model("detection", root, run, network, card=card)
    return f"models:/detection/{info['version']}"


def test_a_registered_version_is_scored_on_the_current_test_split(store: Path):  # noqa: F811
    torch.set_num_threads(1)
    test = with_images()
    (store / "data" / "processed" / "detection").mkdir(parents=True)
    torch.save(test, store / "data" / "processed" / "detection" / "test.pt")
    ctx = StepContext("detection", "evaluate", store, load_params(REPO / "params.yaml"))
    network = tiny_detector()
    uri = register(store, network, {"classes": CLASSES, "image_size": SIZE})
    other = register(store, network, {"classes": ["helmet", "head"], "image_size": SIZE})

    scored = registered_scorer(ctx)(uri)
    device = resolve_device(ctx.common.device)
    every, kept = predictions(
        network, test["images"], ctx.task_params.evaluate.inference, None, device
    )
    assert scored.items == 4
    assert scored.value() == pytest.approx(torchmetrics_map(test, every), abs=1e-4)
    assert scored.outcomes == item_scores(test, every, kept).outcomes
    with pytest.raises(Unscorable, match="it detects 2 classes"):
        registered_scorer(ctx, test)(other)

    figure = disagreement_figure(ctx, np.array([0, 2]), scored, scored, ("v1 (a)", "v1 (b)"))
    assert len(figure.axes) == 6
    assert [ax.get_title() for ax in figure.axes[:3]] == ["img0.png: truth", "v1 (a)", "v1 (b)"]
