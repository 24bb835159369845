"""The forecasters. Each is fitted on a history (panel rows before the forecast origin, with
sales) and predicts the sales of the given future rows (same columns, covariates known)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Protocol

import numpy as np
import pandas as pd

from stages.timeseries.preprocess import COVARIATES, SERIES

KEY_COLUMNS = ["date", *SERIES]
CATEGORICAL = ["store_nbr", "family", "city", "state", "type", "cluster"]
KNOWN = [*COVARIATES, "closed"]


class Forecaster(Protocol):
    name: str

    def fit(self, history: pd.DataFrame) -> Forecaster: ...

    def predict(self, future: pd.DataFrame) -> np.ndarray: ...


def log_sales(frame: pd.DataFrame) -> pd.Series:
    return np.log1p(frame["sales"].clip(lower=0))


def to_sales(log_values: np.ndarray, future: pd.DataFrame) -> np.ndarray:
    """Back from log1p space; a closed store sells nothing."""
    sales = np.clip(np.expm1(np.asarray(log_values, dtype=float)), 0, None)
    return np.where(future["closed"].to_numpy() == 1, 0.0, np.nan_to_num(sales))


class SeasonalNaive:
    """Sales on the same weekday in the last week of history (two weeks back if that day was
    closed). The baseline every other model is compared with."""

    name = "seasonal_naive"

    def fit(self, history: pd.DataFrame) -> SeasonalNaive:
        last = history["date"].max()
        recent = history[(history["date"] > last - pd.Timedelta(days=14))].dropna(subset=["sales"])
        self.table = recent.sort_values("date").groupby([*SERIES, "dow"])["sales"].last()
        return self

    def predict(self, future: pd.DataFrame) -> np.ndarray:
        index = pd.MultiIndex.from_frame(future[[*SERIES, "dow"]])
        values = self.table.reindex(index).fillna(0).to_numpy()
        return np.where(future["closed"].to_numpy() == 1, 0.0, values)


class GradientBoosting:
    """One CatBoost model across all series on log1p(sales): lags and rolling means that are at
    least `horizon` days old (so all 16 days are predicted directly, no recursion), calendar,
    promotions, holidays, oil, and the store/family as categories."""

    name = "catboost"

    def __init__(self, horizon: int, params: Any, seed: int, n_jobs: int):
        self.horizon, self.params, self.seed, self.n_jobs = horizon, params, seed, n_jobs

    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.sort_values([*SERIES, "date"]).copy()
        frame["y"] = log_sales(frame)
        grouped = frame.groupby(SERIES, sort=False)["y"]
        shifted = grouped.shift(self.horizon)
        frame["lag_h"] = shifted
        for k in self.weekly_lags:
            frame[f"lag_{k}"] = grouped.shift(k)
        frame["same_weekday_mean"] = frame[[f"lag_{k}" for k in self.weekly_lags]].mean(axis=1)
        by_series = shifted.groupby([frame[c] for c in SERIES], sort=False)
        for window in self.params.rolling_windows:
            frame[f"mean_{window}"] = by_series.transform(
                lambda s, w=window: s.rolling(w, min_periods=1).mean()
            )
        # Last year around the same weekday: yearly seasonality beyond the reach of short lags.
        frame["lag_364"] = grouped.shift(364)
        frame["mean_364"] = (
            grouped.shift(361)
            .groupby([frame[c] for c in SERIES], sort=False)
            .transform(lambda s: s.rolling(7, min_periods=1).mean())
        )
        frame["day_of_year"] = frame["date"].dt.dayofyear
        frame["promo_log"] = np.log1p(frame["onpromotion"])
        for column in CATEGORICAL:
            frame[column] = frame[column].astype(str)
        return frame

    @property
    def weekly_lags(self) -> list[int]:
        """The first four multiples of 7 at or past the horizon: the same weekday, known."""
        return [k for k in range(self.horizon, self.horizon + 35) if k % 7 == 0][:4]

    def columns(self) -> list[str]:
        return [
            *CATEGORICAL,
            *KNOWN,
            "promo_log",
            "lag_h",
            *(f"lag_{k}" for k in self.weekly_lags),
            "same_weekday_mean",
            *(f"mean_{w}" for w in self.params.rolling_windows),
            "lag_364",
            "mean_364",
            "day_of_year",
        ]

    def fit(self, history: pd.DataFrame) -> GradientBoosting:
        from catboost import CatBoostRegressor

        frame = self.features(history)
        rows = frame["y"].notna() & frame["lag_h"].notna()
        self.model = CatBoostRegressor(
            iterations=self.params.iterations,
            depth=self.params.depth,
            learning_rate=self.params.learning_rate,
            loss_function="RMSE",
            random_seed=self.seed,
            thread_count=self.n_jobs,
            verbose=False,
            allow_writing_files=False,
            cat_features=CATEGORICAL,
        )
        self.model.fit(frame.loc[rows, self.columns()], frame.loc[rows, "y"])
        self.history = history.sort_values([*SERIES, "date"])
        return self

    def predict(self, future: pd.DataFrame) -> np.ndarray:
        """Lags of the future rows come from the tail of the history they follow."""
        first = future["date"].min()
        tail = self.history[self.history["date"] >= first - pd.Timedelta(days=400)]
        both = pd.concat([tail, future.assign(sales=np.nan)], ignore_index=True)
        frame = self.features(both)
        ahead = frame[frame.index >= len(tail)].sort_index()  # back in the order of `future`
        return to_sales(self.model.predict(ahead[self.columns()]), future)

    def feature_importance(self) -> pd.Series:
        return pd.Series(self.model.get_feature_importance(), index=self.columns())


def largest_series(history: pd.DataFrame, count: str | int) -> list[tuple]:
    volume = history.groupby(SERIES)["sales"].mean().sort_values(ascending=False)
    keys = list(volume.index)
    return keys if count == "all" else keys[: int(count)]


def per_series(
    history: pd.DataFrame,
    future: pd.DataFrame,
    keys: Iterable[tuple],
    history_days: int,
) -> Iterable[tuple[tuple, pd.DataFrame, pd.DataFrame]]:
    start = history["date"].max() - pd.Timedelta(days=history_days - 1)
    recent = history[history["date"] >= start]
    past_groups = dict(tuple(recent.groupby(SERIES)))
    future_groups = dict(tuple(future.groupby(SERIES)))
    for key in keys:
        if key in future_groups:
            yield key, past_groups[key].sort_values("date"), future_groups[key].sort_values("date")


def _single_blas_thread() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def parallel_map(function: Callable, tasks: list, n_jobs: int) -> list:
    """Per-series statistical fits in worker processes, one BLAS thread each (statsmodels is
    2-3x slower when BLAS threads fight over the cores)."""
    workers = max(1, min(len(tasks), n_jobs if n_jobs > 0 else os.cpu_count() or 1))
    if workers == 1:
        _single_blas_thread()
        return [function(task) for task in tasks]
    with ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=_single_blas_thread
    ) as pool:
        return list(pool.map(function, tasks, chunksize=max(1, len(tasks) // (4 * workers))))


class PerSeriesModel:
    """A statistical model fitted series by series; series outside `series` (when a count is
    given) fall back to the seasonal naive forecast."""

    name = "per_series"
    fit_one: Callable[[tuple], np.ndarray]

    def __init__(self, params: Any, n_jobs: int):
        self.params, self.n_jobs = params, n_jobs

    def fit(self, history: pd.DataFrame) -> PerSeriesModel:
        self.history = history
        self.fallback = SeasonalNaive().fit(history)
        self.keys = largest_series(history, self.params.series)
        return self

    def task(self, past: pd.DataFrame, ahead: pd.DataFrame) -> tuple:
        raise NotImplementedError

    def predict(self, future: pd.DataFrame) -> np.ndarray:
        prediction = pd.Series(self.fallback.predict(future), index=future.index)
        groups = list(per_series(self.history, future, self.keys, self.params.history_days))
        results = parallel_map(
            type(self).fit_one, [self.task(past, ahead) for _, past, ahead in groups], self.n_jobs
        )
        for (_, _, ahead), values in zip(groups, results, strict=True):
            prediction.loc[ahead.index] = to_sales(values, ahead)
        return prediction.to_numpy()


def exogenous(frame: pd.DataFrame) -> np.ndarray:
    holiday = frame[["national_holiday", "regional_holiday", "local_holiday"]].max(axis=1)
    return np.column_stack([np.log1p(frame["onpromotion"]), holiday, frame["closed"]]).astype(float)


class Sarimax(PerSeriesModel):
    """statsmodels SARIMAX on log1p(sales) per series with promotions, holidays and closures as
    exogenous regressors; closed days are missing values the Kalman filter skips."""

    name = "sarimax"

    def task(self, past: pd.DataFrame, ahead: pd.DataFrame) -> tuple:
        y = np.where(past["closed"] == 1, np.nan, log_sales(past))
        return (
            y,
            exogenous(past),
            exogenous(ahead),
            self.params.order,
            self.params.seasonal_order,
            self.params.maxiter,
        )

    @staticmethod
    def fit_one(task: tuple) -> np.ndarray:
        import warnings

        from statsmodels.tsa.statespace.sarimax import SARIMAX

        y, exog, exog_ahead, order, seasonal_order, maxiter = task
        exog, exog_ahead = _drop_constant(exog, exog_ahead)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = SARIMAX(
                y,
                exog=exog,
                order=order,
                seasonal_order=seasonal_order,
                enforce_stationarity=False,
                enforce_invertibility=False,
            )
            try:
                result = model.fit(disp=False, maxiter=maxiter)
            except (np.linalg.LinAlgError, ValueError):
                return np.full(len(exog_ahead), np.nanmean(y[-28:]))
            return result.forecast(len(exog_ahead), exog=exog_ahead)


def _drop_constant(exog: np.ndarray, exog_ahead: np.ndarray) -> tuple[np.ndarray | None, ...]:
    """A regressor that never varies in the history cannot be estimated: leave it out."""
    varying = exog.std(axis=0) > 0
    if not varying.any():
        return None, None
    return exog[:, varying], exog_ahead[:, varying]


class ProphetModel(PerSeriesModel):
    """Prophet per series on log1p(sales) with the national holidays as holidays and
    promotions / local holidays as extra regressors."""

    name = "prophet"

    def task(self, past: pd.DataFrame, ahead: pd.DataFrame) -> tuple:
        frame = pd.DataFrame(
            {
                "ds": past["date"],
                "y": np.where(past["closed"] == 1, np.nan, log_sales(past)),
                "promo": np.log1p(past["onpromotion"]),
                "local": past[["regional_holiday", "local_holiday"]].max(axis=1),
            }
        )
        later = pd.DataFrame(
            {
                "ds": ahead["date"],
                "promo": np.log1p(ahead["onpromotion"]),
                "local": ahead[["regional_holiday", "local_holiday"]].max(axis=1),
            }
        )
        both = pd.concat([past, ahead])
        holidays = pd.DataFrame(
            {"holiday": "national", "ds": both.loc[both["national_holiday"] == 1, "date"].unique()}
        )
        return frame, later, holidays, self.params.changepoint_prior_scale

    @staticmethod
    def fit_one(task: tuple) -> np.ndarray:
        import logging

        from prophet import Prophet

        for name in ("cmdstanpy", "prophet", "prophet.plot"):
            logging.getLogger(name).setLevel(logging.ERROR)

        frame, later, holidays, prior = task
        model = Prophet(
            holidays=holidays if len(holidays) else None,
            daily_seasonality=False,
            weekly_seasonality=True,
            yearly_seasonality=len(frame) >= 365,
            changepoint_prior_scale=prior,
        )
        for regressor in ("promo", "local"):
            if frame[regressor].std() > 0:
                model.add_regressor(regressor)
            else:
                frame, later = frame.drop(columns=regressor), later.drop(columns=regressor)
        model.fit(frame.dropna(subset=["y"]))
        return model.predict(later)["yhat"].to_numpy()
