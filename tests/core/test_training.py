"""The torch training core: pretrained weights offline."""

from __future__ import annotations

import pytest


def test_missing_pretrained_weights_offline_name_the_file(tmp_path, monkeypatch):
    """Offline (as here), `pretrained: true` without the file in $TORCH_HOME says where to put
    it; the network is made to refuse at once so the test never waits on DNS."""
    import urllib.error

    import torch

    from stages.core.errors import UserError
    from stages.core.training import pretrained_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(torch.hub, "urlopen", offline)
    with pytest.raises(UserError) as caught:
        pretrained_weights("mobilenet_v2", True, "simpsons.train.pretrained")
    message = str(caught.value)
    assert str(tmp_path / "hub" / "checkpoints" / "mobilenet_v2-") in message
    assert message.startswith("params.yaml: simpsons.train.pretrained: weights file")
    assert "set pretrained: false" in message
    assert pretrained_weights("mobilenet_v2", False, "simpsons.train.pretrained") is None
