from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from stages.core.params import PromotionParams, StrictModel, TaskParams
from stages.core.sources import SourceParams


class ChurnSource(SourceParams):
    test_rows: int = Field(default=1761, gt=0, description="builtin: rows held out as test.csv")


class ValidateParams(StrictModel):
    target_rate: tuple[float, float] = (0.05, 0.6)
    max_client_period: int = 120
    max_monthly_spending: float = 250.0

    @model_validator(mode="after")
    def _ordered(self) -> ValidateParams:
        low, high = self.target_rate
        if not 0 <= low < high <= 1:
            raise ValueError("target_rate must be [low, high] with 0 <= low < high <= 1")
        return self


class PreprocessParams(StrictModel):
    holdout_fraction: float = Field(
        default=0.25,
        gt=0,
        lt=1,
        description="share of train.csv held out when test.csv has no labels (real Kaggle data)",
    )


class CVParams(StrictModel):
    folds: int = Field(default=5, ge=2)
    repeats: int = Field(default=2, ge=1)


class LogRegParams(StrictModel):
    C: list[float] = Field(default=[0.01, 0.1, 1.0, 10.0], min_length=1)
    class_weight: Literal["balanced"] | None = None


class ForestParams(StrictModel):
    """Keys besides `name` are RandomForestClassifier arguments."""

    name: str
    n_estimators: int = Field(default=300, ge=1)
    max_depth: int | None = None
    min_samples_leaf: int = Field(default=1, ge=1)
    max_features: float | Literal["sqrt", "log2"] = "sqrt"


class CatBoostParams(StrictModel):
    """Keys besides `name` are CatBoostClassifier arguments."""

    name: str
    depth: int = Field(default=6, ge=1, le=16)
    iterations: int = Field(default=500, ge=1)
    learning_rate: float = Field(default=0.05, gt=0)
    l2_leaf_reg: float = Field(default=3.0, ge=0)
    random_seed: int = 0


class TrainParams(StrictModel):
    cv: CVParams = CVParams()
    logreg: LogRegParams = LogRegParams()
    random_forests: list[ForestParams] = Field(min_length=0)
    catboost: list[CatBoostParams] = Field(min_length=0)
    # greedy: a weighted mean chosen on out-of-fold predictions, never below its best member
    # there; stacking: a logistic regression on the members' log-odds; mean: the plain mean
    ensemble: Literal["greedy", "stacking", "mean"] = "greedy"
    greedy_rounds: int = Field(
        default=25, ge=1, description="greedy: members added, repeats allowed"
    )

    @model_validator(mode="after")
    def _unique_names(self) -> TrainParams:
        names = ["logreg", *(m.name for m in self.random_forests), *(m.name for m in self.catboost)]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"member names must be unique, repeated: {', '.join(duplicated)}")
        return self


class EvaluateParams(StrictModel):
    promotion: PromotionParams = PromotionParams(metric="roc_auc", direction="maximize")
    threshold: Literal["f1"] | float = Field(
        default="f1", description="'f1' picks the F1-optimal cut on out-of-fold predictions"
    )
    calibration_bins: int = Field(default=10, ge=2)


class Params(TaskParams):
    source: ChurnSource = ChurnSource()
    validate_: ValidateParams = Field(default=ValidateParams(), alias="validate")
    preprocess: PreprocessParams = PreprocessParams()
    train: TrainParams
    evaluate: EvaluateParams = EvaluateParams()
