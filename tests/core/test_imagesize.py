"""`preprocess.size: null` on real images: their own size, capped at the protocol's, never
upsampled; the reason goes to the report."""

from __future__ import annotations

from PIL import Image

from stages.core.imagesize import chosen_size


def photos(folder, sizes):
    paths = []
    for i, size in enumerate(sizes):
        path = folder / f"{i}.png"
        Image.new("RGB", size).save(path)
        paths.append(str(path))
    return paths


def test_small_native_images_are_not_upsampled(tmp_path):
    small = photos(tmp_path, [(128, 100), (130, 97), (140, 110)])
    side, why = chosen_size(small, None, None, 256, longer=False, minimum=32)
    assert side == 96 and "median shorter side 100 px, below the protocol's 256 px" in why
    side, why = chosen_size(small, None, None, 416, longer=True, minimum=64)
    assert side == 128 and "never upsampled" in why


def test_large_images_get_the_protocol_size_and_params_or_builtin_win(tmp_path):
    large = photos(tmp_path, [(768, 560), (760, 574)])
    assert chosen_size(large, None, None, 256, False, 32) == (
        256,
        "the protocol's 256 px (the images' median shorter side is 567 px)",
    )
    assert chosen_size(large, 320, None, 256, False, 32) == (320, "set by preprocess.size")
    assert chosen_size(large, None, 64, 256, False, 32) == (64, "the built-in data's size")
    tiny = photos(tmp_path / "..", [(40, 20)])
    assert chosen_size(tiny, None, None, 256, False, 32)[0] == 32
