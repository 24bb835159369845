"""Members of a task's grid trained side by side in worker processes (a CPU host) give the same
models, histories and MLflow runs as one after the other."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import mlflow
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from stages.core.training import fit_resumable, member_workers, seed_everything, train_members

EPOCHS = 3


class LineFit(pl.LightningModule):
    """y = 3x - 1 by a linear layer; `val_score` is the negative validation MSE."""

    def __init__(self, learning_rate: float) -> None:
        super().__init__()
        self.learning_rate = learning_rate
        self.network = torch.nn.Linear(1, 1)

    def _mse(self, batch) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.network(x), y)

    def training_step(self, batch, _):
        loss = self._mse(batch)
        self.log("train_loss", loss, on_epoch=True, on_step=False)
        return loss

    def validation_step(self, batch, _):
        self.log("val_score", -self._mse(batch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.learning_rate)


def fit_line(learning_rate: float, seed: int, folder: Path):
    seed_everything(seed)
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    data = TensorDataset(x, 3 * x - 1)
    return fit_resumable(
        LineFit(learning_rate),
        DataLoader(data, batch_size=8, shuffle=True),
        DataLoader(data, batch_size=64),
        "cpu",
        EPOCHS,
        folder,
        monitor="val_score",
    )


def train_pair(root: Path, workers: int) -> tuple[dict, dict[str, list]]:
    members = [(f"lr_{lr}", {"learning_rate": lr}, partial(fit_line, lr, 7)) for lr in (0.05, 0.2)]
    # an experiment of this store: the active one may be left from another test's store
    mlflow.set_experiment("members")
    with mlflow.start_run(run_name=f"workers_{workers}") as parent:
        trained = train_members(members, "val_score", root / f"ckpt_{workers}", -1e9, workers)
    client = mlflow.MlflowClient()
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    curves = {
        run.info.run_name: [
            m.value for m in client.get_metric_history(run.info.run_id, "val_score")
        ]
        for run in children
    }
    return trained, curves


@pytest.mark.filterwarnings("ignore::UserWarning")  # Lightning: few batches, no workers
def test_side_by_side_members_equal_one_after_the_other(store: Path):
    one_by_one, curves_one = train_pair(store, workers=1)
    side_by_side, curves_two = train_pair(store, workers=2)

    assert list(side_by_side) == ["lr_0.05", "lr_0.2"]
    for name, member in one_by_one.items():
        other = side_by_side[name]
        assert other.rows == member.rows
        for key, tensor in member.network.state_dict().items():
            assert torch.allclose(other.network.state_dict()[key], tensor, atol=1e-6)
        assert len(curves_two[name]) == EPOCHS  # the curves reach MLflow after the fact
        assert curves_two[name] == pytest.approx(curves_one[name], abs=1e-6)
        assert other.seconds > 0
    # the larger rate fits the line better in 3 epochs: the two members are different models
    assert side_by_side["lr_0.2"].best["val_score"] > side_by_side["lr_0.05"].best["val_score"]


def test_members_train_side_by_side_only_on_a_cpu(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert member_workers("cpu", 10) == 2
    assert member_workers("cpu", 1) == 1
    assert member_workers("cuda", 10) == 1
    assert member_workers("mps", 10) == 1
