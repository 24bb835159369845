"""Where torch training starts: torchvision weights by name offline, checksums in file names,
local `.pth` files, and the fine-tuning path on torchvision's real ImageNet MobileNetV2 file."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch

from stages.core.errors import UserError
from stages.core.pretrained import (
    OFFLINE_WEIGHTS,
    check_weights_file,
    pretrained_weights,
    torchvision_model,
)

KEY = "simpsons.train.pretrained"
MOBILENET = "mobilenet_v2-b0353104.pth"


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty $TORCH_HOME and a network that refuses at once (never waits on DNS)."""

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "urlopen", refuse)
    return tmp_path / "hub" / "checkpoints"


def test_missing_weights_offline_name_the_file_and_the_make_target(offline):
    with pytest.raises(UserError) as caught:
        pretrained_weights("mobilenet_v2", True, KEY)
    message = str(caught.value)
    assert message.startswith(f"params.yaml: {KEY}: weights file {offline / 'mobilenet_v2-'}")
    assert "make weights" in message and "set pretrained: false" in message
    assert pretrained_weights("mobilenet_v2", False, KEY) is None


def test_a_weights_name_picks_that_file_and_an_unknown_one_lists_the_names(offline):
    with pytest.raises(UserError, match="weights file .*/mobilenet_v2-b0353104.pth is missing"):
        pretrained_weights("mobilenet_v2", "IMAGENET1K_V1", KEY)
    with pytest.raises(
        UserError,
        match="'IMAGENET9K' is not a weights name of mobilenet_v2 "
        r"\(expected true, false, one of IMAGENET1K_V1, IMAGENET1K_V2",
    ):
        pretrained_weights("mobilenet_v2", "IMAGENET9K", KEY)


def test_a_damaged_file_is_refused_by_the_checksum_in_its_name(offline):
    offline.mkdir(parents=True)
    (offline / MOBILENET).write_bytes(b"half a download")
    with pytest.raises(UserError, match="damaged or not the one named"):
        pretrained_weights("mobilenet_v2", "IMAGENET1K_V1", KEY)


def test_a_local_pth_file_is_loaded_as_the_start(tmp_path):
    start = torchvision_model("resnet18", False, KEY)
    with torch.no_grad():
        start.fc.weight.fill_(0.125)
    torch.save(start.state_dict(), tmp_path / "mine.pth")
    loaded = torchvision_model("resnet18", str(tmp_path / "mine.pth"), KEY)
    assert torch.equal(loaded.fc.weight, start.fc.weight)
    with pytest.raises(UserError, match=f"params.yaml: {KEY}: no weights file .*/absent.pth"):
        torchvision_model("resnet18", str(tmp_path / "absent.pth"), KEY)


@pytest.fixture(scope="module")
def imagenet_mobilenet() -> Path:
    """torchvision's IMAGENET1K_V1 MobileNetV2 file, as `make weights` puts it in $TORCH_HOME."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / MOBILENET
    if not path.is_file():
        pytest.skip(f"{path} is missing: run `make weights` (make test does)")
    check_weights_file(path, "test")
    return path


def test_fine_tuning_from_imagenet_trains_the_head_first_then_everything(imagenet_mobilenet):
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    from stages.simpsons.model import ImageClassifier

    assert MOBILENET in OFFLINE_WEIGHTS
    model = ImageClassifier(
        "mobilenet_v2", 3, "IMAGENET1K_V1", 1e-3, 0.0, None, 0.0, freeze_epochs=1, epochs=2
    )
    reference = torch.load(imagenet_mobilenet, map_location="cpu", weights_only=True)
    first = "features.0.0.weight"
    assert torch.equal(model.network.state_dict()[first], reference[first])  # starts from it

    images, labels = torch.rand(16, 3, 64, 64), torch.arange(16) % 3
    loader = DataLoader(TensorDataset(images, labels), batch_size=8)
    seen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    class Snapshot(pl.Callback):
        def on_train_epoch_end(self, trainer, module):
            state = module.network.state_dict()
            seen[trainer.current_epoch] = (
                state[first].clone(),
                state["classifier.1.weight"].clone(),
            )

    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Snapshot()],
        limit_val_batches=0,
    )
    head_start = model.network.state_dict()["classifier.1.weight"].clone()
    trainer.fit(model, loader)
    assert torch.equal(seen[0][0], reference[first]), "the backbone moved while frozen"
    assert not torch.equal(seen[0][1], head_start), "the head did not learn in the frozen epoch"
    assert not torch.equal(seen[1][0], reference[first]), "the backbone never unfroze"
