"""A synthetic Simpsons (Kaggle `journey-springfield`) dataset in the real folder layout, so the
same loader reads real and builtin data and the pipeline runs offline in minutes.

Every class is a cartoon "character" with its own body shape, body hue and accessory (no two
classes share all three), drawn at a random place, scale and angle on a cluttered, desaturated
background with lighting jitter, noise and JPEG artefacts. Class sizes decay geometrically from
homer_simpson to lionel_hutz like the real set's, so stratification and macro-F1 matter.
`test_labels.csv` holds the truth for `testset/testset/` (Kaggle keeps it secret).
"""

from __future__ import annotations

import colorsys
import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageChops, ImageDraw


@dataclass(frozen=True)
class GeneratorSpec:
    classes: int = 12  # 2..42, the first `classes` of CLASS_NAMES (largest first)
    images: int = 1000  # labelled training images over all classes
    test_images: int = 150  # unlabelled images in testset/testset/
    size: int = 96  # typical side; width and height are each size * U(0.8, 1.25)
    min_per_class: int = 4  # the two rarest classes get exactly this many (real: lionel_hutz 3)
    seed: int = 42


TRAIN_DIR = "train/simpsons_dataset"
TEST_DIR = "testset/testset"
SAMPLE_SUBMISSION_FILE = "sample_submission.csv"
TEST_LABELS_FILE = "test_labels.csv"
SUBMISSION_COLUMNS = ("Id", "Expected")
SAMPLE_EXPECTED = "bart_simpson"  # what Kaggle's sample submission predicts for every image

# The real classes, largest first (homer_simpson 2246 images ... lionel_hutz 3).
CLASS_NAMES: tuple[str, ...] = (
    "homer_simpson",
    "ned_flanders",
    "moe_szyslak",
    "lisa_simpson",
    "bart_simpson",
    "marge_simpson",
    "krusty_the_clown",
    "principal_skinner",
    "charles_montgomery_burns",
    "milhouse_van_houten",
    "chief_wiggum",
    "abraham_grampa_simpson",
    "sideshow_bob",
    "apu_nahasapeemapetilon",
    "kent_brockman",
    "comic_book_guy",
    "edna_krabappel",
    "nelson_muntz",
    "lenny_leonard",
    "mayor_quimby",
    "waylon_smithers",
    "maggie_simpson",
    "groundskeeper_willie",
    "barney_gumble",
    "selma_bouvier",
    "carl_carlson",
    "ralph_wiggum",
    "patty_bouvier",
    "martin_prince",
    "professor_john_frink",
    "snake_jailbird",
    "cletus_spuckler",
    "rainier_wolfcastle",
    "agnes_skinner",
    "sideshow_mel",
    "otto_mann",
    "fat_tony",
    "gil",
    "miss_hoover",
    "troy_mcclure",
    "disco_stu",
    "lionel_hutz",
)

SHAPES = ("circle", "ellipse", "square", "rounded_box", "triangle", "diamond", "hexagon", "star")
ACCESSORIES = ("hair_spikes", "stripes", "dots", "big_eyes", "hat", "collar", "none")
# Profile of class sizes: class k gets min + extra * (q**k - q**(n-2)), q = DECAY**(-1/(n-1)), so
# the sizes fall smoothly into min_per_class instead of dropping off a cliff.
DECAY = 20.0
# (saturation, value) tiers cycled every 7 classes so that near hues also differ in shade.
TIERS = ((0.85, 0.95), (0.95, 0.70), (0.60, 0.98))
GOLDEN = (math.sqrt(5) - 1) / 2
SUPERSAMPLE = 2  # characters are drawn at 2x and reduced: cheap antialiasing


class Character(NamedTuple):
    """How one class looks: everything a model can learn to tell it apart."""

    name: str
    shape: str
    hue: float  # 0..1
    saturation: float
    value: float
    accessory: str


