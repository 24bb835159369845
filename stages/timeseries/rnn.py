"""A recurrent forecaster across all series (Lightning): a GRU/LSTM encoder reads the last
`window` periods of a series, and a per-period head predicts each of the next periods from the
encoder state, the series embedding and that period's known covariates (promotions, holidays,
calendar)."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from stages.core.training import loader_options, make_trainer, resolve_device, seed_everything
from stages.timeseries.forecasters import log_sales, to_sales
from stages.timeseries.frequency import Frequency
from stages.timeseries.preprocess import SERIES

FUTURE_FEATURES = 9  # promo, 3 holiday flags, payday, closed, dow sin/cos, year-phase
MIN_WINDOW = 7


def known_features(frame: pd.DataFrame) -> np.ndarray:
    """Covariates known in advance, per row, as float32."""
    day_of_year = frame["date"].dt.dayofyear.to_numpy()
    return np.column_stack(
        [
            np.log1p(frame["onpromotion"].to_numpy()),
            frame["national_holiday"],
            frame[["regional_holiday", "local_holiday"]].max(axis=1),
            frame["event"],
            frame["payday"],
            frame["closed"],
            np.sin(2 * np.pi * frame["dow"].to_numpy() / 7),
            np.cos(2 * np.pi * frame["dow"].to_numpy() / 7),
            np.sin(2 * np.pi * day_of_year / 365.25),
        ]
    ).astype(np.float32)


class Windows(Dataset):
    """(series, origin) pairs: `window` periods of history before the origin, `horizon` after.

    A batch is gathered at once (`__getitems__`, which the DataLoader calls with a batch's
    indices; `collate_fn=gathered`): one fancy index over the arrays instead of a Python call
    per window and a collate of their pieces, which took as long as the GRU's step on a CPU."""

    def __init__(
        self,
        values: np.ndarray,
        observed: np.ndarray,
        known: np.ndarray,
        window: int,
        horizon: int,
        stride: int,
    ):
        self.values, self.observed, self.known = values, observed, known
        self.window, self.horizon = window, horizon
        origins = np.arange(window, values.shape[1] - horizon + 1, stride)
        self.series = np.repeat(np.arange(values.shape[0]), len(origins))
        self.origins = np.tile(origins, values.shape[0])

    def __len__(self) -> int:
        return len(self.series)

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        series, origins = self.series[indices], self.origins[indices]
        rows = series[:, None]
        past = origins[:, None] + np.arange(-self.window, 0)
        ahead = origins[:, None] + np.arange(self.horizon)
        encoder = np.concatenate(
            [
                self.values[rows, past][..., None],
                self.observed[rows, past][..., None],
                self.known[rows, past],
            ],
            axis=2,
        )
        return (
            torch.from_numpy(encoder),
            torch.from_numpy(self.known[rows, ahead]),
            torch.from_numpy(series),
            torch.from_numpy(self.values[rows, ahead]),
            torch.from_numpy(self.observed[rows, ahead]),
        )

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        return tuple(part[0] for part in self.__getitems__([i]))


def gathered(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """The collate of `Windows`: its batches come stacked already."""
    return batch


class SeriesRNN(pl.LightningModule):
    def __init__(self, series: int, cell: str, hidden: int, learning_rate: float):
        super().__init__()
        self.save_hyperparameters()
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.encoder = rnn(2 + FUTURE_FEATURES, hidden, batch_first=True)
        self.embedding = nn.Embedding(series, 8)
        self.head = nn.Sequential(
            nn.Linear(hidden + 8 + FUTURE_FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    def forward(self, encoder, ahead, series):
        _, state = self.encoder(encoder)
        last = (state[0] if isinstance(state, tuple) else state)[-1]
        context = torch.cat([last, self.embedding(series)], dim=1)
        context = context.unsqueeze(1).expand(-1, ahead.shape[1], -1)
        return self.head(torch.cat([context, ahead], dim=2)).squeeze(-1)

    def training_step(self, batch, _):
        encoder, ahead, series, target, observed = batch
        error = (self(encoder, ahead, series) - target) ** 2 * observed
        loss = error.sum() / observed.sum().clamp(min=1)
        self.log("train_loss", loss, on_epoch=True, on_step=False, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.learning_rate)


class RecurrentForecaster:
    name = "rnn"

    def __init__(self, horizon: int, params: Any, seed: int, device: str, frequency: Frequency):
        self.horizon, self.params, self.seed, self.frequency = horizon, params, seed, frequency
        self.device = resolve_device(device)

    def window_for(self, periods: int) -> int:
        """The encoder window: at most what leaves `horizon` + 1 training origins per series."""
        return min(self.params.window, periods - 2 * self.horizon)

    def too_short(self, periods: int) -> str | None:
        if self.window_for(periods) >= MIN_WINDOW:
            return None
        return (
            f"a {self.frequency.periods(MIN_WINDOW)} encoder window and two horizons of targets "
            f"need {self.frequency.periods(MIN_WINDOW + 2 * self.horizon)} of history; the "
            f"validation window has {self.frequency.periods(periods)}"
        )

    def _arrays(self, history: pd.DataFrame):
        frame = history.sort_values([*SERIES, "date"])
        keys = list(frame[SERIES].drop_duplicates().itertuples(index=False, name=None))
        days = frame["date"].nunique()
        y = log_sales(frame).to_numpy().reshape(len(keys), days)
        observed = ~np.isnan(y) & (frame["closed"].to_numpy().reshape(len(keys), days) == 0)
        self.level = np.nanmean(y, axis=1, keepdims=True)
        self.scale = np.nanstd(y, axis=1, keepdims=True) + 0.1
        values = np.where(observed, (y - self.level) / self.scale, 0).astype(np.float32)
        known = known_features(frame).reshape(len(keys), days, FUTURE_FEATURES)
        return keys, values, observed.astype(np.float32), known

    def fit(self, history: pd.DataFrame) -> RecurrentForecaster:
        seed_everything(self.seed)
        keys, values, observed, known = self._arrays(history)
        self.keys = {k: i for i, k in enumerate(keys)}
        window = self.window_for(values.shape[1])
        self.last_values, self.last_observed = values[:, -window:], observed[:, -window:]
        self.last_known = known[:, -window:]
        data = Windows(values, observed, known, window, self.horizon, self.params.stride)
        loader = DataLoader(
            data,
            batch_size=self.params.batch_size,
            shuffle=True,
            collate_fn=gathered,
            **loader_options(self.device),
        )
        self.module = SeriesRNN(
            len(keys), self.params.cell, self.params.hidden, self.params.learning_rate
        )
        make_trainer(self.device, self.params.epochs).fit(self.module, loader)
        self.module = self.module.to("cpu").eval()
        return self

    def predict(self, future: pd.DataFrame) -> np.ndarray:
        frame = future.sort_values([*SERIES, "date"])
        prediction = pd.Series(np.nan, index=frame.index)
        known = known_features(frame)
        with torch.no_grad():
            for key, rows in frame.groupby(SERIES, sort=False).indices.items():
                s = self.keys.get(tuple(key))
                if s is None:
                    continue
                encoder = np.column_stack(
                    [self.last_values[s], self.last_observed[s], self.last_known[s]]
                )
                out = self.module(
                    torch.from_numpy(encoder)[None],
                    torch.from_numpy(known[rows])[None],
                    torch.tensor([s]),
                )
                normalised = out[0].numpy()
                prediction.iloc[rows] = normalised * self.scale[s, 0] + self.level[s, 0]
        aligned = prediction.reindex(future.index).to_numpy()
        return to_sales(aligned, future)
