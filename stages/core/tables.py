"""Reading a task's CSV files: unreadable files and missing columns become one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from stages.core.errors import UserError


def read_csv(path: Path, **options: Any) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **options)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise UserError(f"{path}: not a readable CSV ({' '.join(str(exc).split())})") from None


def require_columns(frame: pd.DataFrame, columns: list[str], path: Path, layout: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(
            f"{path}: missing column(s) {', '.join(map(repr, missing))} "
            f"(expected the {layout} columns {', '.join(columns)})"
        )