def _characters() -> tuple[Character, ...]:
    """Shapes cycle with period 8 and accessories with period 7, so (shape, accessory) is unique
    for all 42 classes; golden-ratio hues keep the first few classes (the ones small specs use)
    far apart on the colour wheel and make every hue distinct."""
    out = []
    for i, name in enumerate(CLASS_NAMES):
        saturation, value = TIERS[(i // 7) % len(TIERS)]
        hue = (0.12 + i * GOLDEN) % 1.0
        out.append(Character(name, SHAPES[i % 8], hue, saturation, value, ACCESSORIES[i % 7]))
    return tuple(out)


CHARACTERS = _characters()


def _check(spec: GeneratorSpec) -> None:
    if not 2 <= spec.classes <= len(CLASS_NAMES):
        raise ValueError(f"classes must be in 2..{len(CLASS_NAMES)}, got {spec.classes}")
    if spec.min_per_class < 1:
        raise ValueError(f"min_per_class must be >= 1, got {spec.min_per_class}")
    if spec.images < spec.classes * spec.min_per_class:
        raise ValueError(
            f"images ({spec.images}) < classes * min_per_class "
            f"({spec.classes} * {spec.min_per_class})"
        )
    if spec.size < 32:
        raise ValueError(f"size must be >= 32 pixels, got {spec.size}")
    if spec.test_images < 0:
        raise ValueError(f"test_images must be >= 0, got {spec.test_images}")


def class_counts(spec: GeneratorSpec) -> list[int]:
    """Training images per class: non-increasing, geometric decay, the last two (the last one
    when there are only two classes) exactly min_per_class, summing to spec.images."""
    _check(spec)
    n, low = spec.classes, spec.min_per_class
    pinned = min(2, n - 1)
    free = n - pinned
    q = DECAY ** (-1 / (n - 1))
    weights = np.array([q**k - q**free for k in range(free)])
    extra = spec.images - n * low
    share = extra * weights / weights.sum()
    counts = np.floor(share).astype(int)
    # Largest remainders take the leftover images; re-sorting keeps the counts non-increasing.
    leftover = extra - counts.sum()
    counts[np.argsort(-(share - counts), kind="stable")[:leftover]] += 1
    counts = sorted((low + counts).tolist(), reverse=True)
    return counts + [low] * pinned


def _rgb(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, min(max(saturation, 0), 1), min(max(value, 0), 1))
    return round(r * 255), round(g * 255), round(b * 255)


def _dull(rng: np.random.Generator) -> tuple[int, int, int]:
    """A desaturated colour for backgrounds and clutter, so the characters stand out."""
    return _rgb(rng.random(), rng.uniform(0.0, 0.25), rng.uniform(0.3, 0.95))


def _background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A two-colour linear gradient in a random direction plus a few clutter shapes and lines."""
    a, b = np.array(_dull(rng), np.float32), np.array(_dull(rng), np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = xs * math.cos(angle) + ys * math.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    pixels = a + (b - a) * t[..., None]
    image = Image.fromarray(pixels.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    side = min(width, height)
    for _ in range(int(rng.integers(2, 7))):
        x0, y0 = rng.uniform(-0.1, 1.0) * width, rng.uniform(-0.1, 1.0) * height
        dx, dy = rng.uniform(0.1, 0.6, size=2) * side
        box = [x0, y0, x0 + dx, y0 + dy]
        colour = _dull(rng)
        kind = int(rng.integers(4))
        if kind == 0:
            draw.line(box, fill=colour, width=int(rng.integers(1, 5)))
        elif kind == 1:
            draw.rectangle(box, fill=colour)
        elif kind == 2:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, outline=colour, width=int(rng.integers(1, 4)))
    return image


def _regular(cx: float, cy: float, radius: float, sides: int, start: float = -90.0) -> list:
    return [
        (
            cx + radius * math.cos(math.radians(start + 360 * k / sides)),
            cy + radius * math.sin(math.radians(start + 360 * k / sides)),
        )
        for k in range(sides)
    ]


def _star(cx: float, cy: float, outer: float, inner: float) -> list:
    points = []
    for k in range(10):
        radius = outer if k % 2 == 0 else inner
        angle = math.radians(-90 + 36 * k)
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


def _draw_body(shape: str, draw: ImageDraw.ImageDraw, s: float, fill, outline, width: int) -> None:
    """Draw the body of `shape` on a canvas of side s (unit coordinates scaled by s); the space
    above TOP[shape] is left for hair and hats."""

    def box(x0: float, y0: float, x1: float, y1: float) -> list[float]:
        return [x0 * s, y0 * s, x1 * s, y1 * s]

    def poly(points: list) -> list[tuple[float, float]]:
        return [(x * s, y * s) for x, y in points]

    if shape == "circle":
        draw.ellipse(box(0.14, 0.26, 0.86, 0.98), fill=fill, outline=outline, width=width)
    elif shape == "ellipse":
        draw.ellipse(box(0.25, 0.22, 0.75, 0.99), fill=fill, outline=outline, width=width)
    elif shape == "square":
        draw.rectangle(box(0.17, 0.28, 0.83, 0.94), fill=fill, outline=outline, width=width)
    elif shape == "rounded_box":
        draw.rounded_rectangle(
            box(0.08, 0.3, 0.92, 0.92), radius=0.2 * s, fill=fill, outline=outline, width=width
        )
    elif shape == "triangle":
        draw.polygon(poly([(0.5, 0.22), (0.04, 0.97), (0.96, 0.97)]), fill, outline, width)
    elif shape == "diamond":
        points = [(0.5, 0.2), (0.92, 0.6), (0.5, 0.99), (0.08, 0.6)]
        draw.polygon(poly(points), fill, outline, width)
    elif shape == "hexagon":
        draw.polygon(poly(_regular(0.5, 0.62, 0.4, 6, start=0)), fill, outline, width)
    elif shape == "star":
        draw.polygon(poly(_star(0.5, 0.62, 0.46, 0.24)), fill, outline, width)
    else:
        raise ValueError(f"unknown shape {shape!r}")


# Where hair or a hat sits and where the eyes go, per shape (unit coordinates).
TOP = {
    "circle": 0.26,
    "ellipse": 0.22,
    "square": 0.28,
    "rounded_box": 0.3,
    "triangle": 0.3,
    "diamond": 0.24,
    "hexagon": 0.27,
    "star": 0.2,
}
EYES = {
    "circle": 0.52,
    "ellipse": 0.45,
    "square": 0.5,
    "rounded_box": 0.52,
    "triangle": 0.66,
    "diamond": 0.55,
    "hexagon": 0.55,
    "star": 0.6,
}


def _character(rng: np.random.Generator, who: Character, side: int) -> Image.Image:
    """The character on a transparent square canvas of `side` pixels, with small per-image
    jitter of its colours so that the class is a distribution, not a template."""
    s = side * SUPERSAMPLE
    canvas = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    hue = who.hue + rng.uniform(-0.012, 0.012)
    saturation = who.saturation * rng.uniform(0.9, 1.05)
    value = who.value * rng.uniform(0.9, 1.05)
    body = _rgb(hue, saturation, value)
    dark = _rgb(hue, saturation, value * 0.45)
    width = max(1, round(0.035 * s))
    _draw_body(who.shape, draw, s, body, dark, width)

    # Patterns are clipped to the body: draw them on a mask, multiply by the body's own mask.
    if who.accessory in ("stripes", "dots", "collar"):
        body_mask = Image.new("L", (s, s), 0)
        _draw_body(who.shape, ImageDraw.Draw(body_mask), s, 255, 255, 1)
        pattern = Image.new("L", (s, s), 0)
        pen = ImageDraw.Draw(pattern)
        if who.accessory == "stripes":
            step = 0.13 * s
            offset = rng.uniform(0, step)
            for k in range(-1, 9):
                y = offset + k * step
                pen.rectangle([0, y, s, y + 0.055 * s], fill=255)
            colour = dark
        elif who.accessory == "dots":
            step, r = 0.17 * s, 0.045 * s
            ox, oy = rng.uniform(0, step, size=2)
            for i in range(-1, 7):
                for j in range(-1, 7):
                    x, y = ox + i * step + (j % 2) * step / 2, oy + j * step
                    pen.ellipse([x - r, y - r, x + r, y + r], fill=255)
            colour = (250, 250, 245)
        else:
            pen.rectangle([0, 0.8 * s, s, 0.88 * s], fill=255)
            colour = (250, 250, 250)
        canvas.paste(colour, mask=ImageChops.multiply(body_mask, pattern))
        if who.accessory == "collar":
            tie = [(0.5 * s, 0.84 * s), (0.44 * s, 0.99 * s), (0.56 * s, 0.99 * s)]
            draw.polygon(tie, fill=(200, 30, 40))

    top, eye_y = TOP[who.shape] * s, EYES[who.shape] * s
    if who.accessory == "hair_spikes":
        spikes = int(rng.integers(4, 7))
        points = [(0.22 * s, top + 0.07 * s)]
        for k in range(spikes):
            x = (0.22 + 0.56 * (k + 0.5) / spikes) * s
            points += [(x, top - 0.2 * s), ((0.22 + 0.56 * (k + 1) / spikes) * s, top)]
        points.append((0.78 * s, top + 0.07 * s))
        draw.polygon(points, fill=(45, 32, 25))
    elif who.accessory == "hat":
        hat = _rgb(hue + 0.5, 0.7, 0.35)
        draw.rectangle([0.33 * s, 0.0 * s, 0.67 * s, top + 0.02 * s], fill=hat)
        draw.rectangle([0.18 * s, top - 0.04 * s, 0.82 * s, top + 0.04 * s], fill=hat)

    big = who.accessory == "big_eyes"
    radius, gap = (0.13 if big else 0.065) * s, (0.15 if big else 0.1) * s
    pupil = (0.055 if big else 0.03) * s
    look = rng.uniform(-0.4, 0.4, size=2) * (radius - pupil)
    for x in (0.5 * s - gap, 0.5 * s + gap):
        draw.ellipse([x - radius, eye_y - radius, x + radius, eye_y + radius], fill=(255, 255, 255))
        px, py = x + look[0], eye_y + look[1]
        draw.ellipse([px - pupil, py - pupil, px + pupil, py + pupil], fill=(0, 0, 0))
    mouth = eye_y + radius + 0.06 * s
    draw.arc(
        [0.4 * s, mouth - 0.06 * s, 0.6 * s, mouth + 0.06 * s], 20, 160, fill=dark, width=width
    )
    return canvas.reduce(SUPERSAMPLE)


def _image(rng: np.random.Generator, who: Character, size: int) -> tuple[Image.Image, int]:
    """One photo-like sample and its JPEG quality."""
    width, height = (round(size * f) for f in rng.uniform(0.8, 1.25, size=2))
    image = _background(rng, width, height)
    side = round(min(width, height) * rng.uniform(0.4, 0.75))
    character = _character(rng, who, side).rotate(
        rng.uniform(-25, 25), resample=Image.Resampling.BICUBIC, expand=True
    )
    cx = rng.uniform(side / 2, width - side / 2)
    cy = rng.uniform(side / 2, height - side / 2)
    image.paste(
        character,
        (round(cx - character.width / 2), round(cy - character.height / 2)),
        character,
    )
    pixels = np.asarray(image, np.float32)
    mean = pixels.mean()
    pixels = (pixels - mean) * rng.uniform(0.8, 1.2) + mean  # contrast
    pixels = pixels * rng.uniform(0.75, 1.2) + rng.uniform(-12, 12)  # brightness
    pixels += rng.normal(0.0, rng.uniform(1.5, 5.0), size=pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8), "RGB")
    return image, int(rng.integers(80, 96))


def _test_labels(rng: np.random.Generator, counts: list[int], n: int) -> np.ndarray:
    """Test classes with the train imbalance, but every class at least once when there is room
    (a class absent from the test set has no F1)."""
    k = len(counts)
    p = np.array(counts, float) / sum(counts)
    if n < k:
        return rng.choice(k, size=n, p=p)
    labels = np.concatenate([np.arange(k), rng.choice(k, size=n - k, p=p)])
    return rng.permutation(labels)


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(SUBMISSION_COLUMNS)
        writer.writerows(rows)


def write_simpsons(dest: Path, spec: GeneratorSpec) -> dict:
    """Write the dataset into the existing folder dest; return an info dict (class counts,
    totals). One Generator(seed) draws the plan and spawns one child per image, so the same seed
    gives byte-identical files."""
    _check(spec)
    dest = Path(dest)
    rng = np.random.default_rng(spec.seed)
    names = list(CLASS_NAMES[: spec.classes])
    counts = class_counts(spec)
    test_labels = _test_labels(rng, counts, spec.test_images)
    children = rng.spawn(spec.images + spec.test_images)

    train_dir = dest / TRAIN_DIR
    child = iter(children)
    for cls, count in enumerate(counts):
        folder = train_dir / names[cls]
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image, quality = _image(next(child), CHARACTERS[cls], spec.size)
            image.save(folder / f"pic_{i:04d}.jpg", "JPEG", quality=quality)

    test_dir = dest / TEST_DIR
    test_dir.mkdir(parents=True, exist_ok=True)
    ids = [f"img{i}.jpg" for i in range(spec.test_images)]
    for name, cls in zip(ids, test_labels, strict=True):
        image, quality = _image(next(child), CHARACTERS[cls], spec.size)
        image.save(test_dir / name, "JPEG", quality=quality)

    _write_csv(dest / SAMPLE_SUBMISSION_FILE, [(i, SAMPLE_EXPECTED) for i in ids])
    _write_csv(
        dest / TEST_LABELS_FILE, [(i, names[c]) for i, c in zip(ids, test_labels, strict=True)]
    )
    test_counts = np.bincount(test_labels, minlength=spec.classes).tolist()
    return {
        "classes": names,
        "train_counts": dict(zip(names, counts, strict=True)),
        "test_counts": dict(zip(names, test_counts, strict=True)),
        "train_images": spec.images,
        "test_images": spec.test_images,
        "imbalance": counts[0] / counts[-1],
        "seed": spec.seed,
    }
