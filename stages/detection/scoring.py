"""Any detector version scored on the current test images: what the promotion rule and `compare`
pair. mAP@0.5 over resampled images (COCO's matching done once per image, the AP recomputed
with each image weighted by how often the resample drew it), per-dominant-class deltas, and
the images where two versions keep different boxes."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
from torchvision.ops import box_convert
from torchvision.utils import draw_bounding_boxes

from stages.core import tracking
from stages.core.comparison import ItemScores, Unscorable
from stages.core.context import StepContext
from stages.core.errors import UserError
from stages.core.training import resolve_device
from stages.detection.model import _filter, detect, score_targets
from stages.detection.params import InferenceParams

IOU = 0.5
MAX_DETECTIONS = 100  # per image and class: detect's default and COCO's maxDets
# torchmetrics' recall thresholds, float32 values and all (a recall of exactly 0.3 < 0.3f)
RECALL_THRESHOLDS = np.array(torch.linspace(0.0, 1.0, 101).tolist())
NO_OBJECTS = "no objects"
SHOWN = 6
PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6"]


def kept_labels(inference: InferenceParams, classes: list[str]) -> list[int] | None:
    """Label ids of `evaluate.inference.classes` (None keeps every class)."""
    if inference.classes is None:
        return None
    unknown = [c for c in inference.classes if c not in classes]
    if unknown:
        raise UserError(
            f"params.yaml: detection.evaluate.inference.classes: unknown class {unknown[0]!r} "
            f"(expected some of: {', '.join(classes)})"
        )
    return [classes.index(c) + 1 for c in inference.classes]


def predictions(
    network: nn.Module,
    images: Sequence[torch.Tensor] | torch.Tensor,
    inference: InferenceParams,
    keep: Sequence[int] | None,
    device: str,
) -> tuple[list[dict], list[dict]]:
    """One detector's two views of the test images, from one pass: every detection (what mAP
    ranks, at most MAX_DETECTIONS per class) and the ones the user's inference settings keep
    (what the pictures and the submission show)."""
    limit = max(MAX_DETECTIONS, inference.max_per_class)
    raw = detect(network, images, max_per_class=limit, device=device)
    found = [_filter(out, None, 0.0, MAX_DETECTIONS) for out in raw]
    shown = [_filter(out, keep, inference.min_confidence, inference.max_per_class) for out in raw]
    return found, shown


def _xywh(boxes: torch.Tensor) -> np.ndarray:
    """As torchmetrics hands boxes to COCO: xywh computed in the boxes' own float32."""
    boxes = boxes.reshape(-1, 4)
    return box_convert(boxes, "xyxy", "xywh").double().numpy() if len(boxes) else np.zeros((0, 4))


