"""The forecasters. Each is fitted on a history (panel rows before the forecast origin, with
sales) and predicts the sales of the given future rows (same columns, covariates known)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import numpy as np
import pandas as pd

from stages.core.processes import cpu_workers, worker_pool
from stages.timeseries.frequency import DAILY, Frequency
from stages.timeseries.preprocess import COVARIATES, SERIES

KEY_COLUMNS = ["date", *SERIES]
CATEGORICAL = ["store_nbr", "family", "city", "state", "type", "cluster"]
KNOWN = [*COVARIATES, "closed"]
LONG_SEASON = 24  # SARIMAX periods beyond which the season is modelled by Fourier terms
FOURIER_PAIRS = 4


class Forecaster(Protocol):
    name: str

    def too_short(self, periods: int) -> str | None:
        """Why `periods` of history are too few to fit this model, or None."""

    def fit(self, history: pd.DataFrame) -> Forecaster: ...

    def predict(self, future: pd.DataFrame) -> np.ndarray: ...


def log_sales(frame: pd.DataFrame) -> pd.Series:
    return np.log1p(frame["sales"].clip(lower=0))


def to_sales(log_values: np.ndarray, future: pd.DataFrame) -> np.ndarray:
    """Back from log1p space; a closed store sells nothing."""
    sales = np.clip(np.expm1(np.asarray(log_values, dtype=float)), 0, None)
    return np.where(future["closed"].to_numpy() == 1, 0.0, np.nan_to_num(sales))


class SeasonalNaive:
    """Sales in the same period of the last season of history — the same weekday last week for
    daily data, the same week or month last year otherwise — or a season earlier if that one
    was closed, or the series' last sales when the history is shorter than that. The baseline
    every other model is compared with."""

    name = "seasonal_naive"
    frequency = DAILY  # the class default keeps versions pickled before other frequencies

    def __init__(self, frequency: Frequency = DAILY):
        self.frequency = frequency

    def too_short(self, periods: int) -> str | None:
        return None

    def fit(self, history: pd.DataFrame) -> SeasonalNaive:
        season = self.frequency.season
        known = history.dropna(subset=["sales"]).sort_values("date")
        recent = known[known["date"] > self.frequency.add(known["date"].max(), -2 * season)]
        by_phase = recent.groupby([*SERIES, self.frequency.phase(recent["date"])])["sales"].last()
        every = pd.MultiIndex.from_tuples(
            [
                (*key, phase)
                for key in known[SERIES].drop_duplicates().itertuples(index=False)
                for phase in range(season)
            ]
        )
        last = known.groupby(SERIES)["sales"].last()
        fallback = last.reindex(every.droplevel(-1)).to_numpy()
        self.table = by_phase.reindex(every).fillna(pd.Series(fallback, index=every))
        return self

    def predict(self, future: pd.DataFrame) -> np.ndarray:
        keys = future[SERIES].assign(phase=self.frequency.phase(future["date"]))
        values = self.table.reindex(pd.MultiIndex.from_frame(keys)).fillna(0).to_numpy()
        return np.where(future["closed"].to_numpy() == 1, 0.0, values)


class GradientBoosting:
    """One CatBoost model across all series on log1p(sales): lags and rolling means that are at
    least `horizon` periods old (so every period of the horizon is predicted directly, no
    recursion), calendar, promotions, holidays, oil, and the store/family as categories."""

    name = "catboost"
    frequency = DAILY  # the class default keeps versions pickled before other frequencies

    def __init__(
        self, horizon: int, params: Any, seed: int, n_jobs: int, frequency: Frequency = DAILY
    ):
        self.horizon, self.params, self.seed, self.n_jobs = horizon, params, seed, n_jobs
        self.frequency = frequency

    def too_short(self, periods: int) -> str | None:
        if periods >= 2 * self.horizon:
            return None
        return (
            f"its lags are at least the horizon old, so it needs "
            f"{self.frequency.periods(2 * self.horizon)} of history; the validation window has "
            f"{self.frequency.periods(periods)}"
        )

    @property
    def windows(self) -> list[int]:
        chosen = self.params.rolling_windows
        return list(self.frequency.rolling) if chosen == "auto" else list(chosen)

    @property
    def yearly(self) -> bool:
        """A yearly lag beyond the seasonal ones (daily data: the season is a week)."""
        return self.frequency.year > self.frequency.season

    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.sort_values([*SERIES, "date"]).copy()
        frame["y"] = log_sales(frame)
        grouped = frame.groupby(SERIES, sort=False)["y"]
        shifted = grouped.shift(self.horizon)
        frame["lag_h"] = shifted
        for k in self.seasonal_lags:
            frame[f"lag_{k}"] = grouped.shift(k)
        # the same period of the season (weekday, week or month of the year): the name is kept
        # for versions registered when every series was daily
        frame["same_weekday_mean"] = frame[[f"lag_{k}" for k in self.seasonal_lags]].mean(axis=1)
        by_series = shifted.groupby([frame[c] for c in SERIES], sort=False)
        for window in self.windows:
            frame[f"mean_{window}"] = by_series.transform(
                lambda s, w=window: s.rolling(w, min_periods=1).mean()
            )
        if self.yearly:
            # Last year around the same weekday: yearly seasonality beyond the short lags.
            year = self.frequency.year
            frame[f"lag_{year}"] = grouped.shift(year)
            frame[f"mean_{year}"] = (
                grouped.shift(year - 3)
                .groupby([frame[c] for c in SERIES], sort=False)
                .transform(lambda s: s.rolling(7, min_periods=1).mean())
            )
        frame["day_of_year"] = frame["date"].dt.dayofyear
        frame["promo_log"] = np.log1p(frame["onpromotion"])
        for column in CATEGORICAL:
            frame[column] = frame[column].astype(str)
        return frame

    @property
    def seasonal_lags(self) -> list[int]:
        """The first four multiples of the season at or past the horizon: the same weekday (or
        week, month of the year), known when forecasting."""
        season = self.frequency.season
        first = -(-self.horizon // season) * season
        return [first + i * season for i in range(4)]

    @property
    def lookback(self) -> int:
        """Periods of history the features of one forecast period read."""
        reach = [self.seasonal_lags[-1], self.horizon + max(self.windows)]
        return max(reach + ([self.frequency.year + 4] if self.yearly else [])) + 1

    def columns(self) -> list[str]:
        year = self.frequency.year
        return [
            *CATEGORICAL,
            *KNOWN,
            "promo_log",
            "lag_h",
            *(f"lag_{k}" for k in self.seasonal_lags),
            "same_weekday_mean",
            *(f"mean_{w}" for w in self.windows),
            *([f"lag_{year}", f"mean_{year}"] if self.yearly else []),
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
        tail = self.history[self.history["date"] >= self.frequency.add(first, -self.lookback)]
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
    periods: int,
    frequency: Frequency,
) -> Iterable[tuple[tuple, pd.DataFrame, pd.DataFrame]]:
    start = frequency.add(history["date"].max(), -(periods - 1))
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
    2-3x slower when BLAS threads fight over the cores: two workers with 2 threads each on 2
    cores took SARIMAX 11.7 s, with one each 5.1); one after another where the scheduler
    running the stage gives it one thread (the suite, the flow), as spawning costs seconds."""
    workers = max(1, min(len(tasks), cpu_workers(n_jobs)))
    if workers == 1:
        _single_blas_thread()
        return [function(task) for task in tasks]
    with worker_pool(workers, threads=1) as pool:
        return list(pool.map(function, tasks, chunksize=max(1, len(tasks) // (4 * workers))))


class PerSeriesModel:
    """A statistical model fitted series by series; series outside `series` (when a count is
    given) fall back to the seasonal naive forecast."""

    name = "per_series"
    fit_one: Callable[[tuple], np.ndarray]

    def __init__(self, params: Any, n_jobs: int, horizon: int, frequency: Frequency):
        self.params, self.n_jobs = params, n_jobs
        self.horizon, self.frequency = horizon, frequency

    def needs(self) -> int:
        """Periods of history one series' fit needs."""
        return 2 * self.horizon

    def too_short(self, periods: int) -> str | None:
        seen = min(periods, self.params.history)
        if seen >= self.needs():
            return None
        return (
            f"it needs {self.frequency.periods(self.needs())} of history per series; the "
            f"validation window has {self.frequency.periods(seen)}"
            + (f" (train.{self.name}.history)" if seen < periods else "")
        )

    def fit(self, history: pd.DataFrame) -> PerSeriesModel:
        self.history = history
        self.fallback = SeasonalNaive(self.frequency).fit(history)
        self.keys = largest_series(history, self.params.series)
        return self

    def task(self, past: pd.DataFrame, ahead: pd.DataFrame) -> tuple:
        raise NotImplementedError

    def predict(self, future: pd.DataFrame) -> np.ndarray:
        prediction = pd.Series(self.fallback.predict(future), index=future.index)
        groups = list(
            per_series(self.history, future, self.keys, self.params.history, self.frequency)
        )
        results = parallel_map(
            type(self).fit_one, [self.task(past, ahead) for _, past, ahead in groups], self.n_jobs
        )
        for (_, _, ahead), values in zip(groups, results, strict=True):
            prediction.loc[ahead.index] = to_sales(values, ahead)
        return prediction.to_numpy()


def exogenous(frame: pd.DataFrame) -> np.ndarray:
    holiday = frame[["national_holiday", "regional_holiday", "local_holiday"]].max(axis=1)
    return np.column_stack([np.log1p(frame["onpromotion"]), holiday, frame["closed"]]).astype(float)


def fourier(index: np.ndarray, period: int, pairs: int = FOURIER_PAIRS) -> np.ndarray:
    angle = 2 * np.pi * np.outer(index, np.arange(1, pairs + 1)) / period
    return np.column_stack([np.sin(angle), np.cos(angle)])


class Sarimax(PerSeriesModel):
    """statsmodels SARIMAX on log1p(sales) per series with promotions, holidays and closures as
    exogenous regressors; closed days are missing values the Kalman filter skips. A season
    longer than LONG_SEASON periods (52 weeks) becomes Fourier regressors on a non-seasonal
    ARIMA (dynamic harmonic regression): a 52-week seasonal ARIMA has over 100 states, and its
    fit took 40-50 s per series on 2 cores."""

    name = "sarimax"

    @property
    def seasonal_order(self) -> tuple[int, int, int, int]:
        period = self.params.seasonal_period
        return (*self.params.seasonal_order, self.frequency.season if period == "auto" else period)

    def needs(self) -> int:
        """Two seasons to estimate a seasonal part, else the default."""
        *seasonal, period = self.seasonal_order
        return max(2 * period if any(seasonal) else 0, super().needs())

    def task(self, past: pd.DataFrame, ahead: pd.DataFrame) -> tuple:
        y = np.where(past["closed"] == 1, np.nan, log_sales(past))
        seasonal_order, exog, exog_ahead = self.seasonal_order, exogenous(past), exogenous(ahead)
        order, period = self.params.order, seasonal_order[3]
        if period > LONG_SEASON:
            exog = np.column_stack([exog, fourier(self.frequency.index(past["date"]), period)])
            index_ahead = self.frequency.index(ahead["date"])
            exog_ahead = np.column_stack([exog_ahead, fourier(index_ahead, period)])
            # the seasonal difference, which followed the level, becomes a first difference
            order, seasonal_order = (order[0], max(order[1], seasonal_order[1]), order[2]), (0,) * 4
        return y, exog, exog_ahead, order, seasonal_order, self.params.maxiter

    @staticmethod
    def fit_one(task: tuple) -> np.ndarray:
        import warnings

        from statsmodels.tsa.statespace.sarimax import SARIMAX

        y, exog, exog_ahead, order, seasonal_order, maxiter = task
        steps = len(exog_ahead)
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
                return np.full(steps, np.nanmean(y[-28:]))
            return result.forecast(steps, exog=exog_ahead)


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
        daily = self.frequency.name == "daily"
        return frame, later, holidays, self.params.changepoint_prior_scale, daily

    @staticmethod
    def fit_one(task: tuple) -> np.ndarray:
        import logging

        from prophet import Prophet

        for name in ("cmdstanpy", "prophet", "prophet.plot"):
            logging.getLogger(name).setLevel(logging.ERROR)

        frame, later, holidays, prior, daily = task
        model = Prophet(
            holidays=holidays if len(holidays) else None,
            daily_seasonality=False,
            weekly_seasonality=daily,
            yearly_seasonality=frame["ds"].max() - frame["ds"].min() >= pd.Timedelta(days=364),
            changepoint_prior_scale=prior,
        )
        for regressor in ("promo", "local"):
            if frame[regressor].std() > 0:
                model.add_regressor(regressor)
            else:
                frame, later = frame.drop(columns=regressor), later.drop(columns=regressor)
        model.fit(frame.dropna(subset=["y"]))
        return model.predict(later)["yhat"].to_numpy()
