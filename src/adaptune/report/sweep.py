"""The sweep's table: every approach x learning rate x epochs run with its accuracy on the val
split, and the best point of each approach (the one configs and README then adopt)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from adaptune.io import write_csv, write_text
from adaptune.report.inputs import ReportInputError, read_json
from adaptune.report.rendering import markdown_table

SUMMARY_KEYS = ("approach", "final_val_accuracy", "wall_time_s")
COLUMNS = ("approach", "learning_rate", "epochs", "final_val_accuracy", "wall_time_s", "summary")


def sweep_table(points: Sequence[Mapping]) -> pd.DataFrame:
    """One row per point (approach, learning_rate, epochs, summary: its summary.json), best val
    accuracy first within each approach; `best` marks the choice."""
    rows = []
    for point in points:
        path = Path(point["summary"])
        summary = read_json(path)
        missing = [key for key in SUMMARY_KEYS if key not in summary]
        if missing:
            raise ReportInputError(f"{path}: missing key(s) {missing}; a sweep run's summary.json needs {list(SUMMARY_KEYS)}")
        if summary["approach"] != point["approach"]:
            raise ReportInputError(f"{path}: approach is {summary['approach']!r}; expected {point['approach']!r}")
        rows.append({"approach": point["approach"], "learning_rate": float(point["learning_rate"]),
                     "epochs": int(point["epochs"]), "final_val_accuracy": summary["final_val_accuracy"],
                     "wall_time_s": summary["wall_time_s"], "summary": str(path)})
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table = table.sort_values(["approach", "final_val_accuracy", "wall_time_s"],
                              ascending=[True, False, True], kind="stable").reset_index(drop=True)
    table.insert(0, "best", ~table["approach"].duplicated())
    return table


def write_sweep(points: Sequence[Mapping], csv_path, md_path) -> pd.DataFrame:
    table = sweep_table(points)
    write_csv(csv_path, table)
    shown = table.assign(val_accuracy=table["final_val_accuracy"].map("{:.3f}".format),
                         minutes=(table["wall_time_s"] / 60).map("{:.1f}".format),
                         best=table["best"].map({True: "chosen", False: ""}))
    shown = shown[["approach", "learning_rate", "epochs", "val_accuracy", "minutes", "best"]]
    write_text(md_path, "# Sweep: accuracy on this pipeline's val split\n\n"
               "These runs chose the settings; their numbers are tuning numbers, not held-out "
               "results.\n\n" + markdown_table(shown) + "\n")
    return table
