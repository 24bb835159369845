"""Real photos that ship offline: Zalando's Fashion-MNIST product photos from Debian's
`dataset-fashion-mnist` (28 x 28 greyscale, 10 classes, MIT), written in the Kaggle
journey-springfield layout a user would unpack — `simpsons_dataset/<class>/pic_NNNN.jpg` plus an
unlabelled `testset/` — with geometrically imbalanced classes as the Simpsons set has them.

Another shape than the built-in generator's: greyscale JPEGs (mode L), 28 px (smaller than the
cached 64 px), real texture and real look-alike classes (shirt / T-shirt / pullover / coat)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
from PIL import Image

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
CLASSES = [
    "t-shirt_top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
]


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format: big-endian magic, dimensions, then uint8 data)."""
    data = gzip.decompress(path.read_bytes())
    dims = data[3]
    shape = struct.unpack(f">{dims}I", data[4 : 4 + 4 * dims])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def class_sizes(largest: int, smallest: int, classes: int = len(CLASSES)) -> list[int]:
    """Geometric class sizes from `largest` to `smallest`, the head class first."""
    return [round(s) for s in np.geomspace(largest, smallest, classes)]


def write_fashion_photos(
    root: Path, largest: int, smallest: int, unlabelled: int = 20, seed: int = 0
) -> dict[str, int]:
    """The layout under `root`; the class order is shuffled by `seed` so that the head class is
    not always T-shirts. Returns images per class."""
    if not FASHION_MNIST.is_dir():
        raise FileNotFoundError(f"{FASHION_MNIST}: apt-get install dataset-fashion-mnist")
    images = read_idx(FASHION_MNIST / "train-images-idx3-ubyte.gz")
    labels = read_idx(FASHION_MNIST / "train-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(CLASSES))
    sizes = dict(zip((CLASSES[i] for i in order), class_sizes(largest, smallest), strict=True))
    train = root / "journey-springfield" / "simpsons_dataset"
    for label, name in enumerate(CLASSES):
        folder = train / name
        folder.mkdir(parents=True)
        chosen = rng.choice(np.flatnonzero(labels == label), sizes[name], replace=False)
        for number, index in enumerate(chosen):
            Image.fromarray(images[index], "L").save(folder / f"pic_{number:04d}.jpg", quality=90)
    test_images = read_idx(FASHION_MNIST / "t10k-images-idx3-ubyte.gz")
    testset = root / "journey-springfield" / "testset" / "testset"
    testset.mkdir(parents=True)
    for number, index in enumerate(rng.choice(len(test_images), unlabelled, replace=False)):
        Image.fromarray(test_images[index], "L").save(testset / f"img{number}.jpg", quality=90)
    return sizes
