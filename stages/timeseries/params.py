from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, PositiveInt

from stages.core.params import PromotionParams, StrictModel, TaskParams
from stages.core.sources import SourceParams


class TimeseriesSource(SourceParams):
    """Sizes of the builtin generator (ignored for url/path sources)."""

    stores: int = Field(default=5, ge=1, le=54)
    families: int = Field(default=8, ge=1, le=33)
    start: str = "2016-01-01"
    end: str = "2017-08-15"
    noise: float = Field(default=0.15, ge=0, description="sd of the noise on log1p(sales)")


class ValidateParams(StrictModel):
    max_sales: float = Field(default=1e6, gt=0)


class PreprocessParams(StrictModel):
    horizon: Literal["auto"] | PositiveInt = Field(
        default="auto",
        description="periods per split; auto: test.csv's, else 16 days / 8 weeks / 6 months",
    )


class SarimaxParams(StrictModel):
    enabled: bool = True
    order: tuple[int, int, int] = (1, 0, 1)
    seasonal_order: tuple[int, int, int] = (0, 1, 1)
    seasonal_period: Literal["auto"] | PositiveInt = Field(
        default="auto", description="auto: the data's season (7 days, 52 weeks, 12 months)"
    )
    series: Literal["all"] | int = Field(
        default="all", description="fit the N largest series (the rest use seasonal naive)"
    )
    history: int = Field(default=365, ge=60, description="periods of history each fit sees")
    maxiter: int = Field(default=50, ge=1)


class ProphetParams(StrictModel):
    enabled: bool = True
    series: Literal["all"] | int = "all"
    history: int = Field(default=365, ge=60, description="periods of history each fit sees")
    changepoint_prior_scale: float = Field(default=0.05, gt=0)


class RnnParams(StrictModel):
    enabled: bool = True
    cell: Literal["gru", "lstm"] = "gru"
    hidden: int = Field(default=64, ge=4)
    window: int = Field(
        default=56, ge=7, description="periods the encoder reads (fewer when the history is short)"
    )
    epochs: int = Field(default=8, ge=1)
    batch_size: int = Field(default=256, ge=1)
    learning_rate: float = Field(default=3e-3, gt=0)
    stride: int = Field(default=1, ge=1, description="periods between training windows")


class BoostingParams(StrictModel):
    enabled: bool = True
    iterations: int = Field(default=600, ge=1)
    depth: int = Field(default=6, ge=1, le=16)
    learning_rate: float = Field(default=0.08, gt=0)
    rolling_windows: Literal["auto"] | Annotated[list[PositiveInt], Field(min_length=1)] = Field(
        default="auto", description="auto: 7-56 days, 4-26 weeks, 3-12 months"
    )


class TrainParams(StrictModel):
    sarimax: SarimaxParams = SarimaxParams()
    prophet: ProphetParams = ProphetParams()
    rnn: RnnParams = RnnParams()
    catboost: BoostingParams = BoostingParams()


class EvaluateParams(StrictModel):
    promotion: PromotionParams = PromotionParams(metric="rmsle", direction="minimize")
    plot_series: int = Field(default=4, ge=1, description="series drawn in the forecast plot")


class Params(TaskParams):
    source: TimeseriesSource = TimeseriesSource()
    validate_: ValidateParams = Field(default=ValidateParams(), alias="validate")
    preprocess: PreprocessParams = PreprocessParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
