"""The competition schema and the readers that bring every accepted layout to it: the Kaggle
competition files (train.csv/test.csv, `Sex` or `Gender`) and the original IBM file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from stages.core.errors import UserError
from stages.core.sources import find_file
from stages.core.tables import read_csv, require_columns

TRAIN_FILE = "train.csv"
TEST_FILE = "test.csv"
TEST_LABELS_FILE = "test_labels.csv"  # held-out labels of test.csv: builtin source only
SUBMISSION_FILE = "submission.csv"
IBM_FILE = "WA_Fn-UseC_-Telco-Customer-Churn.csv"

TARGET = "Churn"
ID = "Id"
NUMERIC = ["ClientPeriod", "MonthlySpending", "TotalSpent"]
YES_NO = ["Yes", "No"]
NO_INTERNET = ["Yes", "No", "No internet service"]
CATEGORIES: dict[str, list] = {
    "Sex": ["Male", "Female"],
    "IsSeniorCitizen": [0, 1],
    "HasPartner": YES_NO,
    "HasChild": YES_NO,
    "HasPhoneService": YES_NO,
    "HasMultiplePhoneNumbers": ["Yes", "No", "No phone service"],
    "HasInternetService": ["Fiber optic", "DSL", "No"],
    "HasOnlineSecurityService": NO_INTERNET,
    "HasOnlineBackup": NO_INTERNET,
    "HasDeviceProtection": NO_INTERNET,
    "HasTechSupportAccess": NO_INTERNET,
    "HasOnlineTV": NO_INTERNET,
    "HasMovieSubscription": NO_INTERNET,
    "HasContractPhone": ["Month-to-month", "One year", "Two year"],
    "IsBillingPaperless": YES_NO,
    "PaymentMethod": [
        "Electronic check",
        "Mailed check",
        "Bank transfer (automatic)",
        "Credit card (automatic)",
    ],
}
CATEGORICAL = list(CATEGORIES)
FEATURES = NUMERIC + CATEGORICAL

IBM_TO_COMPETITION = {
    "gender": "Sex",
    "SeniorCitizen": "IsSeniorCitizen",
    "Partner": "HasPartner",
    "Dependents": "HasChild",
    "tenure": "ClientPeriod",
    "PhoneService": "HasPhoneService",
    "MultipleLines": "HasMultiplePhoneNumbers",
    "InternetService": "HasInternetService",
    "OnlineSecurity": "HasOnlineSecurityService",
    "OnlineBackup": "HasOnlineBackup",
    "DeviceProtection": "HasDeviceProtection",
    "TechSupport": "HasTechSupportAccess",
    "StreamingTV": "HasOnlineTV",
    "StreamingMovies": "HasMovieSubscription",
    "Contract": "HasContractPhone",
    "PaperlessBilling": "IsBillingPaperless",
    "PaymentMethod": "PaymentMethod",
    "MonthlyCharges": "MonthlySpending",
    "TotalCharges": "TotalSpent",
    "Churn": "Churn",
}


@dataclass(frozen=True)
class RawChurn:
    """The raw tables in the competition schema; `TotalSpent` still text, as in the files."""

    layout: str  # "competition" or "ibm"
    train: pd.DataFrame
    test: pd.DataFrame | None
    test_labels: pd.Series | None
    files: dict[str, Path]


def read_raw(raw_dir: Path) -> RawChurn:
    train_path = find_file(raw_dir, TRAIN_FILE)
    if train_path is not None:
        test_path = find_file(raw_dir, TEST_FILE)
        labels_path = find_file(raw_dir, TEST_LABELS_FILE)
        train = _normalise(_read_csv(train_path), train_path, with_target=True)
        test = _normalise(_read_csv(test_path), test_path, with_target=False) if test_path else None
        labels = None
        if test is not None and labels_path is not None:
            labels = _read_labels(labels_path, expected_rows=len(test))
        files = {"train": train_path, "test": test_path, "test_labels": labels_path}
        return RawChurn("competition", train, test, labels, {k: v for k, v in files.items() if v})
    ibm_path = find_file(raw_dir, IBM_FILE)
    if ibm_path is not None:
        frame = _read_csv(ibm_path).rename(columns=IBM_TO_COMPETITION)
        train = _normalise(frame, ibm_path, with_target=True)
        return RawChurn("ibm", train, None, None, {"train": ibm_path})
    raise UserError(
        f"{raw_dir}: no {TRAIN_FILE} (Kaggle competition layout) or {IBM_FILE} (IBM original) found"
    )


def _read_csv(path: Path) -> pd.DataFrame:
    # TotalSpent stays text: the files hold " " for new clients.
    return read_csv(
        path,
        dtype={"TotalSpent": str, "TotalCharges": str},
        keep_default_na=False,
        na_values={c: ["", "NA", "NaN"] for c in NUMERIC[:2]},
    )


def _normalise(frame: pd.DataFrame, path: Path, with_target: bool) -> pd.DataFrame:
    frame = frame.rename(columns={"Gender": "Sex"})
    wanted = FEATURES + ([TARGET] if with_target else [])
    require_columns(frame, wanted, path, "competition")
    frame = frame[wanted].copy()
    if with_target:
        frame[TARGET] = frame[TARGET].map(_target_value)
    return frame


def _target_value(value: object) -> object:
    """IBM spells the target Yes/No, the competition 0/1; anything else is left for validation."""
    return (
        {"Yes": 1, "No": 0, "1": 1, "0": 0}.get(value, value) if isinstance(value, str) else value
    )


def _read_labels(path: Path, expected_rows: int) -> pd.Series:
    labels = _read_csv(path)
    if list(labels.columns) != [ID, TARGET] or len(labels) != expected_rows:
        raise UserError(
            f"{path}: expected columns {ID},{TARGET} and {expected_rows} rows "
            "(one per test.csv row)"
        )
    return labels.set_index(ID)[TARGET]
