"""The sweep's choice as a file: results/sweep/chosen.yaml, written by the sweep's summary and
read when the tuned study's cells are planned; and where the choice lies in the swept grid.

Plain Python and PyYAML only: the Snakefile reads it while it builds the jobs, and `adaptune
readme` (of the core install, without the report's packages) describes it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import yaml


class ChosenSettingsError(ValueError):
    """A chosen-settings file that is missing, unreadable, or lacks an approach."""


def format_chosen(chosen: Mapping[str, Mapping], seeds: Sequence[int]) -> str:
    """chosen.yaml's text: {approach: {learning_rate, epochs, val_macro_f1, seeds}}."""
    header = (
        "# Chosen on val macro-F1 by the sweep (results/sweep/summary.md), mean over seeds "
        f"{', '.join(map(str, seeds))}; the tuned study trains each approach at these.\n"
    )
    return header + yaml.safe_dump({k: dict(v) for k, v in chosen.items()}, sort_keys=True)


def read_chosen(path: str | os.PathLike, approach: str) -> dict:
    """The chosen learning rate and epochs of `approach`."""
    try:
        with open(path, encoding="utf-8") as handle:
            chosen = yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ChosenSettingsError(
            f"{path}: not a readable chosen-settings file ({error})"
        ) from None
    entry = chosen.get(approach) if isinstance(chosen, dict) else None
    if not isinstance(entry, dict) or not {"learning_rate", "epochs"} <= set(entry):
        raise ChosenSettingsError(
            f"{path}: no learning_rate and epochs for {approach!r}; the sweep "
            "chooses them for every approach it ran"
        )
    return {"learning_rate": float(entry["learning_rate"]), "epochs": int(entry["epochs"])}


def grid_edges(points) -> dict[str, list[str]]:
    """Per approach, the edges of its swept grid that its chosen setting lies on ("the lowest
    learning rate", "the most epochs", ...), from the points table with its `chosen` column (the
    sweep's summary.csv). A choice on an edge may have a better neighbour the sweep never tried."""
    edges = {}
    for approach, rows in points.groupby("approach", sort=True):
        chosen = rows[rows["chosen"].astype(bool)]
        if chosen.empty:
            continue
        rate, epochs = float(chosen["learning_rate"].iloc[0]), int(chosen["epochs"].iloc[0])
        rates, counts = sorted(rows["learning_rate"].unique()), sorted(rows["epochs"].unique())
        found = []
        if len(rates) > 1 and rate == rates[0]:
            found.append("the lowest learning rate")
        if len(rates) > 1 and rate == rates[-1]:
            found.append("the highest learning rate")
        if len(counts) > 1 and epochs == counts[0] and epochs > 1:
            found.append("the fewest epochs")
        if len(counts) > 1 and epochs == counts[-1]:
            found.append("the most epochs")
        edges[approach] = found
    return edges


def edge_note(edges: Mapping[str, Sequence[str]], names: Mapping[str, str] | None = None) -> str:
    """One sentence on the choices that lie on an edge of the grid (each approach shown by its
    name in `names`, else its key); empty when none does."""
    on_edge = {approach: found for approach, found in edges.items() if found}
    if not on_edge:
        return ""
    names = names or {}
    shared = {tuple(found) for found in edges.values()}
    if len(edges) > 1 and len(shared) == 1:
        where = f"every approach's choice lies at {' and '.join(shared.pop())}"
    else:
        where = "; ".join(
            f"{names.get(approach, approach)} at {' and '.join(found)}"
            for approach, found in on_edge.items()
        )
    return (
        f"On an edge of the swept grid: {where}. The sweep did not try past it, so a better "
        "setting may lie beyond; widen the grid there to bracket the optimum."
    )
