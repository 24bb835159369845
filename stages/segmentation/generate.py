"""A synthetic PH2 dermoscopy dataset in the real archive's layout, so the same loader reads the
real PH2 and the builtin data and the pipeline runs offline on a CPU in minutes.

Every image is a patch of textured skin (its own tone) seen through a dermoscope (dark circular
vignetting at the corners) with one pigmented lesion: a smooth random radial outline, round and
uniform for common nevi, more asymmetric, multicoloured (black, blue-grey veil, whitish
regression, red) and blurrier for melanomas, with a pigment network, globules and streaks as the
metadata row says. The border is blurred in the image while the mask stays the exact lesion
region; dark curved hairs cross skin and lesion and are never part of the mask. Thresholding
fails on the corners, the hair and the light lesions; a small UNet does not.

Real PH2: 200 images of ~768x560 (80 common nevi, 80 atypical nevi, 40 melanomas), ids IMD002..
IMD437 with gaps, `PH2_dataset.txt` a `||` table followed by a legend. The default size here is
192x144 so that 200 images take seconds; the roi files are invented stand-ins (loaders ignore
them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage


@dataclass(frozen=True)
class GeneratorSpec:
    images: int = 200  # PH2 has 200
    width: int = 192  # real PH2 is ~768x560; default kept small for CPU
    height: int = 144
    seed: int = 42


ROOT_DIR = "PH2Dataset"
IMAGES_DIR = "PH2Dataset/PH2 Dataset images"  # note the space, as in the real archive
METADATA_FILE = "PH2Dataset/PH2_dataset.txt"

# Clinical Diagnosis codes 0/1/2 and the real 80/80/40 shares.
DIAGNOSES = ("Common Nevus", "Atypical Nevus", "Melanoma")
SHARES = (0.4, 0.4, 0.2)
# The "Colors" codes of the real legend.
COLOURS = {1: "White", 2: "Red", 3: "Light-Brown", 4: "Dark-Brown", 5: "Blue-Gray", 6: "Black"}
CRITERIA = (
    "Asymmetry",
    "Pigment Network",
    "Dots/Globules",
    "Streaks",
    "Regression Areas",
    "Blue-Whitish Veil",
)
HEADER = (
    "||   Name || Histological Diagnosis || Clinical Diagnosis || "
    + " | ".join(CRITERIA)
    + " ||           Colors ||"
)
LEGEND = """Legend:

Clinical Diagnosis:
\t0 - Common Nevus;
\t1 - Atypical Nevus;
\t2 - Melanoma.

Asymmetry:
\t0 - Fully Symmetric;
\t1 - Symetric in 1 axe;
\t2 - Fully Asymmetric.

Pigment Network, Dots/Globules, Streaks, Regression Areas, and Blue-Whitish Veil:
\tA - Absent;
\tAT - Atypical;
\tP - Present;
\tT - Typical.

