"""The registered model: an MLflow pyfunc around the fitted forecaster. Its input is the
preprocessed future rows (data/processed/timeseries/future.parquet layout: test.csv columns plus
the known covariates); its output is sales per row."""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd


class ForecasterModel(mlflow.pyfunc.PythonModel):
    def __init__(self, forecaster):
        self.forecaster = forecaster

    def predict(self, context, model_input: pd.DataFrame, params=None):
        return pd.Series(
            self.forecaster.predict(model_input), index=model_input.index, name="sales"
        )
