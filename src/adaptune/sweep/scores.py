"""The sweep's points and its choice: per approach, the learning rate and epochs whose val
macro-F1, averaged over the sweep's seeds, is highest (among the settings scored on the most
seeds: a sweep cut to one seed chooses among the settings it confirmed on more).

Each sweep run trains one approach at one learning rate and seed for the largest epoch count.
Under a constant learning rate without warm-up the val score at the end of epoch e stands for an
e-epoch run; under wsd each shorter run is branched off with its own decay and scored
(branches.csv beside the run's curves.csv, adaptune.train.schedule), and the run's own end is
the longest. Ties go to fewer epochs, then to the lower learning rate: the cheaper setting.

pandas only (no plotting): the sweep's extension jobs choose with it in the training
environment, and the report writes its tables from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from adaptune.core.names import BRANCHES_FILE


class SweepInputError(ValueError):
    """A sweep run's curves.csv that is missing or lacks what the choice needs."""


POINT_COLUMNS = (
    "approach",
    "learning_rate",
    "epochs",
    "seed",
    "val_macro_f1",
    "val_accuracy",
    "curves",
)
MEAN_COLUMNS = (
    "approach",
    "learning_rate",
    "epochs",
    "seeds",
    "val_macro_f1",
    "val_macro_f1_sd",
    "val_accuracy",
    "chosen",
)


def epoch_scores(curves_csv: str | Path, epochs: Sequence[int]) -> dict[int, dict[str, float]]:
    """val macro-F1 and accuracy at the end of each epoch in `epochs` (1-based), read from a
    run's curves.csv (Lightning counts epochs from 0; the last val row of an epoch is its end)."""
    path = Path(curves_csv)
    if not path.is_file():
        raise SweepInputError(f"{path}: no such file; every sweep run writes curves.csv")
    curves = pd.read_csv(path)
    missing = [c for c in ("step", "epoch", "val_macro_f1", "val_accuracy") if c not in curves]
    if missing:
        raise SweepInputError(
            f"{path}: missing column(s) {missing}; a sweep run's curves.csv needs "
            "step, epoch, val_macro_f1 and val_accuracy"
        )
    scored = curves.dropna(subset=["val_macro_f1"])
    # The untrained model's score is no epoch's end.
    scored = scored[scored["step"] > 0].sort_values("step").copy()
    trained = curves.dropna(subset=["train_loss"]) if "train_loss" in curves else curves.iloc[:0]
    if not trained.empty:
        # A pass after the last epoch (a run resumed from its final checkpoint validates after
        # `fit`, and Lightning logs it under the next epoch) ends the last epoch trained.
        last = trained.sort_values("step").iloc[-1]
        beyond = (scored["epoch"] > last["epoch"]) & (scored["step"] >= last["step"])
        scored.loc[beyond, "epoch"] = last["epoch"]
    ends = scored.groupby("epoch").tail(1).set_index("epoch")
    result = {}
    for epoch in epochs:
        if epoch - 1 not in ends.index:
            raise SweepInputError(
                f"{path}: no val score at the end of epoch {epoch}; the run has "
                f"{len(ends)} scored epoch(s)"
            )
        row = ends.loc[epoch - 1]
        result[int(epoch)] = {
            "val_macro_f1": float(row["val_macro_f1"]),
            "val_accuracy": float(row["val_accuracy"]),
        }
    branches = path.with_name(BRANCHES_FILE)
    if branches.is_file():  # a wsd run: its shorter runs are the branches, not its epoch ends
        for row in pd.read_csv(branches).itertuples(index=False):
            if int(row.epochs) in result:
                result[int(row.epochs)] = {
                    "val_macro_f1": float(row.val_macro_f1),
                    "val_accuracy": float(row.val_accuracy),
                }
    return result


def sweep_tables(
    runs: Sequence[Mapping], epochs: Sequence[int]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(points, means): one row per run x epoch count, and one per approach x learning rate x
    epochs with the mean over seeds; `chosen` marks each approach's choice."""
    rows = []
    for run in runs:
        # A run trained `epochs` long (the grid's extension) scores the epoch counts up to it.
        # A confirmation run scores only the settings it confirms.
        scored = [
            e
            for e in epochs
            if e <= int(run.get("epochs", max(epochs))) and e in run.get("scored", [e])
        ]
        for epoch, scores in epoch_scores(run["curves"], scored).items():
            rows.append(
                {
                    "approach": run["approach"],
                    "learning_rate": float(run["learning_rate"]),
                    "epochs": epoch,
                    "seed": int(run["seed"]),
                    **scores,
                    "curves": str(run["curves"]),
                }
            )
    # A longer run's branches repeat points the grid has: the first run of a point counts.
    points = pd.DataFrame(rows, columns=list(POINT_COLUMNS)).drop_duplicates(
        ["approach", "learning_rate", "epochs", "seed"], ignore_index=True
    )
    grouped = points.groupby(["approach", "learning_rate", "epochs"], sort=True)
    means = grouped.agg(
        seeds=("seed", "nunique"),
        val_macro_f1=("val_macro_f1", "mean"),
        val_macro_f1_sd=("val_macro_f1", "std"),
        val_accuracy=("val_accuracy", "mean"),
    ).reset_index()
    # Only settings scored on an approach's most seeds compete: after a confirmation, the
    # confirmed ones (a mean over more seeds is not compared with a single run's score).
    most = means["seeds"] == means.groupby("approach")["seeds"].transform("max")
    ranked = means[most].sort_values(
        ["approach", "val_macro_f1", "epochs", "learning_rate"],
        ascending=[True, False, True, True],
        kind="stable",
    )
    means["chosen"] = means.index.isin(ranked.groupby("approach").head(1).index)
    return points, means[list(MEAN_COLUMNS)]


def chosen_settings(means: pd.DataFrame) -> dict[str, dict]:
    """{approach: {learning_rate, epochs, val_macro_f1, seeds}} of the chosen rows."""
    return {
        row.approach: {
            "learning_rate": float(row.learning_rate),
            "epochs": int(row.epochs),
            "val_macro_f1": round(float(row.val_macro_f1), 6),
            "seeds": int(row.seeds),
        }
        for row in means[means["chosen"]].itertuples(index=False)
    }
