"""The builtin hard-hat generator: the real archive's file names and Pascal VOC fields, boxes that
are exact and inside the image, truncation only where the frame clipped, the real class
proportions, determinism, and boxes that really hold what their label says."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression

from stages.detection.generate import (
    CLASSES,
    DIFFICULT_OCCLUSION,
    DIFFICULT_SIDE,
    HELMET_COLOURS,
    GeneratorSpec,
    VocObject,
    annotation_xml,
    is_wide,
    render,
    write_hardhat,
)

SPEC = GeneratorSpec(images=24, size=128)
LARGE = GeneratorSpec(images=200, size=96, seed=7)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, dict]:
    dest = tmp_path_factory.mktemp("hardhat")
    return dest, write_hardhat(dest, SPEC)


@pytest.fixture(scope="module")
def large() -> list:
    return [render(LARGE, i) for i in range(LARGE.images)]


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _touches(box: tuple[int, int, int, int], size: int) -> bool:
    return box[0] == 0 or box[1] == 0 or box[2] == size or box[3] == size


def _parse(path: Path) -> tuple[ET.Element, list[dict]]:
    root = ET.parse(path).getroot()
    objects = []
    for obj in root.findall("object"):
        fields = {child.tag: child for child in obj}
        assert sorted(fields) == sorted(
            ["name", "pose", "truncated", "occluded", "difficult", "bndbox"]
        ), path
        box = fields["bndbox"]
        assert [c.tag for c in box] == ["xmin", "ymin", "xmax", "ymax"], path
        objects.append(
            {
                "name": fields["name"].text,
                "pose": fields["pose"].text,
                "truncated": int(fields["truncated"].text),
                "occluded": int(fields["occluded"].text),
                "difficult": int(fields["difficult"].text),
                "box": tuple(int(c.text) for c in box),
            }
        )
    return root, objects


def test_layout_is_the_real_one(data: tuple[Path, dict]):
    root, info = data
    assert sorted(p.name for p in root.iterdir()) == ["annotations", "images"]
    stems = [f"hard_hat_workers{i}" for i in range(SPEC.images)]
    assert sorted(p.name for p in (root / "images").iterdir()) == sorted(f"{s}.png" for s in stems)
    assert sorted(p.name for p in (root / "annotations").iterdir()) == sorted(
        f"{s}.xml" for s in stems
    )
    assert info["images"] == SPEC.images
    counts = {name: 0 for name in CLASSES}
    for stem in stems:
        for obj in _parse(root / "annotations" / f"{stem}.xml")[1]:
            counts[obj["name"]] += 1
    assert info["objects"] == counts
    assert counts["helmet"] > 0 and counts["head"] > 0


def test_xml_has_every_voc_field_and_sane_boxes(data: tuple[Path, dict]):
    root, _ = data
    boxes = 0
    for index in range(SPEC.images):
        name = f"hard_hat_workers{index}.png"
        xml, objects = _parse(root / "annotations" / f"hard_hat_workers{index}.xml")
        assert xml.tag == "annotation"
        tags = [c.tag for c in xml]
        assert tags == ["folder", "filename", "size", "segmented"] + ["object"] * len(objects)
        assert xml.findtext("folder") == "images"
        assert xml.findtext("filename") == name
        assert xml.findtext("segmented") == "0"
        with Image.open(root / "images" / name) as image:
            assert image.format == "PNG" and image.mode == "RGB"
            width, height = image.size
        size = xml.find("size")
        assert [c.tag for c in size] == ["width", "height", "depth"]
        assert (int(size.findtext("width")), int(size.findtext("height"))) == (width, height)
        assert (width, height) == (SPEC.size, SPEC.size) and size.findtext("depth") == "3"
        for obj in objects:
            assert obj["name"] in CLASSES and obj["pose"] == "Unspecified"
            assert obj["occluded"] == 0 and obj["truncated"] in (0, 1)
            assert obj["difficult"] in (0, 1)
            xmin, ymin, xmax, ymax = obj["box"]
            assert 0 <= xmin < xmax <= width and 0 <= ymin < ymax <= height, obj
            if obj["truncated"]:
                assert _touches(obj["box"], width), obj
            boxes += 1
    assert boxes > SPEC.images  # several workers per image


def test_written_files_are_the_rendered_samples(data: tuple[Path, dict]):
    root, _ = data
    for index in range(SPEC.images):
        sample = render(SPEC, index)
        with Image.open(root / "images" / f"hard_hat_workers{index}.png") as image:
            assert np.array_equal(np.asarray(image), sample.image)
        _, objects = _parse(root / "annotations" / f"hard_hat_workers{index}.xml")
        assert [(o["name"], o["box"], o["truncated"], o["difficult"]) for o in objects] == [
            (o.name, o.box, o.truncated, o.difficult) for o in sample.objects
        ]


def test_annotation_xml_is_the_real_pretty_format():
    objects = [VocObject("helmet", (357, 116, 404, 175), 0, 0, (357, 116, 404, 175), 0.0)]
    text = annotation_xml("hard_hat_workers0.png", 416, 416, objects)
    assert text == (
        "<annotation>\n"
        "    <folder>images</folder>\n"
        "    <filename>hard_hat_workers0.png</filename>\n"
        "    <size>\n"
        "        <width>416</width>\n"
        "        <height>416</height>\n"
        "        <depth>3</depth>\n"
        "    </size>\n"
        "    <segmented>0</segmented>\n"
        "    <object>\n"
        "        <name>helmet</name>\n"
        "        <pose>Unspecified</pose>\n"
        "        <truncated>0</truncated>\n"
        "        <occluded>0</occluded>\n"
        "        <difficult>0</difficult>\n"
        "        <bndbox>\n"
        "            <xmin>357</xmin>\n"
        "            <ymin>116</ymin>\n"
        "            <xmax>404</xmax>\n"
        "            <ymax>175</ymax>\n"
        "        </bndbox>\n"
        "    </object>\n"
        "</annotation>\n"
    )
    empty = ET.fromstring(annotation_xml("x&y.png", 10, 20, []))
    assert empty.findtext("filename") == "x&y.png" and empty.find("object") is None


def test_truncated_exactly_where_the_frame_clipped(large: list):
    size = LARGE.size
    truncated = touching_unclipped = 0
    for sample in large:
        for obj in sample.objects:
            clipped = obj.extent != obj.box
            if obj.truncated:
                truncated += 1
                assert _touches(obj.box, size) and clipped, obj
                e, b = obj.extent, obj.box
                # the extent passes the frame exactly where the box stops at it
                assert (e[0] < 0) == (b[0] == 0 and e[0] != b[0])
                assert (e[2] > size) == (b[2] == size and e[2] != b[2])
                assert (e[1] < 0) == (b[1] == 0 and e[1] != b[1])
                assert (e[3] > size) == (b[3] == size and e[3] != b[3])
                assert e[0] <= b[0] and e[1] <= b[1] and e[2] >= b[2] and e[3] >= b[3]
            else:
                assert not clipped, obj  # an unclipped box is the whole visible extent
                touching_unclipped += _touches(obj.box, size)
    objects = sum(len(s.objects) for s in large)
    assert 0.03 * objects < truncated < 0.25 * objects, truncated
    assert touching_unclipped <= 0.01 * objects  # objects that end exactly on the frame


def test_difficult_means_tiny_or_mostly_hidden(large: list):
    flags = []
    for sample in large:
        for obj in sample.objects:
            side = min(obj.box[2] - obj.box[0], obj.box[3] - obj.box[1])
            expected = side < DIFFICULT_SIDE or obj.occlusion > DIFFICULT_OCCLUSION
            assert obj.difficult == int(expected), obj
            assert 0 <= obj.occlusion <= 1
            flags.append(obj.difficult)
    assert 0 < sum(flags) < 0.15 * len(flags)
    hidden = [o.occlusion for s in large for o in s.objects]
    assert np.mean(np.array(hidden) > 0.1) > 0.02  # workers do overlap


def test_classes_keep_the_real_proportions(large: list):
    counts = {name: sum(o.name == name for s in large for o in s.objects) for name in CLASSES}
    assert counts["helmet"] > counts["head"] > counts["person"] > 0, counts
    assert 0.6 < counts["helmet"] / (counts["helmet"] + counts["head"]) < 0.85, counts
    with_person = [any(o.name == "person" for o in s.objects) for s in large]
    assert 0.02 * LARGE.images <= sum(with_person) <= 0.07 * LARGE.images
    assert (
        with_person == [s.wide for s in large] == [is_wide(LARGE, i) for i in range(LARGE.images)]
    )
    empty = sum(not s.objects for s in large)
    assert 1 <= empty <= 0.12 * LARGE.images
    per_image = [len(s.objects) for s in large if not s.wide]
    assert 2.5 < np.mean(per_image) < 6 and max(per_image) >= 7


def test_heads_have_the_intended_scales(large: list):
    heights = np.array(
        [o.box[3] - o.box[1] for s in large for o in s.objects if o.name != "person"]
    )
    share = heights / LARGE.size
    assert np.median(share) > 0.09 and np.percentile(share, 95) < 0.26
    assert np.mean((share >= 0.07) & (share <= 0.25)) > 0.85


def test_whole_boxes_have_the_shapes_of_their_objects(large: list):
    """Unhidden, unclipped boxes are exact: a helmet box (brim to chin) is about square, a bare
    head (hair to chin) clearly taller than wide, a person much taller still."""
    aspects: dict[str, list[float]] = {name: [] for name in CLASSES}
    for sample in large:
        for obj in sample.objects:
            if not obj.truncated and obj.occlusion == 0:
                aspects[obj.name].append((obj.box[2] - obj.box[0]) / (obj.box[3] - obj.box[1]))
    helmet, head = np.array(aspects["helmet"]), np.array(aspects["head"])
    assert np.mean((helmet > 0.85) & (helmet < 1.2)) > 0.95, np.percentile(helmet, [1, 50, 99])
    assert np.mean((head > 0.68) & (head < 0.95)) > 0.95, np.percentile(head, [1, 50, 99])
    assert np.median(helmet) > np.median(head) + 0.12
    assert aspects["person"] and max(aspects["person"]) < 0.6


def test_box_edges_are_the_object_edges(large: list):
    """Exact boxes: summed over whole unhidden heads, the picture changes sharply across each
    box edge (top, left, right) and much less in the 4 pixels just outside it. A box 1 pixel too
    large or too small moves that step off the edge."""
    offsets = np.arange(-4, 5)
    step = {side: np.zeros(len(offsets)) for side in ("top", "left", "right")}
    for sample in large:
        picture = sample.image.astype(float).sum(axis=2)
        for obj in sample.objects:
            x0, y0, x1, y1 = obj.box
            if obj.name == "person" or obj.truncated or obj.occlusion > 0 or y1 - y0 < 12:
                continue
            if min(x0, y0, LARGE.size - x1) < 5:
                continue
            for j, d in enumerate(offsets):  # difference across the line between d-1 and d
                row, left, right = y0 + d, x0 + d, x1 + d
                step["top"][j] += np.abs(picture[row, x0:x1] - picture[row - 1, x0:x1]).mean()
                step["left"][j] += np.abs(picture[y0:y1, left] - picture[y0:y1, left - 1]).mean()
                step["right"][j] += np.abs(picture[y0:y1, right] - picture[y0:y1, right - 1]).mean()
    edge = offsets == 0
    for side, profile in step.items():
        outside = offsets < 0 if side != "right" else offsets > 0
        assert profile[edge][0] > 1.5 * profile[outside].mean(), (side, profile / profile.max())


def test_persons_contain_their_heads(large: list):
    for sample in (s for s in large if s.wide):
        persons = [o.box for o in sample.objects if o.name == "person"]
        heads = [o.box for o in sample.objects if o.name != "person"]
        for box in persons:
            assert box[3] - box[1] > 2.5 * (box[2] - box[0]) / 2  # a standing figure
        for head in heads:  # every annotated head lies in some person box
            assert any(
                p[0] <= head[0] and p[1] <= head[1] and head[2] <= p[2] and head[3] <= p[3]
                for p in persons
            ), head


def test_same_spec_same_bytes_and_images_do_not_depend_on_the_count(
    data: tuple[Path, dict], tmp_path: Path
):
    root, _ = data
    write_hardhat(tmp_path / "again", SPEC)
    assert _files(tmp_path / "again") == _files(root)
    write_hardhat(tmp_path / "more", replace(SPEC, images=48))
    more = _files(tmp_path / "more")
    assert len(more) == 96
    assert {k: v for k, v in more.items() if int(Path(k).stem[16:]) < 24} == _files(root)
    write_hardhat(tmp_path / "other", replace(SPEC, seed=SPEC.seed + 1))
    other = _files(tmp_path / "other")
    pngs = [k for k in other if k.endswith(".png")]
    assert all(other[k] != more[k] for k in pngs)


def test_person_share_changes_only_the_wide_shots():
    spec = GeneratorSpec(images=60, size=64)
    none = replace(spec, person_share=0.0)
    assert not any(is_wide(none, i) for i in range(spec.images))
    assert sum(is_wide(spec, i) for i in range(spec.images)) in (2, 3)
    for index in range(spec.images):
        if not is_wide(spec, index):
            assert np.array_equal(render(spec, index).image, render(none, index).image)
        else:
            plain = render(none, index)
            assert not any(o.name == "person" for o in plain.objects)


def _chroma(pixels: np.ndarray) -> np.ndarray:
    pixels = pixels.astype(np.float64) + 1
    return pixels / pixels.sum(axis=-1, keepdims=True)


HELMET_CHROMA = _chroma(np.array([c for c, _ in HELMET_COLOURS]))


def _helmet_on_top(image: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """Whether the top-centre of a box is hard-hat coloured (chromaticity, so any brightness)."""
    xmin, ymin, xmax, ymax = box
    w, h = xmax - xmin, ymax - ymin
    patch = image[ymin + round(h * 0.12) : ymin + round(h * 0.3), xmin + w // 3 : xmax - w // 3]
    if patch.size == 0:
        return False
    median = np.median(patch.reshape(-1, 3), axis=0)
    distance = np.abs(_chroma(median)[None] - HELMET_CHROMA).sum(axis=1).min()
    return bool(distance < 0.12 and median.max() > 70)


def test_boxes_hold_their_objects(large: list):
    rng = np.random.default_rng(0)
    size = LARGE.size
    hits = {"helmet": [], "head": [], "shifted": []}
    contrast = []
    for sample in large:
        clean = [
            o
            for o in sample.objects
            if o.name != "person"
            and not o.truncated
            and o.occlusion == 0
            and o.box[3] - o.box[1] >= 10
        ]
        for obj in clean:
            hits[obj.name].append(_helmet_on_top(sample.image, obj.box))
            # the same box moved by one to two box widths: mostly background or bodies
            w = obj.box[2] - obj.box[0]
            dx = int(rng.choice([-1, 1]) * rng.uniform(1.0, 2.0) * w)
            shifted = (obj.box[0] + dx, obj.box[1], obj.box[2] + dx, obj.box[3])
            if shifted[0] >= 0 and shifted[2] <= size:
                hits["shifted"].append(_helmet_on_top(sample.image, shifted))
            # the object stands out from a ring just outside its box
            x0, y0, x1, y1 = obj.box
            inside = sample.image[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
            ring = sample.image[max(0, y0 - 3) : y1 + 3, max(0, x0 - 3) : x1 + 3].astype(float)
            total = ring.reshape(-1, 3).sum(axis=0) - inside * (y1 - y0) * (x1 - x0)
            outside = total / (ring.shape[0] * ring.shape[1] - (y1 - y0) * (x1 - x0))
            contrast.append(np.abs(inside - outside).sum())
    rate = {k: np.mean(v) for k, v in hits.items()}
    assert min(len(v) for v in hits.values()) > 50, {k: len(v) for k, v in hits.items()}
    assert rate["helmet"] > 0.8, rate  # helmets wear their colour on top
    assert rate["head"] < 0.25, rate  # bare heads show hair or skin there
    assert rate["shifted"] < rate["helmet"] - 0.25, rate  # and a box off its object misses it
    assert np.median(contrast) > 25 and np.mean(np.array(contrast) > 10) > 0.8


def _crop(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    patch = Image.fromarray(image[y0:y1, x0:x1]).resize((12, 12), Image.Resampling.BILINEAR)
    return np.asarray(patch, np.float64).ravel() / 255


def _held_out_accuracy(features: np.ndarray, labels: np.ndarray) -> float:
    half = len(labels) // 2
    model = LogisticRegression(max_iter=3000).fit(features[:half], labels[:half])
    return float(model.score(features[half:], labels[half:]))


def test_box_contents_tell_helmets_from_heads_and_objects_from_background(large: list):
    """A linear model on 12x12 crops: the boxes hold learnable, label-specific content (it
    fails for misplaced boxes), and the crops' mean colour alone is a much weaker cue."""
    rng = np.random.default_rng(1)
    crops, is_helmet, colours, background = [], [], [], []
    for sample in large:
        for obj in sample.objects:
            if obj.name == "person" or obj.difficult:
                continue
            crop = _crop(sample.image, obj.box)
            crops.append(crop)
            colours.append(crop.reshape(-1, 3).mean(axis=0))
            is_helmet.append(obj.name == "helmet")
            w, h = obj.box[2] - obj.box[0], obj.box[3] - obj.box[1]
            x0, y0 = rng.integers(0, LARGE.size - w + 1), rng.integers(0, LARGE.size - h + 1)
            background.append(_crop(sample.image, (x0, y0, x0 + w, y0 + h)))
    crops, labels = np.array(crops), np.array(is_helmet)
    base = max(labels.mean(), 1 - labels.mean())
    pixels = _held_out_accuracy(crops, labels)
    colour = _held_out_accuracy(np.array(colours), labels)
    assert pixels > 0.9 and pixels > base + 0.12, (pixels, base)
    assert colour < pixels - 0.08, (colour, pixels)
    mixed = np.concatenate([crops, np.array(background)])
    order = rng.permutation(len(mixed))
    objectness = np.r_[np.ones(len(crops)), np.zeros(len(background))]
    assert _held_out_accuracy(mixed[order], objectness[order]) > 0.85


