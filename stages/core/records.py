"""What a torch task's train stage writes beside its networks, and the names later steps read
it by: a module without torch and Lightning, so that report imports it in a second, not ~5."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

HISTORY_FILE, SELECTION_FILE = "history.csv", "selection.json"


def write_training_record(
    folder: Path,
    trained: Mapping[str, Any],
    name_column: str,
    selection: Mapping[str, Any],
    run_info: Mapping[str, Any],
) -> None:
    """Every member's per-epoch history (HISTORY_FILE), the selection (SELECTION_FILE) and
    the registered run (RUN_INFO_FILE). `trained`: stages.core.training.TrainedMember by name,
    not imported here since report imports this module and code dependencies follow imports."""
    import pandas as pd

    from stages.core.fsio import dump_json
    from stages.core.tracking import RUN_INFO_FILE

    history = [{name_column: name, **row} for name, m in trained.items() for row in m.rows]
    pd.DataFrame(history).to_csv(folder / HISTORY_FILE, index=False)
    (folder / SELECTION_FILE).write_text(dump_json(selection), encoding="utf-8")
    run_info = {**run_info, "device": selection.get("device")}
    (folder / RUN_INFO_FILE).write_text(dump_json(run_info), encoding="utf-8")
