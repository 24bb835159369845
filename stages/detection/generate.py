"""A synthetic Kaggle "hard-hat-detection" dataset (andrewmvd) in the real layout, so the same
loader reads the real archive and the builtin data and the pipeline runs offline on a CPU.

Real set: 5000 photos of construction sites, mostly 416x416, `images/hard_hat_workersN.png` with
one Pascal VOC file `annotations/hard_hat_workersN.xml` each; classes `helmet` (a head wearing a
hard hat, the box covers helmet and face, 18,966 boxes), `head` (a bare head, 5,785) and `person`
(the whole worker, 751 boxes on only 158 images). A file may hold no object at all.

Every synthetic image is a site: a sky-to-ground gradient with texture, buildings, scaffolding,
containers, cones, barrels and clutter, including round domes and balls in hard-hat colours that
are not objects. On it stand 0..8 workers, back to front (small to large, later ones hide earlier
ones): a hi-vis vest (yellow or orange, the hard-hat colours again) or a shirt, arms, a neck and a
head of a random skin tone with eyes and mouth, or seen from behind. About 70-75% wear a hard hat
(a dome with a ridge, a highlight and a brim, in yellow, white, orange, red, blue or green), the
others show their hair or a bald head. Heads are 6-25% of the image side; some are cut by the
frame, some hidden behind other workers or a railing in front; blur, noise, brightness and colour
casts vary. A helmet is told from a head by its shape (dome and brim over a face), not by its
colour alone.

As in the real set, persons are rare: a share `person_share` of the images are wide shots whose
workers are smaller and shown whole (legs and boots) and annotated as `person` too; elsewhere the
workers are close-up busts that are never annotated as persons.

Boxes are the exact visible extent (after occlusion) of each object's pixels, clipped to the
image, in pixel-edge coordinates: xmin/ymin the first column/row, xmax/ymax one past the last, so
0 <= xmin < xmax <= width. `truncated` is 1 exactly when the frame clipped the box; `difficult`
is 1 for boxes whose shorter side is under 8 pixels or objects more than 60% hidden; `occluded`
is always 0, as in the real files. The default side is 192 (real: 416) so that a detector trains
on a CPU in minutes.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage


@dataclass(frozen=True)
class GeneratorSpec:
    images: int = 600  # the real set has 5000
    size: int = 192  # square side in pixels; the real set is 416, kept small for CPU training
    seed: int = 42
    person_share: float = 0.04  # share of images that annotate persons (real: 158 of 5000)


IMAGES_DIR = "images"
ANNOTATIONS_DIR = "annotations"
PREFIX = "hard_hat_workers"
CLASSES = ("helmet", "head", "person")
MIN_SIZE = 64
MAX_SIZE = 2048
MAX_IMAGES = 100_000

DIFFICULT_SIDE = 8  # pixels: a shorter box side below this is difficult
DIFFICULT_OCCLUSION = 0.6  # share hidden by objects in front
MIN_VISIBLE = 0.2  # objects with less of their pixels inside the image and unhidden are skipped
GOLDEN = (math.sqrt(5) - 1) / 2
# Fast PNG: Huffman-only zlib at level 1 is ~3x faster than the default and, for noisy photos,
# even smaller.
PNG_OPTIONS = {"compress_level": 1, "compress_type": zlib.Z_HUFFMAN_ONLY}

HELMET_COLOURS = (  # RGB, weight
    ((238, 200, 34), 0.30),  # yellow
    ((236, 236, 230), 0.28),  # white
    ((242, 122, 32), 0.12),  # orange
    ((200, 42, 38), 0.10),  # red
    ((42, 86, 196), 0.13),  # blue
    ((58, 150, 64), 0.07),  # green
)
SKIN_LIGHT = np.array([238, 198, 170], np.float32)
SKIN_DARK = np.array([92, 62, 46], np.float32)
HAIR_COLOURS = (  # None: bald
    ((28, 24, 22), 0.35),
    ((62, 42, 30), 0.25),
    ((104, 72, 46), 0.14),
    ((196, 164, 104), 0.10),
    ((150, 148, 144), 0.08),
    (None, 0.08),
)
VEST_COLOURS = (((206, 228, 52), 0.45), ((246, 132, 40), 0.30), (None, 0.25))  # None: no vest
SHIRT_COLOURS = (
    (52, 72, 140),
    (120, 120, 124),
    (222, 222, 218),
    (160, 42, 40),
    (50, 90, 60),
    (40, 40, 44),
    (90, 110, 150),
)
TROUSER_COLOURS = ((40, 48, 80), (60, 60, 64), (96, 80, 60), (30, 30, 34))
SKY_COLOURS = ((92, 142, 210), (150, 170, 192), (200, 206, 212))
GROUND_COLOURS = ((150, 150, 145), (182, 162, 122), (120, 96, 72), (92, 92, 96), (156, 90, 66))
CLUTTER_COLOURS = (
    (170, 60, 50),
    (50, 90, 150),
    (60, 120, 70),
    (200, 170, 40),
    (120, 120, 120),
    (220, 220, 215),
    (140, 100, 70),
)
STEEL = (140, 142, 150)


class VocObject(NamedTuple):
    """One annotated object; box and extent are (xmin, ymin, xmax, ymax) in pixel edges."""

    name: str  # helmet / head / person
    box: tuple[int, int, int, int]  # the visible extent clipped to the image (the XML box)
    truncated: int  # 1 when the frame clipped the box
    difficult: int  # 1 when tiny or mostly hidden
    extent: tuple[int, int, int, int]  # the visible extent before clipping (may pass the frame)
    occlusion: float  # share of the object's pixels hidden by things in front of it


class Sample(NamedTuple):
    image: np.ndarray  # (size, size, 3) uint8
    objects: list[VocObject]
    wide: bool  # a wide shot whose workers are annotated as persons too


class _Annotated(Protocol):
    name: str
    box: tuple
    truncated: int
    difficult: int


def _check(spec: GeneratorSpec) -> None:
    if not 1 <= spec.images <= MAX_IMAGES:
        raise ValueError(f"images must be in 1..{MAX_IMAGES}, got {spec.images}")
    if not MIN_SIZE <= spec.size <= MAX_SIZE:
        raise ValueError(f"size must be in {MIN_SIZE}..{MAX_SIZE} pixels, got {spec.size}")
    if not 0.0 <= spec.person_share <= 1.0:
        raise ValueError(f"person_share must be in [0, 1], got {spec.person_share}")
    if spec.seed < 0:
        raise ValueError(f"seed must be >= 0, got {spec.seed}")


def stem(index: int) -> str:
    """The real file stem of image `index`: hard_hat_workers<index>."""
    return f"{PREFIX}{index}"


def is_wide(spec: GeneratorSpec, index: int) -> bool:
    """Whether image `index` is a wide shot with annotated persons. A golden-ratio sequence from
    a seeded start: every prefix holds close to person_share of them, independent of the count."""
    start = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(1,))).random()
    return (start + index * GOLDEN) % 1.0 < spec.person_share


def annotation_xml(filename: str, width: int, height: int, objects: Iterable[_Annotated]) -> str:
    """The Pascal VOC XML of one image, pretty-printed with 4-space indents like the real files."""
    lines = [
        "<annotation>",
        "    <folder>images</folder>",
        f"    <filename>{escape(filename)}</filename>",
        "    <size>",
        f"        <width>{int(width)}</width>",
        f"        <height>{int(height)}</height>",
        "        <depth>3</depth>",
        "    </size>",
        "    <segmented>0</segmented>",
    ]
    for obj in objects:
        xmin, ymin, xmax, ymax = (_number(v) for v in obj.box)
        lines += [
            "    <object>",
            f"        <name>{escape(obj.name)}</name>",
            "        <pose>Unspecified</pose>",
            f"        <truncated>{int(obj.truncated)}</truncated>",
            "        <occluded>0</occluded>",
            f"        <difficult>{int(obj.difficult)}</difficult>",
            "        <bndbox>",
            f"            <xmin>{xmin}</xmin>",
            f"            <ymin>{ymin}</ymin>",
            f"            <xmax>{xmax}</xmax>",
            f"            <ymax>{ymax}</ymax>",
            "        </bndbox>",
            "    </object>",
        ]
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# ------------------------------------------------------------------------------------- drawing


def _choice(rng: np.random.Generator, options: tuple) -> object:
    weights = np.array([w for _, w in options], np.float64)
    return options[int(rng.choice(len(options), p=weights / weights.sum()))][0]


def _jitter(rng: np.random.Generator, colour, amount: float = 14.0) -> tuple[int, int, int]:
    c = np.asarray(colour, np.float32) + rng.normal(0, amount, 3)
    return tuple(int(v) for v in np.clip(c, 0, 255))


def _scale(colour, factor: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, v * factor))) for v in colour)


def _mix(colour, other, t: float) -> tuple[int, int, int]:
    return tuple(int(a + (b - a) * t) for a, b in zip(colour, other, strict=True))


class _Painter:
    """Draws on the picture and, with an object label, on a label map padded by `pad` pixels on
    every side, so that the map knows which pixels of which object are visible, in and out of
    the frame. Label 0 drawn in front hides objects; label None draws the picture only."""

    def __init__(self, image: Image.Image, pad: int) -> None:
        self.draw = ImageDraw.Draw(image)
        side = image.size[0] + 2 * pad
        self.labels = Image.new("L", (side, side), 0)
        self.mark = ImageDraw.Draw(self.labels)
        self.pad = pad
        self.side = side
        self.window: list[float] | None = None  # bbox of labelled shapes since reset()

    def _grow(self, xs: Iterable[float], ys: Iterable[float]) -> None:
        xs, ys = list(xs), list(ys)
        box = [min(xs), min(ys), max(xs), max(ys)]
        if self.window is None:
            self.window = box
        else:
            w = self.window
            self.window = [
                min(w[0], box[0]),
                min(w[1], box[1]),
                max(w[2], box[2]),
                max(w[3], box[3]),
            ]

    def _shift(self, box):
        return [v + self.pad for v in box]

    def ellipse(self, box, fill, label: int | None = None) -> None:
        self.draw.ellipse(box, fill=fill)
        if label is not None:
            self.mark.ellipse(self._shift(box), fill=label)
            self._grow(box[0::2], box[1::2])

    def chord(self, box, fill, label: int | None = None) -> None:  # the upper half
        self.draw.chord(box, 180, 360, fill=fill)
        if label is not None:
            self.mark.chord(self._shift(box), 180, 360, fill=label)
            self._grow(box[0::2], box[1::2])

    def rectangle(self, box, fill, label: int | None = None) -> None:
        self.draw.rectangle(box, fill=fill)
        if label is not None:
            self.mark.rectangle(self._shift(box), fill=label)
            self._grow(box[0::2], box[1::2])

    def polygon(self, points, fill, label: int | None = None) -> None:
        self.draw.polygon(points, fill=fill)
        if label is not None:
            self.mark.polygon([(x + self.pad, y + self.pad) for x, y in points], fill=label)
            self._grow([p[0] for p in points], [p[1] for p in points])

    def line(self, points, fill, width: int, label: int | None = None) -> None:
        self.draw.line(points, fill=fill, width=width)
        if label is not None:
            self.mark.line(
                [(x + self.pad, y + self.pad) for x, y in points], fill=label, width=width
            )
            self._grow([p[0] - width for p in points], [p[1] - width for p in points])
            self._grow([p[0] + width for p in points], [p[1] + width for p in points])

    def counts(self) -> np.ndarray:
        """Pixels per label inside the window of the shapes drawn since the last call."""
        if self.window is None:
            return np.zeros(256, np.int64)
        x0, y0, x1, y1 = self.window
        box = [
            max(0, math.floor(x0) + self.pad - 2),
            max(0, math.floor(y0) + self.pad - 2),
            min(self.side, math.ceil(x1) + self.pad + 3),
            min(self.side, math.ceil(y1) + self.pad + 3),
        ]
        self.window = None
        if box[0] >= box[2] or box[1] >= box[3]:
            return np.zeros(256, np.int64)
        return np.bincount(np.asarray(self.labels.crop(box)).ravel(), minlength=256)


def _field(rng: np.random.Generator, size: int, cell: float) -> np.ndarray:
    """Smooth random field of about zero mean and unit sd with blobs of about `cell` pixels."""
    n = max(2, math.ceil(size / cell) + 2)
    grid = rng.normal(size=(n, n)).astype(np.float32)
    big = Image.fromarray(grid, "F").resize((round(n * cell),) * 2, Image.Resampling.BICUBIC)
    offset = round(cell)
    out = np.asarray(big)[offset : offset + size, offset : offset + size]
    return (out - out.mean()) / max(float(out.std()), 1e-6)


def _background(rng: np.random.Generator, size: int) -> tuple[Image.Image, int]:
    """Textured ground (concrete, sand, soil, asphalt, brick) under an optional sky gradient,
    computed at half resolution and enlarged (cheap, and softer like a photo's backdrop);
    returns the picture and the horizon row (0: no sky)."""
    n = (size + 1) // 2
    horizon = int(size * rng.uniform(0.12, 0.5)) if rng.random() < 0.6 else 0
    cut = horizon // 2
    ys = (np.arange(n, dtype=np.float32) / n)[:, None, None]
    ground = np.array(GROUND_COLOURS[rng.integers(len(GROUND_COLOURS))], np.float32)
    ground = ground * rng.uniform(0.8, 1.1) + rng.normal(0, 8, 3).astype(np.float32)
    shade = 1 + rng.uniform(0.06, 0.18) * _field(rng, n, n / rng.uniform(2, 6))
    shade *= 1 + rng.uniform(0.02, 0.07) * _field(rng, n, rng.uniform(1.0, 2.0))  # grain
    image = ground * shade[..., None] * (0.92 + rng.uniform(0, 0.2) * ys)
    if cut:
        top = np.array(SKY_COLOURS[rng.integers(len(SKY_COLOURS))], np.float32)
        bottom = top + (255 - top) * rng.uniform(0.3, 0.7)
        t = np.clip(ys[:cut] / max(cut / n, 1e-3), 0, 1)
        image[:cut] = top + (bottom - top) * t
    if rng.random() < 0.35:  # stripes: paving, planks or a striped hoarding
        period = rng.uniform(0.025, 0.06) * size
        axis = np.arange(n, dtype=np.float32)
        stripes = (np.sin(2 * math.pi * axis / period) > 0).astype(np.float32)
        stripes = stripes[:, None] if rng.random() < 0.6 else stripes[None, :]
        stripes = np.broadcast_to(stripes, (n, n))
        image[cut:] *= (1 - rng.uniform(0.05, 0.15) * stripes[cut:])[..., None]
    pixels = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), "RGB")
    return pixels.resize((size, size), Image.Resampling.BILINEAR), horizon


def _building(rng: np.random.Generator, p: _Painter, size: int, horizon: int) -> None:
    """A concrete block with floors and windows standing on the horizon (or anywhere)."""
    x0 = rng.uniform(-0.2, 0.6) * size
    x1 = x0 + rng.uniform(0.3, 0.8) * size
    y1 = (horizon if horizon else rng.uniform(0.3, 0.7) * size) + rng.uniform(0, 0.1) * size
    y0 = y1 - rng.uniform(0.3, 0.8) * size
    wall = _jitter(rng, rng.choice([150, 175, 120]) * np.ones(3), 10)
    p.rectangle([x0, y0, x1, y1], wall)
    floors = int(rng.integers(2, 7))
    height = (y1 - y0) / floors
    columns = int(rng.integers(3, 9))
    width = (x1 - x0) / columns
    dark = _scale(wall, rng.uniform(0.3, 0.6))
    for f in range(floors):
        top = y0 + f * height
        p.rectangle([x0, top, x1, top + max(1, height * 0.12)], _scale(wall, 0.8))
        for c in range(columns):
            if rng.random() < 0.8:
                left = x0 + c * width
                p.rectangle(
                    [
                        left + width * 0.2,
                        top + height * 0.3,
                        left + width * 0.8,
                        top + height * 0.8,
                    ],
                    dark,
                )


def _scaffolding(rng: np.random.Generator, p: _Painter, size: int) -> None:
    colour = STEEL if rng.random() < 0.7 else _choice(rng, HELMET_COLOURS[:3])
    colour = _jitter(rng, colour, 10)
    x0, x1 = sorted(rng.uniform(-0.1, 1.1, 2) * size)
    y0, y1 = sorted(rng.uniform(-0.1, 0.9, 2) * size)
    width = max(1, round(size * rng.uniform(0.006, 0.014)))
    for x in np.linspace(x0, x1, int(rng.integers(2, 6))):
        p.line([(x, y0), (x, y1 + 0.1 * size)], colour, width)
    levels = np.linspace(y0, y1, int(rng.integers(2, 5)))
    for y in levels:
        p.line([(x0, y), (x1, y)], colour, width)
    if rng.random() < 0.5 and len(levels) > 1:
        p.line([(x0, levels[0]), (x1, levels[1])], colour, width)
    if rng.random() < 0.6:  # a plank deck
        y = levels[-1]
        p.rectangle([x0, y, x1, y + width * 2.5], _jitter(rng, (150, 112, 70), 15))


def _dome(rng: np.random.Generator, p: _Painter, size: int) -> None:
    """A hard-hat coloured dome or ball that is not a helmet on a head: a lamp, a bollard cap, a
    helmet on a shelf, a buoy."""
    r = size * math.exp(rng.uniform(math.log(0.03), math.log(0.11)))
    x, y = rng.uniform(0, size), rng.uniform(0.2, 1.0) * size
    colour = _jitter(rng, _choice(rng, HELMET_COLOURS), 10)
    kind = rng.random()
    if kind < 0.4:  # a ball
        p.ellipse([x - r, y - r, x + r, y + r], colour)
    else:
        p.chord([x - r, y - r * 0.9, x + r, y + r * 0.9], colour)
        if kind < 0.7:  # a post or a box under it, not a face
            base = _jitter(rng, STEEL if rng.random() < 0.5 else (90, 90, 96), 12)
            p.rectangle([x - r * 0.5, y, x + r * 0.5, y + r * rng.uniform(1, 4)], base)
        elif kind < 0.85:  # a helmet lying about: brim, nothing below
            p.ellipse([x - r * 1.2, y - r * 0.1, x + r * 1.2, y + r * 0.15], _scale(colour, 0.85))
    p.ellipse(
        [x - r * 0.6, y - r * 0.75, x - r * 0.15, y - r * 0.45], _mix(colour, (255, 255, 255), 0.5)
    )


def _clutter(rng: np.random.Generator, p: _Painter, size: int) -> None:
    """One of: a container, a cone, a barrel, a sign, a pipe, a sack, a round spool."""
    kind = int(rng.integers(7))
    x, y = rng.uniform(-0.1, 1.0) * size, rng.uniform(0.1, 1.0) * size
    s = size * rng.uniform(0.05, 0.25)
    colour = _jitter(rng, CLUTTER_COLOURS[rng.integers(len(CLUTTER_COLOURS))], 12)
    if kind == 0:  # container with ribs
        p.rectangle([x, y, x + s * 2, y + s], colour)
        for rib in np.linspace(x, x + s * 2, 8):
            p.line([(rib, y), (rib, y + s)], _scale(colour, 0.75), max(1, round(s * 0.03)))
    elif kind == 1:  # traffic cone
        cone = _jitter(rng, (242, 110, 30), 10)
        p.polygon([(x, y + s), (x + s * 0.3, y), (x + s * 0.6, y + s)], cone)
        p.rectangle([x + s * 0.15, y + s * 0.45, x + s * 0.45, y + s * 0.6], (235, 235, 235))
    elif kind == 2:  # barrel in a hard-hat colour with a stripe
        barrel = _jitter(rng, _choice(rng, HELMET_COLOURS), 10)
        p.rectangle([x, y, x + s * 0.6, y + s], barrel)
        p.rectangle([x, y + s * 0.3, x + s * 0.6, y + s * 0.42], (240, 240, 240))
    elif kind == 3:  # sign
        p.rectangle([x, y, x + s * 0.8, y + s * 0.6], (236, 236, 228))
        p.ellipse([x + s * 0.2, y + s * 0.1, x + s * 0.6, y + s * 0.5], (200, 40, 40))
    elif kind == 4:  # pipe or plank
        width = max(1, round(s * rng.uniform(0.08, 0.2)))
        p.line(
            [(x, y), (x + s * rng.uniform(-2, 2), y + s * rng.uniform(-0.5, 0.5))], colour, width
        )
    elif kind == 5:  # sack or rock
        p.ellipse([x, y, x + s, y + s * rng.uniform(0.4, 0.8)], colour)
    else:  # cable spool: a brown disc with a hub (round, skin-like, no face)
        wood = _jitter(rng, (150, 108, 72), 20)
        p.ellipse([x, y, x + s, y + s], wood)
        p.ellipse([x + s * 0.35, y + s * 0.35, x + s * 0.65, y + s * 0.65], _scale(wood, 0.6))


class _Worker(NamedTuple):
    cx: float
    top: float  # head top
    s: float  # head box height
    helmet: bool
    whole: bool  # with legs (wide shots)


def _body_boxes(w: _Worker) -> tuple[list[float], list[float]]:
    """Approximate head and body boxes of a worker, for placement."""
    s, cx, top = w.s, w.cx, w.top
    head = [cx - 0.5 * s, top, cx + 0.5 * s, top + s]
    bottom = top + (6.2 if w.whole else 3.8) * s
    return head, [cx - 1.1 * s, top + s, cx + 1.1 * s, bottom]


def _draw_worker(rng: np.random.Generator, p: _Painter, w: _Worker, label: int) -> None:
    """Draw one worker: body parts with label+1, the head (helmet or bare head) with label."""
    s, cx, top = w.s, w.cx, w.top
    head_label, body_label = label, label + 1
    skin = _jitter(rng, SKIN_LIGHT + (SKIN_DARK - SKIN_LIGHT) * rng.uniform(0, 1), 8)
    shirt = _jitter(rng, SHIRT_COLOURS[rng.integers(len(SHIRT_COLOURS))], 12)
    vest = _choice(rng, VEST_COLOURS)
    back = rng.random() < 0.12  # seen from behind

    # neck, torso, arms (legs and boots for whole figures)
    p.rectangle(
        [cx - 0.14 * s, top + 0.8 * s, cx + 0.14 * s, top + 1.15 * s],
        _scale(skin, 0.85),
        body_label,
    )
    ys = top + 1.05 * s
    half = s * rng.uniform(0.72, 0.95)
    length = s * (rng.uniform(2.1, 2.5) if w.whole else rng.uniform(2.0, 3.2))
    torso = [
        (cx - half + 0.18 * s, ys),
        (cx + half - 0.18 * s, ys),
        (cx + half, ys + 0.3 * s),
        (cx + half * 0.85, ys + length),
        (cx - half * 0.85, ys + length),
        (cx - half, ys + 0.3 * s),
    ]
    sleeve = shirt if rng.random() < 0.6 else skin
    arm = 0.26 * s
    swing = rng.uniform(-0.25, 0.35, 2) * s
    for side, dx in ((-1, swing[0]), (1, swing[1])):
        shoulder = cx + side * (half - 0.05 * s)
        hand = (shoulder + side * (arm * 0.6 + dx), ys + length * 0.85)
        p.line([(shoulder, ys + 0.25 * s), hand], sleeve, max(1, round(arm)), body_label)
        p.ellipse(
            [hand[0] - 0.12 * s, hand[1] - 0.1 * s, hand[0] + 0.12 * s, hand[1] + 0.14 * s],
            skin,
            body_label,
        )
    p.polygon(torso, shirt, body_label)
    if vest is not None:
        vest = _jitter(rng, vest, 10)
        inset = [(x + (cx - x) * 0.06, y + 0.04 * s) for x, y in torso]
        p.polygon(inset, vest)
        if rng.random() < 0.5 and not back:  # open in front
            p.rectangle([cx - 0.1 * s, ys, cx + 0.1 * s, ys + length], shirt)
        for level in (0.45, 0.72):
            y = ys + level * length
            stripe = _jitter(rng, (214, 214, 208), 6)
            p.rectangle([cx - half * 0.9, y, cx + half * 0.9, y + 0.12 * s], stripe)
    if w.whole:
        trousers = _jitter(rng, TROUSER_COLOURS[rng.integers(len(TROUSER_COLOURS))], 10)
        hip = ys + length - 0.05 * s
        leg = s * rng.uniform(2.5, 3.0)
        stride = rng.uniform(0.0, 0.35) * s
        for side in (-1, 1):
            x = cx + side * half * 0.42
            foot = x + side * stride
            width = half * 0.62
            p.polygon(
                [
                    (x - width / 2, hip),
                    (x + width / 2, hip),
                    (foot + width * 0.4, hip + leg),
                    (foot - width * 0.4, hip + leg),
                ],
                trousers,
                body_label,
            )
            p.rectangle(
                [
                    foot - width * 0.5,
                    hip + leg - 0.05 * s,
                    foot + width * 0.55,
                    hip + leg + 0.3 * s,
                ],
                (36, 30, 26),
                body_label,
            )

    # the head: hair or a helmet over a face of the same skin
    hair = _choice(rng, HAIR_COLOURS)
    hair = _scale(skin, 0.8) if hair is None else _jitter(rng, hair, 8)
    if w.helmet:
        helmet = _jitter(rng, _choice(rng, HELMET_COLOURS), 10)
        face = [cx - 0.32 * s, top + 0.3 * s, cx + 0.32 * s, top + s]
        for side in (-1, 1):
            ear = cx + side * 0.32 * s
            p.ellipse(
                [ear - 0.06 * s, top + 0.5 * s, ear + 0.06 * s, top + 0.72 * s], skin, head_label
            )
        p.ellipse(face, hair if back else skin, head_label)
        p.chord([cx - 0.41 * s, top, cx + 0.41 * s, top + 0.9 * s], helmet, head_label)
        brim = s * rng.uniform(0.46, 0.54)
        p.ellipse(
            [cx - brim, top + 0.38 * s, cx + brim, top + 0.5 * s], _scale(helmet, 0.82), head_label
        )
        p.line(
            [(cx, top + 0.04 * s), (cx, top + 0.38 * s)],
            _scale(helmet, 0.8),
            max(1, round(0.07 * s)),
        )
        p.ellipse(
            [cx - 0.26 * s, top + 0.08 * s, cx - 0.08 * s, top + 0.2 * s],
            _mix(helmet, (255, 255, 255), 0.55),
        )
        eyes = top + 0.62 * s
    else:
        wide = s * rng.uniform(0.36, 0.41)
        for side in (-1, 1):
            ear = cx + side * 0.34 * s
            p.ellipse(
                [ear - 0.06 * s, top + 0.45 * s, ear + 0.06 * s, top + 0.68 * s], skin, head_label
            )
        p.ellipse([cx - wide, top, cx + wide, top + 0.72 * s], hair, head_label)
        if back:
            p.ellipse([cx - 0.33 * s, top + 0.2 * s, cx + 0.33 * s, top + s], hair, head_label)
        else:
            p.ellipse([cx - 0.33 * s, top + 0.2 * s, cx + 0.33 * s, top + s], skin, head_label)
            p.chord([cx - 0.33 * s, top + 0.12 * s, cx + 0.33 * s, top + 0.5 * s], hair, head_label)
        eyes = top + 0.58 * s
    if not back:
        look = rng.uniform(-0.07, 0.07) * s
        r = max(0.6, 0.045 * s)
        for side in (-1, 1):
            ex = cx + look + side * 0.13 * s
            p.ellipse([ex - r, eyes - r, ex + r, eyes + r], (40, 30, 28))
        mouth = top + 0.84 * s
        p.line(
            [(cx + look - 0.09 * s, mouth), (cx + look + 0.09 * s, mouth)],
            _scale(skin, 0.6),
            max(1, round(0.04 * s)),
        )


def _cover(box: list[float], others: Iterable[list[float]]) -> float:
    """Share of `box` covered by the other boxes (intersections summed, at most 1)."""
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)
    total = 0.0
    for o in others:
        w = min(box[2], o[2]) - max(box[0], o[0])
        h = min(box[3], o[3]) - max(box[1], o[1])
        if w > 0 and h > 0:
            total += w * h
    return min(1.0, total / area)


def _layout(rng: np.random.Generator, size: int, wide: bool) -> list[_Worker]:
    """Workers back to front: smaller first, later ones in front. Each new worker may hide at most
    a drawn limit of any earlier head (usually a third, sometimes most of it)."""
    if wide:
        count = int(rng.integers(2, 8))
        scale = size * rng.uniform(0.065, 0.09)
        low, high = 0.06, 0.1
    else:
        count = int(rng.choice(9, p=[0.04, 0.12, 0.15, 0.16, 0.15, 0.13, 0.1, 0.08, 0.07]))
        scale = size * math.exp(rng.uniform(math.log(0.085), math.log(0.18)))
        low, high = 0.06, 0.25
    sizes = np.sort(np.clip(scale * rng.uniform(0.75, 1.3, count), low * size, high * size))
    share = rng.uniform(0.45, 1.0)  # share of hard hats on this site
    workers: list[_Worker] = []
    for s in sizes:
        s = float(s)
        limit = 0.3 if rng.random() < 0.8 else 0.85
        for _ in range(25):
            # mostly inside with a margin; a few cut by the frame by a clear amount
            edge = rng.random()
            if edge < 0.03:
                cx = rng.uniform(-0.3 * s, 0.3 * s)
            elif edge < 0.06:
                cx = size - rng.uniform(-0.3 * s, 0.3 * s)
            else:
                cx = rng.uniform(0.55 * s + 2, size - 0.55 * s - 2)
            edge = rng.random()
            if wide:
                top = rng.uniform(2, size - 5.6 * s)
            elif edge < 0.025:
                top = rng.uniform(-0.6 * s, -0.1 * s)
            elif edge < 0.05:
                top = rng.uniform(size - 0.8 * s, size - 0.5 * s)
            else:
                top = rng.uniform(2, size - s - 2)
            w = _Worker(cx, top, s, bool(rng.random() < share), wide)
            head, body = _body_boxes(w)
            earlier = [_body_boxes(o) for o in workers]
            if all(_cover(h, [head, body]) <= limit for h, _ in earlier) and (
                not wide or all(_cover(b, [head, body]) <= 0.5 for _, b in earlier)
            ):
                workers.append(w)
                break
    return workers


def _seed(spec: GeneratorSpec, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(0, index)))


def _box(slices: tuple[slice, slice] | None, offset: int) -> tuple[int, int, int, int] | None:
    if slices is None:
        return None
    ys, xs = slices
    return (xs.start - offset, ys.start - offset, xs.stop - offset, ys.stop - offset)


def _union(a, b):
    if a is None or b is None:
        return a if b is None else b
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _annotate(
    labels: np.ndarray, pad: int, size: int, workers: list[_Worker], full: np.ndarray
) -> list[VocObject]:
    """Boxes, truncation, occlusion and difficulty from the padded label map: worker k owns
    labels 2k+1 (head) and 2k+2 (body)."""
    inside = labels[pad : pad + size, pad : pad + size]
    seen = np.bincount(labels.ravel(), minlength=256)
    seen_inside = np.bincount(inside.ravel(), minlength=256)
    extents = ndimage.find_objects(labels)
    boxes = ndimage.find_objects(inside)

    def get(found, label):
        return found[label - 1] if label - 1 < len(found) else None

    heads, persons = [], []
    for k, w in enumerate(workers):
        head, body = 2 * k + 1, 2 * k + 2
        parts = [(head, "helmet" if w.helmet else "head", (head,))]
        if w.whole:
            parts.append((body, "person", (head, body)))
        for _, name, owned in parts:
            total = sum(int(full[i]) for i in owned)
            visible = sum(int(seen[i]) for i in owned)
            in_frame = sum(int(seen_inside[i]) for i in owned)
            box = extent = None
            for i in owned:
                box = _union(box, _box(get(boxes, i), 0))
                extent = _union(extent, _box(get(extents, i), pad))
            if box is None or total == 0 or in_frame < MIN_VISIBLE * total:
                continue
            if box[2] - box[0] < 2 or box[3] - box[1] < 2:
                continue
            occlusion = 1 - visible / total
            touches = box[0] == 0 or box[1] == 0 or box[2] == size or box[3] == size
            truncated = int(touches and extent != box)
            tiny = min(box[2] - box[0], box[3] - box[1]) < DIFFICULT_SIDE
            difficult = int(tiny or occlusion > DIFFICULT_OCCLUSION)
            obj = VocObject(name, box, truncated, difficult, extent, round(occlusion, 4))
            (persons if name == "person" else heads).append(obj)
    return heads + persons


def _finish(rng: np.random.Generator, image: Image.Image) -> np.ndarray:
    """Camera: mild blur, brightness, a colour cast, a lighting ramp and sensor noise."""
    size = image.size[0]
    radius = rng.uniform(0.25, 0.9) * size / 192
    pixels = np.asarray(image.filter(ImageFilter.GaussianBlur(radius)), np.float32)
    gain = (rng.uniform(0.75, 1.2) * (1 + rng.normal(0, 0.04, 3))).astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    axis = np.arange(size, dtype=np.float32) / size - 0.5
    ramp = np.float32(math.cos(angle)) * axis[None, :] + np.float32(math.sin(angle)) * axis[:, None]
    light = 1 + np.float32(rng.uniform(0, 0.2)) * ramp
    pixels *= light[..., None] * gain
    # sensor noise: the sum of two uniforms (triangular, sd 1 after scaling), much cheaper than
    # normal draws and indistinguishable at these amplitudes
    noise = rng.random((2, *pixels.shape), dtype=np.float32)
    pixels += (noise[0] + noise[1] - 1) * np.float32(math.sqrt(6) * rng.uniform(1.5, 5.0))
    pixels += np.float32(0.5)  # round half up on the cast
    np.clip(pixels, 0, 255, out=pixels)
    return pixels.astype(np.uint8)


def _render(spec: GeneratorSpec, index: int) -> Sample:
    rng = _seed(spec, index)
    wide = is_wide(spec, index)
    size = spec.size
    image, horizon = _background(rng, size)
    pad = size // 4 + 4  # room for every head and every whole figure cut by the frame
    p = _Painter(image, pad)
    if rng.random() < 0.45:
        _building(rng, p, size, horizon)
    if rng.random() < 0.5:
        _scaffolding(rng, p, size)
    for _ in range(int(rng.integers(1, 7))):
        _clutter(rng, p, size)
    for _ in range(min(3, int(rng.poisson(1.0)))):
        _dome(rng, p, size)

    workers = _layout(rng, size, wide)
    full = np.zeros(256, np.int64)
    for k, w in enumerate(workers):
        _draw_worker(rng, p, w, 2 * k + 1)
        counts = p.counts()  # nothing is in front of this worker yet: its full area
        full[2 * k + 1 : 2 * k + 3] = counts[2 * k + 1 : 2 * k + 3]

    if rng.random() < 0.12:  # a railing or a pole in front hides parts of workers
        colour = _jitter(rng, STEEL if rng.random() < 0.6 else (238, 200, 34), 10)
        width = max(2, round(size * rng.uniform(0.015, 0.035)))
        if rng.random() < 0.6:
            y = rng.uniform(0.35, 0.9) * size
            p.line([(-1, y), (size + 1, y + rng.uniform(-0.1, 0.1) * size)], colour, width, 0)
        else:
            x = rng.uniform(0.05, 0.95) * size
            p.line([(x, -1), (x + rng.uniform(-0.1, 0.1) * size, size + 1)], colour, width, 0)

    labels = np.asarray(p.labels)
    objects = _annotate(labels, pad, size, workers, full)
    return Sample(_finish(rng, image), objects, wide)


def render(spec: GeneratorSpec, index: int) -> Sample:
    """Image `index` (0..images-1) of the dataset with its objects; it depends on (seed, index,
    size, person_share) only, not on how many images are generated."""
    _check(spec)
    if not 0 <= index < spec.images:
        raise IndexError(f"index must be in 0..{spec.images - 1}, got {index}")
    return _render(spec, index)


def write_hardhat(dest: Path, spec: GeneratorSpec) -> dict:
    """Write dest/images/hard_hat_workersN.png and dest/annotations/hard_hat_workersN.xml for
    N = 0..images-1; return a summary dict. The same spec gives byte-identical files."""
    _check(spec)
    dest = Path(dest)
    (dest / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    (dest / ANNOTATIONS_DIR).mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(CLASSES, 0)
    empty = with_person = truncated = difficult = 0
    for index in range(spec.images):
        sample = _render(spec, index)
        name = stem(index)
        image = Image.fromarray(sample.image, "RGB")
        image.save(dest / IMAGES_DIR / f"{name}.png", "PNG", **PNG_OPTIONS)
        xml = annotation_xml(f"{name}.png", spec.size, spec.size, sample.objects)
        (dest / ANNOTATIONS_DIR / f"{name}.xml").write_text(xml, encoding="utf-8")
        for obj in sample.objects:
            counts[obj.name] += 1
            truncated += obj.truncated
            difficult += obj.difficult
        empty += not sample.objects
        with_person += any(obj.name == "person" for obj in sample.objects)
    return {
        "images": spec.images,
        "size": spec.size,
        "seed": spec.seed,
        "objects": counts,
        "images_with_person": with_person,
        "empty_images": empty,
        "truncated": truncated,
        "difficult": difficult,
    }