def test_helmet_colours_are_not_only_on_helmets(large: list):
    """Vests, barrels, cones and domes share the hard-hat colours: colour alone is no detector."""
    images = 0
    for sample in large[:40]:
        free = np.ones(sample.image.shape[:2], bool)
        for obj in sample.objects:
            x0, y0, x1, y1 = obj.box
            if obj.name != "person":
                free[y0:y1, x0:x1] = False
        chroma = _chroma(sample.image[free])
        distance = np.abs(chroma[:, None] - HELMET_CHROMA[None]).sum(axis=2).min(axis=1)
        bright = sample.image[free].max(axis=1) > 90
        saturated = np.abs(chroma - 1 / 3).sum(axis=1) > 0.15
        images += ((distance < 0.06) & bright & saturated).sum() > 30
    assert images > 25


@pytest.mark.parametrize(
    "bad",
    [
        {"images": 0},
        {"size": 63},
        {"person_share": -0.1},
        {"person_share": 1.5},
        {"seed": -1},
    ],
)
def test_bad_specs_are_rejected(bad: dict, tmp_path: Path):
    spec = replace(SPEC, **bad)
    with pytest.raises(ValueError):
        write_hardhat(tmp_path, spec)
    with pytest.raises(ValueError):
        render(spec, 0)
    assert not any(tmp_path.iterdir())


def test_render_checks_the_index():
    with pytest.raises(IndexError):
        render(SPEC, SPEC.images)
    with pytest.raises(IndexError):
        render(SPEC, -1)
