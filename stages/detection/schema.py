"""Finding and reading Pascal VOC annotations in either layout: the Kaggle hard-hat set
(`annotations/*.xml` beside `images/*.png`) or a VOC devkit (`VOC20xx/Annotations/*.xml` beside
`JPEGImages/*.jpg`), at whatever depth the archive put them. Problems are recorded per row for
validation (naming the file), not raised here.

Boxes keep the file's coordinates (floats accepted), clipped to the image; a box with no area
left is kept as `degenerate` so validation can count it, and preprocessing drops it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image, UnidentifiedImageError

from stages.core.errors import UserError

# annotation folder -> image folder, per layout
LAYOUTS = {"annotations": ("images", "hard-hat"), "Annotations": ("JPEGImages", "VOC devkit")}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
IMAGE_COLUMNS = [
    "name",
    "image",
    "annotation",
    "layout",
    "missing_image",
    "missing_annotation",
    "unreadable",
    "width",
    "height",
    "size_mismatch",
    "objects",
]
OBJECT_COLUMNS = [
    "name",
    "label",
    "xmin",
    "ymin",
    "xmax",
    "ymax",
    "difficult",
    "truncated",
    "clipped",
    "degenerate",
    "unknown_class",
]


@dataclass(frozen=True)
class VocObject:
    label: str
    box: tuple[float, float, float, float]
    difficult: bool
    truncated: bool


@dataclass(frozen=True)
class VocAnnotation:
    filename: str
    width: int
    height: int
    objects: list[VocObject]


def _number(node: ET.Element, path: str) -> float:
    text = node.findtext(path)
    if text is None:
        raise ValueError(f"missing <{path}>")
    return float(text.strip())


def _flag(node: ET.Element, tag: str) -> bool:
    text = (node.findtext(tag) or "0").strip()
    return text not in ("", "0", "false", "False")


def parse_annotation(path: Path) -> VocAnnotation:
    """One VOC XML file; raises ValueError naming the missing or bad element."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"not valid XML ({exc})") from None
    objects = []
    for node in root.iter("object"):
        label = (node.findtext("name") or "").strip()
        box = node.find("bndbox")
        if not label or box is None:
            raise ValueError("an <object> without <name> or <bndbox>")
        objects.append(
            VocObject(
                label=label,
                box=tuple(_number(box, k) for k in ("xmin", "ymin", "xmax", "ymax")),
                difficult=_flag(node, "difficult"),
                truncated=_flag(node, "truncated"),
            )
        )
    return VocAnnotation(
        filename=(root.findtext("filename") or "").strip(),
        width=int(_number(root, "size/width")),
        height=int(_number(root, "size/height")),
        objects=objects,
    )


def clip_box(
    box: tuple[float, float, float, float], width: int, height: int
) -> tuple[tuple[float, float, float, float], bool]:
    """The box inside the image, and whether clipping changed it."""
    xmin, ymin, xmax, ymax = box
    clipped = (
        min(max(xmin, 0.0), width),
        min(max(ymin, 0.0), height),
        min(max(xmax, 0.0), width),
        min(max(ymax, 0.0), height),
    )
    return clipped, clipped != tuple(map(float, box))


def find_annotation_dirs(raw: Path) -> list[tuple[Path, Path, str]]:
    """(annotation folder, image folder, layout name) for every layout found under raw."""
    found = []
    for folder in sorted(p for p in raw.rglob("*") if p.is_dir() and p.name in LAYOUTS):
        images, layout = LAYOUTS[folder.name]
        if any(folder.glob("*.xml")):
            found.append((folder, folder.parent / images, layout))
    if not found:
        raise UserError(
            f"{raw}: no Pascal VOC annotations found (expected annotations/*.xml beside images/ "
            "as in the hard-hat set, or VOCdevkit/VOC20xx/Annotations/*.xml beside JPEGImages/)"
        )
    return found


def _image_size(path: Path) -> tuple[int, int] | None:
    try:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError, SyntaxError):
        return None


def _describe(
    xml: Path, images: Path, layout: str, raw: Path, classes: set[str]
) -> tuple[dict, list[dict]]:
    row = dict.fromkeys(IMAGE_COLUMNS)
    name = str(xml.relative_to(raw))
    row.update(name=name, annotation=str(xml), layout=layout, objects=0)
    candidates = [p for p in images.glob(f"{xml.stem}.*") if p.suffix.lower() in IMAGE_SUFFIXES]
    try:
        parsed = parse_annotation(xml)
    except ValueError as exc:
        row["unreadable"] = f"{name}: {exc}"
        row["image"] = str(sorted(candidates)[0]) if candidates else None  # not unannotated
        return row, []
    image = images / parsed.filename if parsed.filename else None
    if image is None or not image.is_file():
        image = sorted(candidates)[0] if candidates else None
    if image is None:
        row["missing_image"] = name
        return row, []
    row["image"] = str(image)
    size = _image_size(image)
    if size is None:
        row["unreadable"] = str(image.relative_to(raw))
        return row, []
    width, height = size
    row.update(width=width, height=height, objects=len(parsed.objects))
    if (parsed.width, parsed.height) != (width, height):
        row["size_mismatch"] = (
            f"{name}: size {parsed.width}x{parsed.height}, image {width}x{height}"
        )
    objects = []
    for obj in parsed.objects:
        (xmin, ymin, xmax, ymax), clipped = clip_box(obj.box, width, height)
        degenerate = xmax <= xmin or ymax <= ymin
        objects.append(
            {
                "name": name,
                "label": obj.label,
                "xmin": xmin,
                "ymin": ymin,
                "xmax": xmax,
                "ymax": ymax,
                "difficult": obj.difficult,
                "truncated": obj.truncated,
                "clipped": clipped,
                "degenerate": f"{name}: {obj.label} {list(obj.box)}" if degenerate else None,
                "unknown_class": None if obj.label in classes else f"{name}: {obj.label}",
            }
        )
    return row, objects


def scan(raw: Path, classes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per annotation file or unannotated image (see IMAGE_COLUMNS), one per object
    (OBJECT_COLUMNS). Problem columns hold the file's name where the problem occurs."""
    rows, objects = [], []
    for xml_dir, images, layout in find_annotation_dirs(raw):
        seen = set()
        for xml in sorted(xml_dir.glob("*.xml")):
            row, found = _describe(xml, images, layout, raw, set(classes))
            rows.append(row)
            objects += found
            if row["image"]:
                seen.add(Path(row["image"]).name)
        if images.is_dir():
            for image in sorted(images.iterdir()):
                if image.suffix.lower() in IMAGE_SUFFIXES and image.name not in seen:
                    row = dict.fromkeys(IMAGE_COLUMNS)
                    relative = str(image.relative_to(raw))
                    row.update(
                        name=relative, image=str(image), layout=layout, missing_annotation=relative
                    )
                    rows.append(row)
    return pd.DataFrame(rows, columns=IMAGE_COLUMNS), pd.DataFrame(objects, columns=OBJECT_COLUMNS)


def usable(images: pd.DataFrame) -> pd.DataFrame:
    """Annotated, readable images whose annotation states their real size."""
    problems = ["missing_image", "missing_annotation", "unreadable", "size_mismatch"]
    return images[images[problems].isna().all(axis=1)].reset_index(drop=True)
