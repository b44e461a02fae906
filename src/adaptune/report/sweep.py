"""The sweep's tables and its choice as files: per-seed points, the val curves behind the
choice, and chosen.yaml (the choice itself: adaptune.sweep.scores)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from adaptune.core.io import write_csv, write_text
from adaptune.report.rendering import markdown_table
from adaptune.sweep.choice import edge_note, format_chosen, grid_edges
from adaptune.sweep.scores import chosen_settings, sweep_tables


def write_sweep(
    runs: Sequence[Mapping], epochs: Sequence[int], csv_path, md_path, chosen_path=None
) -> pd.DataFrame:
    """Write the per-seed points (csv), the val curves and the choice (md) and, when
    `chosen_path` is given, the chosen settings (yaml). Returns the table of means."""
    points, means = sweep_tables(runs, scored_epochs(runs, epochs))
    seeds = sorted(points["seed"].unique().tolist())
    points = points.merge(
        means[["approach", "learning_rate", "epochs", "chosen"]],
        on=["approach", "learning_rate", "epochs"],
    )
    write_csv(csv_path, points)
    note = edge_note(grid_edges(points))
    curves = means.pivot_table(
        index=["approach", "learning_rate"], columns="epochs", values="val_macro_f1"
    ).reset_index()
    curves.columns = ["approach", "learning rate", *[f"epoch {e}" for e in curves.columns[2:]]]
    for column in curves.columns[2:]:  # "—": a rate not trained that long
        curves[column] = curves[column].map(lambda v: "—" if pd.isna(v) else f"{v:.3f}")
    shown = means[means["chosen"]].assign(
        val_macro_f1=lambda t: t["val_macro_f1"].map("{:.3f}".format),
        sd=lambda t: t["val_macro_f1_sd"].map(lambda v: "—" if pd.isna(v) else f"{v:.3f}"),
        val_accuracy=lambda t: t["val_accuracy"].map("{:.3f}".format),
    )[["approach", "learning_rate", "epochs", "val_macro_f1", "sd", "val_accuracy"]]
    write_text(
        md_path,
        "# Sweep: macro-F1 on this pipeline's val split\n\n"
        f"Mean over training seeds {', '.join(map(str, seeds))}; each learning rate trained once "
        f"per seed for {max(epochs)} epoch(s) and scored at every epoch's end. These runs chose "
        "the settings; their numbers are tuning numbers, not held-out results.\n\n"
        "## Chosen (highest mean val macro-F1; ties: fewer epochs, then the lower rate)\n\n"
        + markdown_table(shown)
        + (f"\n\n{note}" if note else "")
        + "\n\n## Val macro-F1 by epoch (the curves behind the choice)\n\n"
        + markdown_table(curves)
        + "\n",
    )
    if chosen_path is not None:
        write_text(chosen_path, format_chosen(chosen_settings(means), seeds))
    return means


def write_choice(runs: Sequence[Mapping], epochs: Sequence[int], chosen_path) -> dict:
    """The chosen settings of the approaches these runs belong to (yaml), chosen as write_sweep
    chooses: one approach's runs give its entry of the sweep's chosen.yaml, which is all its
    tuned cells read. Returns them."""
    points, means = sweep_tables(runs, scored_epochs(runs, epochs))
    chosen = chosen_settings(means)
    write_text(chosen_path, format_chosen(chosen, sorted(points["seed"].unique().tolist())))
    return chosen


def scored_epochs(runs: Sequence[Mapping], epochs: Sequence[int]) -> list[int]:
    """The grid's epoch counts and those of the runs its extension trained longer."""
    return sorted(set(epochs) | {int(run["epochs"]) for run in runs if "epochs" in run})