def _ious(dets: np.ndarray, gts: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """COCO's box IoU (xywh); against a crowd (here: difficult) region the union is the
    detection's own area."""
    left = np.maximum(dets[:, None, 0], gts[None, :, 0])
    right = np.minimum(dets[:, None, 0] + dets[:, None, 2], gts[None, :, 0] + gts[None, :, 2])
    top = np.maximum(dets[:, None, 1], gts[None, :, 1])
    bottom = np.minimum(dets[:, None, 1] + dets[:, None, 3], gts[None, :, 1] + gts[None, :, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    det_area = (dets[:, 2] * dets[:, 3])[:, None]
    union = np.where(crowd[None, :], det_area, det_area + (gts[:, 2] * gts[:, 3])[None, :] - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _match(ious: np.ndarray, ignored: np.ndarray) -> np.ndarray:
    """COCO's greedy matching of one image and class: detections by score, each to the free
    ground truth it overlaps most (at least IOU), real objects before ignored ones, which may
    take any number of detections. Returns the matched ground truth per detection (-1: none)."""
    taken = np.zeros(len(ignored), dtype=bool)
    matched = np.full(len(ious), -1)
    for d, row in enumerate(ious):
        best, m = min(IOU, 1 - 1e-10), -1
        for g, iou in enumerate(row):
            if taken[g] and not ignored[g]:
                continue
            if m > -1 and not ignored[m] and ignored[g]:
                break
            if iou < best:
                continue
            best, m = iou, g
        if m > -1:
            matched[d] = m
            taken[m] = True
    return matched


def _ranked(scores: torch.Tensor) -> np.ndarray:
    """COCO's detection order in an image: by score, ties in input order, the best 100."""
    order = np.argsort(-scores.double().numpy(), kind="stable")
    return order[:MAX_DETECTIONS]


def matched_detections(found: list[dict], targets: list[dict]) -> dict:
    """Every detection's fate at IoU 0.5 (hit, false positive, or on a difficult object and
    so neither), and each image's count of real objects per class: all that AP needs."""
    labels = torch.cat(
        [f["labels"].reshape(-1) for f in found] + [t["labels"].reshape(-1) for t in targets]
    )
    classes = sorted(set(labels.tolist()))
    column = {c: k for k, c in enumerate(classes)}
    objects = np.zeros((len(targets), len(classes)))
    rows = []  # (class, -score, image, rank in image, hit)
    for image, (out, target) in enumerate(zip(found, targets, strict=True)):
        gt_labels = target["labels"].reshape(-1)
        gt_boxes = _xywh(target["boxes"])
        crowd = target.get("iscrowd", torch.zeros_like(gt_labels)).reshape(-1).numpy() > 0
        dt_labels = out["labels"].reshape(-1)
        dt_boxes = _xywh(out["boxes"])
        for c in set(gt_labels.tolist()) | set(dt_labels.tolist()):
            g = np.flatnonzero((gt_labels == c).numpy())
            g = g[np.argsort(crowd[g], kind="stable")]  # real objects first
            objects[image, column[c]] = int((~crowd[g]).sum())
            d = np.flatnonzero((dt_labels == c).numpy())
            d = d[_ranked(out["scores"][d])]
            matched = _match(_ious(dt_boxes[d], gt_boxes[g], crowd[g]), crowd[g])
            for rank, (index, m) in enumerate(zip(d, matched, strict=True)):
                if m > -1 and crowd[g][m]:
                    continue  # on a difficult object: neither hit nor false positive
                rows.append((column[c], -float(out["scores"][index]), image, rank, m > -1))
    table = np.array(rows, dtype=float).reshape(-1, 5)
    table = table[np.lexsort((table[:, 3], table[:, 2], table[:, 1], table[:, 0]))]
    per_class = []
    for k in range(len(classes)):
        part = table[table[:, 0] == k]
        per_class.append((part[:, 2].astype(int), part[:, 4], 1.0 - part[:, 4]))
    return {"classes": classes, "objects": objects, "per_class": per_class}


def weighted_map(matched: dict, weights: np.ndarray) -> float:
    """mAP@0.5 of a sample of the images, image i counted weights[i] times: COCO's 101-point
    interpolated AP per class over the classes with a real object in the sample (-1 if none,
    as torchmetrics says). A drawn-k-times image's detections are k tied copies: the curve
    between them is monotone, so only the end of each run of copies matters."""
    ap = []
    for k, (image, hit, miss) in enumerate(matched["per_class"]):
        real = float(weights @ matched["objects"][:, k])
        if real == 0:
            continue
        w = weights[image]
        tp, fp = np.cumsum(w * hit), np.cumsum(w * miss)
        if not len(tp):
            ap.append(0.0)
            continue
        recall = tp / real
        precision = np.maximum.accumulate((tp / (fp + tp + np.spacing(1)))[::-1])[::-1]
        at = np.searchsorted(recall, RECALL_THRESHOLDS, side="left")
        ap.append(float(np.where(at < len(tp), precision[np.minimum(at, len(tp) - 1)], 0).mean()))
    return float(np.mean(ap)) if ap else -1.0


def class_name(label, classes: Sequence[str]) -> str:
    """Label ids start at 1 (0 is the background, which FCOS and RetinaNet may still emit)."""
    label = int(label)
    return classes[label - 1] if 1 <= label <= len(classes) else f"label {label}"


def _summary(labels: torch.Tensor, classes: Sequence[str]) -> str:
    """What an image holds, e.g. `helmet×2 head×1`."""
    counts = Counter(int(label) for label in labels)
    return " ".join(f"{class_name(c, classes)}×{counts[c]}" for c in sorted(counts)) or "nothing"


def _dominant(labels: torch.Tensor, difficult: torch.Tensor, classes: Sequence[str]) -> str:
    counts = Counter(int(label) for label in labels[~difficult])
    if not counts:
        return NO_OBJECTS
    return class_name(max(sorted(counts), key=lambda c: counts[c]), classes)


def item_scores(test: dict, found: list[dict], shown: list[dict]) -> ItemScores:
    """`found`: every detection (what mAP ranks); `shown`: those the inference settings keep.
    Groups: each image's most frequent real class (a tie: the first in class order)."""
    # Not torchmetrics per resample: it matches detections to objects again on every call
    # (~0.2 s, so minutes for 1000 resamples of two versions); the matching never changes.
    matched = matched_detections(found, score_targets(test))
    classes = test["classes"]

    def map_50(indices: np.ndarray) -> float:
        weights = np.bincount(np.asarray(indices, dtype=int), minlength=len(found))
        return weighted_map(matched, weights.astype(float))

    truths = []
    for labels, difficult in zip(test["labels"], test["difficult"], strict=True):
        truth = _summary(labels[~difficult], classes)
        truths.append(f"{truth} +{int(difficult.sum())} difficult" if difficult.any() else truth)
    return ItemScores(
        metric=map_50,
        items=len(found),
        groups=[
            _dominant(labels, difficult, classes)
            for labels, difficult in zip(test["labels"], test["difficult"], strict=True)
        ],
        outcomes=[_summary(out["labels"], classes) for out in shown],
        truths=truths,
        item_ids=list(test["names"]),
        extra={"shown": shown},
    )


def class_outputs(network: nn.Module) -> int | None:
    """How many labels (background included) a torchvision detector scores, if it says."""
    if hasattr(network, "roi_heads"):
        return int(network.roi_heads.box_predictor.cls_score.out_features)
    head = getattr(getattr(network, "head", None), "classification_head", None)
    return int(head.num_classes) if hasattr(head, "num_classes") else None


def check_classes(card: dict, network: nn.Module, classes: Sequence[str]) -> None:
    """A version whose labels mean other classes than the test split's cannot be scored."""
    known = card.get("classes")
    if known is not None and list(known) != list(classes):
        raise Unscorable(
            f"it detects {len(known)} classes ({', '.join(known)}), the current test split has "
            f"{len(classes)} ({', '.join(classes)})"
        )
    outputs = class_outputs(network)
    if known is None and outputs is not None and outputs != len(classes) + 1:
        raise Unscorable(
            f"it detects {outputs - 1} classes, the current test split has {len(classes)} "
            f"({', '.join(classes)})"
        )


def test_split(ctx: StepContext) -> dict:
    return torch.load(ctx.paths.processed / "test.pt")


def registered_scorer(ctx: StepContext, test: dict | None = None) -> Callable[[str], ItemScores]:
    """`models:/detection/<n>` -> its ItemScores on the current test split (`test` when the
    caller has it loaded; else read once, and only if a version is scored)."""
    import mlflow

    split = functools.cache(lambda: test if test is not None else test_split(ctx))
    inference: InferenceParams = ctx.task_params.evaluate.inference
    device = resolve_device(ctx.common.device)

    def score(model_uri: str) -> ItemScores:
        cached = split()
        classes = cached["classes"]
        keep = kept_labels(inference, classes)
        network = mlflow.pytorch.load_model(model_uri, map_location="cpu")
        check_classes(tracking.model_card(model_uri), network, classes)
        found, shown = predictions(network, cached["images"], inference, keep, device)
        return item_scores(cached, found, shown)

    return score


def drawn(image: torch.Tensor, boxes: torch.Tensor, labels, names: list[str]) -> torch.Tensor:
    if not len(boxes):
        return image
    colours = [PALETTE[(int(label) - 1) % len(PALETTE)] for label in labels]
    return draw_bounding_boxes(image, boxes, names, colors=colours, width=2)


def disagreement_figure(ctx: StepContext, indices, a: ItemScores, b: ItemScores, labels):
    """Per image: the true boxes, then the boxes each version keeps (inference settings)."""
    test = test_split(ctx)
    classes = test["classes"]
    shown = list(indices)[:SHOWN]
    fig, axes = plt.subplots(len(shown), 3, figsize=(10, 3.4 * len(shown)), squeeze=False)
    for row, i in zip(axes, shown, strict=True):
        image = test["images"][i]
        truth = drawn(
            image,
            test["boxes"][i],
            test["labels"][i],
            [
                class_name(label, classes) + (" (difficult)" if hard else "")
                for label, hard in zip(test["labels"][i], test["difficult"][i], strict=True)
            ],
        )
        panels = [(truth, f"{test['names'][i]}: truth")]
        for version, label in zip((a, b), labels, strict=True):
            found = version.extra["shown"][i]
            names = [
                f"{class_name(c, classes)} {s:.2f}"
                for c, s in zip(found["labels"], found["scores"], strict=True)
            ]
            panels.append((drawn(image, found["boxes"], found["labels"], names), label))
        for ax, (picture, title) in zip(row, panels, strict=True):
            ax.imshow(picture.permute(1, 2, 0).numpy())
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    return fig
