"""preprocess: clean TotalSpent, fix the held-out test set, fit the feature encoder."""

from __future__ import annotations

import math

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from stages.churn.schema import CATEGORICAL, FEATURES, ID, NUMERIC, TARGET, RawChurn, read_raw
from stages.core.context import StepContext
from stages.core.fsio import dump_json, staged_outputs
from stages.core.splits import hash_order, row_keys

TRAIN, HOLDOUT, PREDICT, ENCODER, INFO = (
    "train.parquet",
    "holdout.parquet",
    "predict.parquet",
    "encoder.joblib",
    "features.json",
)


def clean(frame: pd.DataFrame) -> pd.DataFrame:
    """Blank TotalSpent (a new client) becomes MonthlySpending x ClientPeriod, i.e. 0 for a
    client in month 0; categories become strings so every model sees one dtype."""
    frame = frame.copy()
    text = frame["TotalSpent"].astype(str).str.strip()
    spent = pd.to_numeric(text.where(text != ""), errors="coerce")
    frame["TotalSpent"] = spent.fillna(frame["MonthlySpending"] * frame["ClientPeriod"])
    frame["ClientPeriod"] = frame["ClientPeriod"].astype(float)
    for column in CATEGORICAL:
        frame[column] = frame[column].astype(str)
    return frame


def make_encoder() -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("numeric", StandardScaler(), NUMERIC),
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                CATEGORICAL,
            ),
        ],
        verbose_feature_names_out=False,
    )


def split(raw: RawChurn, holdout_fraction: float, seed: int) -> dict[str, pd.DataFrame]:
    """train + a labelled held-out test, and the rows to predict for the Kaggle submission.

    The held-out test is test.csv when its labels are known (builtin source), else a share of
    train.csv chosen by each row's hash (real Kaggle data, whose test labels are private): rows
    added later never move an older row into the held-out test.
    """
    train = clean(raw.train)
    train[TARGET] = train[TARGET].astype(int)
    predict = None
    if raw.test is not None:
        predict = clean(raw.test)
        predict.insert(0, ID, np.arange(len(predict)))
    if raw.test_labels is not None and predict is not None:
        holdout = predict.copy()
        holdout[TARGET] = raw.test_labels.loc[holdout[ID]].to_numpy().astype(int)
        holdout = holdout.drop(columns=[ID])
    else:
        held_out = np.zeros(len(train), dtype=bool)
        held_out[hash_order(row_keys(train), seed)[: math.ceil(len(train) * holdout_fraction)]] = 1
        train, holdout = train[~held_out], train[held_out]
    if predict is None:
        predict = holdout.drop(columns=[TARGET]).reset_index(drop=True)
        predict.insert(0, ID, np.arange(len(predict)))
    return {
        TRAIN: train.reset_index(drop=True),
        HOLDOUT: holdout.reset_index(drop=True),
        PREDICT: predict,
    }


def run(ctx: StepContext) -> None:
    raw = read_raw(ctx.paths.raw)
    tables = split(raw, ctx.task_params.preprocess.holdout_fraction, ctx.common.seed)
    encoder = make_encoder().fit(tables[TRAIN][FEATURES])
    info = {
        "numeric": NUMERIC,
        "categorical": CATEGORICAL,
        "encoded": list(encoder.get_feature_names_out()),
        "rows": {name.split(".")[0]: len(t) for name, t in tables.items()},
        "holdout_from": "test.csv + test_labels.csv"
        if raw.test_labels is not None
        else "train.csv",
    }
    out = ctx.paths.processed
    with staged_outputs(out) as staging:
        tmp = staging[out]
        tmp.mkdir()
        for name, table in tables.items():
            table.to_parquet(tmp / name, index=False)
        joblib.dump(encoder, tmp / ENCODER)
        (tmp / INFO).write_text(dump_json(info), encoding="utf-8")