Colors:
\t1 - White;
\t2 - Red;
\t3 - Light-Brown;
\t4 - Dark-Brown;
\t5 - Blue-Gray;
\t6 - Black.
"""
REAL_IDS = range(2, 438)  # the real ids run IMD002..IMD437 with gaps
COVERAGE = (0.1, 0.6)  # share of the image a lesion covers, before border clipping
SUPERSAMPLE = 2  # hairs are drawn at 2x and reduced: cheap antialiasing

# Absolute pigment colours (RGB); light brown is relative to the skin (see _palette).
BLACK = (40, 30, 30)
BLUE_GREY = (104, 108, 124)
WHITE = (206, 186, 180)
RED = (172, 78, 72)
DARK_BROWN = (100, 62, 42)


class Lesion(NamedTuple):
    """One row of PH2_dataset.txt; the renderer draws what it says."""

    name: str  # IMDnnn
    diagnosis: int  # 0 common nevus, 1 atypical nevus, 2 melanoma
    histology: str  # "" or the histological diagnosis
    asymmetry: int  # 0 symmetric, 1 symmetric in one axis, 2 asymmetric
    network: str  # pigment network: A / T / AT
    globules: str  # dots and globules: A / T / AT
    streaks: str  # A / P
    regression: str  # A / P (whitish scar-like areas)
    veil: str  # A / P (blue-whitish veil)
    colours: tuple[int, ...]  # codes of COLOURS


class Sample(NamedTuple):
    image: np.ndarray  # (height, width, 3) uint8
    mask: np.ndarray  # (height, width) bool, the exact lesion
    roi: np.ndarray  # (height, width) bool, the lesion's darkest colour region


def _check(spec: GeneratorSpec) -> None:
    if not 1 <= spec.images <= 999:
        raise ValueError(f"images must be in 1..999 (three-digit ids), got {spec.images}")
    if spec.width < 32 or spec.height < 32:
        raise ValueError(f"width and height must be >= 32 pixels, got {spec.width}x{spec.height}")


def _plan_rng(spec: GeneratorSpec) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(0,)))


def image_ids(spec: GeneratorSpec) -> list[str]:
    """Sorted ids IMDnnn: a seeded sample of the real id range IMD002..IMD437 (all of 001..999
    when more images are asked for), so that ids have gaps like the real ones."""
    _check(spec)
    pool = REAL_IDS if spec.images <= len(REAL_IDS) else range(1, 1000)
    picked = _plan_rng(spec).choice(np.array(pool), size=spec.images, replace=False)
    return [f"IMD{i:03d}" for i in sorted(picked.tolist())]


def diagnosis_counts(n: int) -> list[int]:
    """Images per Clinical Diagnosis for n images: the 80/80/40 shares, largest remainders."""
    share = np.array(SHARES) * n
    counts = np.floor(share).astype(int)
    counts[np.argsort(-(share - counts), kind="stable")[: n - counts.sum()]] += 1
    return counts.tolist()


def _pick(rng: np.random.Generator, options: dict) -> object:
    keys = list(options)
    return keys[int(rng.choice(len(keys), p=np.array(list(options.values())) / 100))]


def _lesion(rng: np.random.Generator, name: str, diagnosis: int) -> Lesion:
    """The dermoscopic criteria of one lesion, drawn by diagnosis (nevi regular and brown,
    melanomas asymmetric, atypical and multicoloured)."""
    if diagnosis == 0:
        histology = ""
        asymmetry = _pick(rng, {0: 80, 1: 20})
        network = _pick(rng, {"T": 60, "A": 40})
        globules = _pick(rng, {"A": 60, "T": 40})
        streaks = regression = veil = "A"
        extra = []
    elif diagnosis == 1:
        histology = _pick(rng, {"": 70, "Dysplastic Nevus": 30})
        asymmetry = _pick(rng, {0: 35, 1: 40, 2: 25})
        network = _pick(rng, {"T": 40, "AT": 40, "A": 20})
        globules = _pick(rng, {"A": 40, "T": 30, "AT": 30})
        streaks = _pick(rng, {"A": 90, "P": 10})
        regression = _pick(rng, {"A": 90, "P": 10})
        veil = _pick(rng, {"A": 95, "P": 5})
        extra = [c for c, p in ((6, 0.2), (2, 0.1)) if rng.random() < p]
    else:
        histology = "Melanoma"
        asymmetry = _pick(rng, {2: 75, 1: 25})
        network = _pick(rng, {"AT": 70, "T": 10, "A": 20})
        globules = _pick(rng, {"AT": 60, "A": 30, "T": 10})
        streaks = _pick(rng, {"A": 60, "P": 40})
        regression = _pick(rng, {"A": 50, "P": 50})
        veil = _pick(rng, {"A": 40, "P": 60})
        extra = [c for c, p in ((6, 0.7), (2, 0.3)) if rng.random() < p]
    browns = [(3,), (4,), (3, 4)][int(rng.choice(3, p=[0.35, 0.25, 0.4]))]
    if diagnosis > 0:
        browns = (3, 4)
    colours = set(browns) | set(extra)
    if regression == "P":
        colours.add(1)
    if veil == "P":
        colours.add(5)
    return Lesion(
        name,
        diagnosis,
        histology,
        asymmetry,
        network,
        globules,
        streaks,
        regression,
        veil,
        tuple(sorted(colours)),
    )


def plan(spec: GeneratorSpec) -> list[Lesion]:
    """The metadata of every image, in id order, without rendering anything: diagnoses in the
    80/80/40 shares, shuffled over the ids."""
    ids = image_ids(spec)
    shuffle = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(1,)))
    labels = shuffle.permutation(np.repeat(np.arange(3), diagnosis_counts(spec.images)))
    criteria_rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(2,)))
    return [_lesion(criteria_rng, name, int(d)) for name, d in zip(ids, labels, strict=True)]


def _row(lesion: Lesion) -> str:
    criteria = [str(lesion.asymmetry), lesion.network, lesion.globules]
    criteria += [lesion.streaks, lesion.regression, lesion.veil]
    middle = " | ".join(v.rjust(len(c)) for v, c in zip(criteria, CRITERIA, strict=True))
    colours = "  ".join(str(c) for c in lesion.colours)
    return (
        f"|| {lesion.name} || {lesion.histology:>22} || {lesion.diagnosis:>18} || {middle} || "
        f"{colours:>16} ||"
    )


def metadata_text(lesions: list[Lesion]) -> str:
    """PH2_dataset.txt: the `||` table, a blank line, then the legend (as in the real file)."""
    return "\n".join([HEADER, *(_row(lesion) for lesion in lesions), "", "", LEGEND])


# ----------------------------------------------------------------------------------- rendering


def _field(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Smooth random field, about zero mean and unit sd, with blobs of about `cell` pixels."""
    gh, gw = max(2, math.ceil(height / cell) + 2), max(2, math.ceil(width / cell) + 2)
    grid = rng.normal(size=(gh, gw)).astype(np.float32)
    image = Image.fromarray(grid, "F").resize(
        (round(gw * cell), round(gh * cell)), Image.Resampling.BICUBIC
    )
    out = np.asarray(image)[round(cell) : round(cell) + height, round(cell) : round(cell) + width]
    return out / max(float(out.std()), 1e-6)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _skin(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Skin of a random tone (pale pink to tan) with blotchy redness and fine texture."""
    light = np.array([238, 196, 180], np.float32)
    dark = np.array([176, 120, 94], np.float32)
    tone = rng.uniform(0, 1)
    base = light + (dark - light) * tone + rng.normal(0, 5, size=3)
    side = min(height, width)
    shade = _field(rng, height, width, side / rng.uniform(1.5, 3.5))
    redness = _field(rng, height, width, side / rng.uniform(2, 5))
    grain = ndimage.gaussian_filter(rng.normal(size=(height, width)), 0.7).astype(np.float32)
    grain /= max(float(grain.std()), 1e-6)
    skin = base * (1 + rng.uniform(0.02, 0.06) * shade)[..., None]
    skin += np.array([1.0, -0.5, -0.4], np.float32) * rng.uniform(3, 10) * redness[..., None]
    return skin + rng.uniform(2, 5) * grain[..., None]


def _outline(
    rng: np.random.Generator, lesion: Lesion, height: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The exact lesion mask, the normalised radius (0 centre, 1 border) and the angle, from a
    random smooth radial outline r(theta) = r0 * exp(sum a_k cos(k theta + phi_k)) on a rotated
    ellipse, scaled so that the mask covers a target share of the image."""
    irregular = [rng.uniform(0.03, 0.07), rng.uniform(0.07, 0.13), rng.uniform(0.13, 0.22)]
    amount = irregular[lesion.asymmetry]
    terms, decay = [(3, 1.6), (6, 1.3), (12, 1.0)][lesion.asymmetry]
    k = np.arange(1, terms + 1)
    amplitude = amount * rng.normal(size=terms) / k**decay
    amplitude[0] *= 0.5  # the first harmonic mostly shifts the centre
    phase = rng.uniform(0, 2 * math.pi, size=terms)
    stretch = rng.uniform(1.0, 1.25 + 0.15 * lesion.asymmetry)
    angle = rng.uniform(0, math.pi)
    low, high = [(0.1, 0.4), (0.15, 0.5), (0.25, 0.6)][lesion.diagnosis]
    target = rng.uniform(low, high)

    cx, cy = width * (0.5 + rng.uniform(-0.12, 0.12)), height * (0.5 + rng.uniform(-0.12, 0.12))
    r0 = math.sqrt(target * width * height / math.pi)
    touching = rng.random() < 0.15
    if touching:  # push the lesion over one image border
        side = int(rng.integers(4))
        reach = r0 * rng.uniform(0.35, 0.8)
        if side == 0:
            cx = reach
        elif side == 1:
            cx = width - reach
        elif side == 2:
            cy = reach
        else:
            cy = height - reach

    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    dx, dy = xs - cx, ys - cy
    c, s = math.cos(angle), math.sin(angle)
    u = (dx * c + dy * s) / math.sqrt(stretch)
    v = (-dx * s + dy * c) * math.sqrt(stretch)
    theta = np.arctan2(v, u)
    radius = np.hypot(u, v)
    shape = np.exp(
        np.tensordot(amplitude, np.cos(k[:, None, None] * theta + phase[:, None, None]), 1)
    )
    shape = shape.astype(np.float32)
    rho = radius / shape
    for _ in range(4):  # rescale r0 until the visible coverage is on target
        covered = float((rho < r0).mean())
        if abs(covered - target) < 0.01 or covered == 0:
            break
        r0 *= min(max(math.sqrt(target / covered), 0.7), 1.4)
    mask = rho < r0
    if not mask.any():  # degenerate: keep the centre pixel so the mask is never empty
        mask[min(int(cy), height - 1), min(int(cx), width - 1)] = True
    return mask, rho / r0, theta


def _lesion_colour(
    rng: np.random.Generator,
    lesion: Lesion,
    skin: np.ndarray,
    rho: np.ndarray,
    theta: np.ndarray,
    side: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The lesion's colour everywhere (used through the alpha) and the darkest-colour region."""
    height, width = rho.shape
    skin_mean = skin.reshape(-1, 3).mean(axis=0)
    # Light brown is a denser shade of the skin itself, so that a light lesion stays a light
    # lesion on any skin tone; dark brown and the others are absolute.
    light = skin_mean * np.array([0.74, 0.6, 0.48]) * rng.uniform(0.85, 1.08)
    dark = np.array(DARK_BROWN) * rng.uniform(0.75, 1.2)
    if lesion.colours[:2] == (3, 4):
        outer, inner = light, dark * rng.uniform(1.0, 1.3)
    elif 4 in lesion.colours:
        outer, inner = dark * rng.uniform(1.05, 1.25), dark
    else:
        outer, inner = light, light * rng.uniform(0.78, 0.92)
    core = rng.uniform(0.45, 0.95)
    wobble = 0.2 * _field(rng, height, width, side * 0.12)
    t = _smoothstep((rho + wobble * 0.6) / core - rng.uniform(0.0, 0.3))
    colour = inner + (outer - inner) * t[..., None]
    texture = _field(rng, height, width, side * rng.uniform(0.03, 0.07))
    colour = colour * (1 + rng.uniform(0.04, 0.1) * texture)[..., None]
    inside = rho < 1

    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    if lesion.network != "A":  # a honeycomb of darker lines, warped; irregular when atypical
        period = side * rng.uniform(0.035, 0.06)
        warp = period * (0.3 if lesion.network == "T" else 0.6)
        u = xs + warp * _field(rng, height, width, period * 3)
        v = ys + warp * _field(rng, height, width, period * 3)
        wave = np.zeros_like(u)
        a = rng.uniform(0, math.pi)
        for k in range(3):  # three plane waves 120 degrees apart: a hexagonal lattice
            d = a + k * 2 * math.pi / 3
            wave += np.cos(2 * math.pi / period * (u * math.cos(d) + v * math.sin(d)))
        lines = _smoothstep((0.3 - wave) / 1.2)
        patchy = _smoothstep(0.8 + 0.6 * _field(rng, height, width, side * 0.15))
        depth = rng.uniform(0.15, 0.35) * _smoothstep(1.15 - rho) * patchy
        colour = colour * (1 - depth * lines)[..., None]
    if lesion.globules != "A":  # small dark dots, in a ring (typical) or anywhere (atypical)
        k = SUPERSAMPLE
        pen_mask = Image.new("L", (width * k, height * k), 0)
        pen = ImageDraw.Draw(pen_mask)
        count = int(rng.integers(6, 18))
        for _ in range(count):
            if lesion.globules == "T":
                rr, size = rng.uniform(0.55, 0.9), side * rng.uniform(0.01, 0.016)
            else:
                rr, size = rng.uniform(0.1, 0.95), side * rng.uniform(0.008, 0.03)
            candidates = np.argwhere((np.abs(rho - rr) < 0.05) & inside)
            if len(candidates) == 0:
                continue
            y, x = candidates[int(rng.integers(len(candidates)))] + 0.5
            box = [(x - size) * k, (y - size) * k, (x + size) * k, (y + size) * k]
            pen.ellipse(box, fill=255)
        dots = np.asarray(pen_mask.reduce(k), np.float32) / 255 * inside
        colour = colour + (np.array(BLACK) * 1.3 - colour) * (0.8 * dots)[..., None]
    blotch_cell = side * rng.uniform(0.08, 0.15)
    darkest = ndimage.binary_erosion(inside, iterations=1) & (t < 0.35)
    blotches = {6: BLACK, 5: BLUE_GREY, 1: WHITE, 2: RED}
    for code in (2, 1, 5, 6):  # blotches cover the network; drawn last = on top: black
        if code not in lesion.colours:
            continue
        share = rng.uniform(0.08, 0.25)
        field = _field(rng, height, width, blotch_cell) - 0.8 * rho  # favour the inside
        level = np.quantile(field[inside], 1 - share) if inside.any() else 0.0
        weight = _smoothstep((field - level) / 0.8 + 0.5)
        weight = ndimage.gaussian_filter(weight, side * 0.025) * inside
        target = np.array(blotches[code], np.float32) * rng.uniform(0.85, 1.15)
        colour = colour + (target - colour) * (weight * rng.uniform(0.55, 0.85))[..., None]
        if code in (5, 6):
            darkest = darkest | (weight > 0.5)

    if lesion.streaks == "P":  # short radial dark lines at the periphery
        for spoke in rng.uniform(-math.pi, math.pi, size=int(rng.integers(4, 10))):
            gap = np.angle(np.exp(1j * (theta - spoke)))
            width_rad = rng.uniform(0.03, 0.07)
            line = np.exp(-((gap / width_rad) ** 2)) * _smoothstep((rho - 0.7) / 0.2) * inside
            colour = colour + (np.array(DARK_BROWN) * 0.7 - colour) * (0.7 * line)[..., None]
    return colour, darkest & inside


def _hair(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Alpha of dark curved hairs (cubic Bezier curves; none in 40% of images, up to 14)."""
    if rng.random() < 0.4:
        return np.zeros((height, width), np.float32)
    s = SUPERSAMPLE
    canvas = Image.new("L", (width * s, height * s), 0)
    draw = ImageDraw.Draw(canvas)
    diagonal = math.hypot(width, height)
    side = min(width, height)
    for _ in range(min(int(rng.geometric(0.22)), 14)):
        a = rng.uniform(0, 2 * math.pi)
        b = a + math.pi + rng.uniform(-1.0, 1.0)
        centre = np.array([width / 2, height / 2]) + rng.uniform(-0.3, 0.3, size=2) * (
            width,
            height,
        )
        start = centre + diagonal * 0.7 * np.array([math.cos(a), math.sin(a)])
        end = centre + diagonal * 0.7 * np.array([math.cos(b), math.sin(b)])
        normal = np.array([-(end - start)[1], (end - start)[0]]) / diagonal
        c1 = start + (end - start) / 3 + normal * diagonal * rng.uniform(-0.5, 0.5)
        c2 = start + 2 * (end - start) / 3 + normal * diagonal * rng.uniform(-0.5, 0.5)
        t0, t1 = sorted(rng.uniform(0, 1, size=2))
        if rng.random() < 0.6:  # most hairs cross the whole image
            t0, t1 = 0.0, 1.0
        ts = np.linspace(t0, t1, 60)[:, None]
        points = (
            (1 - ts) ** 3 * start
            + 3 * (1 - ts) ** 2 * ts * c1
            + 3 * (1 - ts) * ts**2 * c2
            + ts**3 * end
        )
        thickness = max(1, round(side / 144 * rng.uniform(1.0, 2.6) * s))
        draw.line(
            [(float(x) * s, float(y) * s) for x, y in points],
            fill=255,
            width=thickness,
            joint="curve",
        )
    hair = np.asarray(canvas.reduce(s), np.float32) / 255
    return hair * rng.uniform(0.75, 0.95)


def _vignette(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Dermoscope field of view: 1 inside a circle, falling to ~0 at the corners (weak in some
    images), times a gentle overall falloff."""
    half_diagonal = math.hypot(width, height) / 2
    cx = width * (0.5 + rng.uniform(-0.04, 0.04))
    cy = height * (0.5 + rng.uniform(-0.04, 0.04))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    d = np.hypot(xs - cx, ys - cy) / half_diagonal
    radius = rng.uniform(0.68, 0.95)
    soft = rng.uniform(0.04, 0.14)
    strength = rng.uniform(0.0, 0.35) if rng.random() < 0.2 else rng.uniform(0.75, 0.98)
    ring = strength * _smoothstep((d - radius + soft) / (2 * soft))
    falloff = rng.uniform(0.05, 0.3) * d**2
    return (1 - ring) * (1 - falloff)


def _seeds(spec: GeneratorSpec, index: int) -> tuple[np.random.Generator, np.random.Generator]:
    lesion_seed, hair_seed = np.random.SeedSequence(spec.seed, spawn_key=(3, index)).spawn(2)
    return np.random.default_rng(lesion_seed), np.random.default_rng(hair_seed)


def _render(lesion: Lesion, spec: GeneratorSpec, index: int, *, hair: bool = True) -> Sample:
    """Draw one image. All lesion, skin, vignette and noise draws come from one generator and
    the hair from another, so hair=False changes nothing but the hair."""
    rng, hair_rng = _seeds(spec, index)
    height, width = spec.height, spec.width
    side = min(height, width)
    skin = _skin(rng, height, width)
    mask, rho, theta = _outline(rng, lesion, height, width)
    colour, roi = _lesion_colour(rng, lesion, skin, rho, theta, side)

    # The image border is blurred, the mask is not; the lesion also fades a little towards it.
    low, high = [(0.006, 0.02), (0.01, 0.03), (0.015, 0.04)][lesion.diagnosis]
    blur = side * rng.uniform(low, high)
    alpha = ndimage.gaussian_filter(mask.astype(np.float32), blur)
    alpha *= 1 - rng.uniform(0.1, 0.5) * np.clip(rho, 0, 1) ** 3
    image = skin + (colour - skin) * alpha[..., None]

    hairs = _hair(hair_rng, height, width)
    if hair:
        shade = np.array([45, 32, 26], np.float32) * hair_rng.uniform(0.6, 1.3)
        image = image + (shade - image) * hairs[..., None]
    vignette = _vignette(rng, height, width)
    corner = np.array([14, 10, 10], np.float32)
    image = corner + (image - corner) * vignette[..., None]
    image = image + rng.normal(0, rng.uniform(1.5, 4.0), size=image.shape)
    pixels = np.clip(image, 0, 255).round().astype(np.uint8)
    return Sample(pixels, mask, roi)


def render(spec: GeneratorSpec, index: int, *, hair: bool = True) -> Sample:
    """Image number `index` (in id order) of the dataset; hair=False draws the very same image
    without its hairs (the mask does not depend on them)."""
    lesions = plan(spec)
    return _render(lesions[index], spec, index, hair=hair)


def _paths(dest: Path, name: str) -> tuple[Path, Path, Path]:
    folder = dest / IMAGES_DIR / name
    return (
        folder / f"{name}_Dermoscopic_Image" / f"{name}.bmp",
        folder / f"{name}_lesion" / f"{name}_lesion.bmp",
        folder / f"{name}_roi",
    )


def write_ph2(dest: Path, spec: GeneratorSpec) -> dict:
    """Write PH2Dataset/ into the existing folder dest; return a summary dict. Every image has its
    own seed (spec.seed, index), so the same spec gives byte-identical files."""
    lesions = plan(spec)
    dest = Path(dest)
    coverage, touching = [], 0
    for index, lesion in enumerate(lesions):
        sample = _render(lesion, spec, index)
        image_path, mask_path, roi_dir = _paths(dest, lesion.name)
        for folder in (image_path.parent, mask_path.parent, roi_dir):
            folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sample.image, "RGB").save(image_path, "BMP")
        Image.fromarray(sample.mask.astype(np.uint8) * 255, "L").save(mask_path, "BMP")
        if sample.roi.any():  # the darkest colour's region, labelled with its Colors code
            code = next(c for c in (6, 5, 4, 3) if c in lesion.colours)
            roi = Image.fromarray(sample.roi.astype(np.uint8) * 255, "L")
            roi.save(roi_dir / f"{lesion.name}_R1_Label{code}.bmp", "BMP")
        coverage.append(float(sample.mask.mean()))
        m = sample.mask
        touching += bool(m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any())
    (dest / METADATA_FILE).write_text(metadata_text(lesions), encoding="utf-8")
    counts = np.bincount([lesion.diagnosis for lesion in lesions], minlength=3).tolist()
    return {
        "images": spec.images,
        "width": spec.width,
        "height": spec.height,
        "seed": spec.seed,
        "diagnosis_counts": dict(zip(DIAGNOSES, counts, strict=True)),
        "mean_coverage": float(np.mean(coverage)),
        "min_coverage": float(np.min(coverage)),
        "max_coverage": float(np.max(coverage)),
        "touching_border": touching,
    }
