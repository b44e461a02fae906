"""A sweep that brackets its optimum: where an approach's choice lies on an edge of the swept
grid, train one step past that edge and choose again, up to `limit` steps, inside the job that
decides (so a finished study plans no job and no person widens the grid by hand).

A learning-rate edge is passed by the grid's own ratio (the lowest rate divided by it, the
highest times it), for every sweep seed; the most-epochs edge by one more epoch, at the chosen
rate, for every seed (a run of one more epoch: under wsd its shorter runs are branched off it
too). The fewest-epochs edge at one epoch is no edge: no run is shorter; nor is a grid of one
rate or one epoch count, which chose not to sweep it.

A sweep cut to one seed confirms its top settings on further seeds (sweep.confirm_seeds): once
the grid is extended, the `top` best settings are trained again on each of those seeds, and the
choice is made among them alone, on their mean over every seed (adaptune.sweep.scores chooses
among an approach's points with the most seeds).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def run_folder(
    root: str | os.PathLike, approach: str, rate: float, seed: int, epochs: int | None = None
) -> Path:
    """Where a sweep run's outputs go: the grid's layout (lr<rate>/seed<seed>), a run of more
    epochs than the grid's under epochs<e>/."""
    folder = Path(root) / approach / f"lr{rate:g}" / f"seed{seed}"
    return folder if epochs is None else folder.parent / f"epochs{epochs}" / folder.name


def grid_step(rates: Sequence[float]) -> float:
    """The grid's ratio between neighbouring rates (geometric mean over the grid); 2 for one."""
    rates = sorted(rates)
    if len(rates) < 2:
        return 2.0
    return math.exp(math.log(rates[-1] / rates[0]) / (len(rates) - 1))


def next_runs(points, approach: str, seeds: Sequence[int]) -> list[dict]:
    """The runs that pass the edge the approach's choice lies on, or [] when it is interior:
    dicts of learning_rate, seed and epochs (the run's length). `points` is the sweep's
    per-seed table with its `chosen` column (adaptune.report.sweep)."""
    rows = points[points["approach"] == approach]
    chosen = rows[rows["chosen"].astype(bool)]
    if chosen.empty:
        return []
    rate, epochs = float(chosen["learning_rate"].iloc[0]), int(chosen["epochs"].iloc[0])
    rates = sorted(float(r) for r in rows["learning_rate"].unique())
    counts = sorted(int(e) for e in rows["epochs"].unique())
    step = grid_step(rates)
    new = []  # a grid of one rate, or of one epoch count, swept nothing there: no edge
    if len(rates) > 1 and rate == rates[0]:
        new.append({"learning_rate": float(f"{rate / step:.3g}"), "epochs": counts[-1]})
    elif len(rates) > 1 and rate == rates[-1]:
        new.append({"learning_rate": float(f"{rate * step:.3g}"), "epochs": counts[-1]})
    if len(counts) > 1 and epochs == counts[-1]:
        new.append({"learning_rate": rate, "epochs": counts[-1] + 1})
    return [{**run, "seed": seed} for run in new for seed in seeds]


def confirmation_runs(means, approach: str, seeds: Sequence[int], top: int) -> list[dict]:
    """Runs that score `approach`'s `top` best settings again on each of `seeds`: one run per
    rate and seed, as long as the longest of its settings (a shorter one is branched off it),
    scoring only those settings (`scored`)."""
    rows = means[means["approach"] == approach].sort_values(
        ["val_macro_f1", "epochs", "learning_rate"], ascending=[False, True, True], kind="stable"
    )
    best = rows.head(top)
    runs = []
    for rate, settings in best.groupby("learning_rate", sort=True):
        scored = sorted(int(e) for e in settings["epochs"])
        runs += [
            {
                "learning_rate": float(rate),
                "epochs": scored[-1],
                "seed": int(seed),
                "scored": scored,
            }
            for seed in seeds
        ]
    return runs


def _with_choice(tables: Callable, runs, counts):
    points, means = tables(runs, counts)
    return points.merge(
        means[["approach", "learning_rate", "epochs", "chosen"]],
        on=["approach", "learning_rate", "epochs"],
    ), means


def extend(
    approach: str,
    grid_runs: Sequence[Mapping],
    epochs: Sequence[int],
    seeds: Sequence[int],
    limit: int,
    train_run: Callable[[dict], Path],
    tables: Callable,
    confirm_seeds: Sequence[int] = (),
    confirm_top: int = 2,
) -> dict:
    """Extend `approach`'s grid until its choice is interior or `limit` steps are taken, then
    confirm its `confirm_top` best settings on `confirm_seeds` (none: no confirmation).
    `train_run(run)` trains one run (learning_rate, seed, epochs) and returns its curves.csv;
    `tables(runs, epochs)` is adaptune.sweep.scores.sweep_tables. Returns the extension record:
    the added runs (as sweep runs: approach, learning_rate, seed, curves, epochs) and why."""
    runs, counts, steps = [dict(r) for r in grid_runs], sorted(epochs), []

    def add(run):
        curves = train_run(run)
        runs.append(
            {
                "approach": approach,
                "curves": str(curves),
                **{k: run[k] for k in ("learning_rate", "seed", "epochs", "scored") if k in run},
            }
        )

    for _ in range(limit):
        points, _ = _with_choice(tables, runs, counts)
        added = next_runs(points, approach, seeds)
        if not added:
            break
        steps.append(sorted({(r["learning_rate"], r["epochs"]) for r in added}))
        for run in added:
            add(run)
        counts = sorted(set(counts) | {r["epochs"] for r in added})
    confirmed = []
    if confirm_seeds:
        _, means = _with_choice(tables, runs, counts)
        for run in confirmation_runs(means, approach, confirm_seeds, confirm_top):
            confirmed += [
                {"learning_rate": run["learning_rate"], "epochs": e}
                for e in run["scored"]
                if {"learning_rate": run["learning_rate"], "epochs": e} not in confirmed
            ]
            add(run)
    points, means = _with_choice(tables, runs, counts)
    interior = not next_runs(points, approach, seeds)
    record = {
        "approach": approach,
        "runs": runs[len(grid_runs) :],
        "steps": [[{"learning_rate": r, "epochs": e} for r, e in step] for step in steps],
        "confirmed": {"seeds": [int(s) for s in confirm_seeds], "settings": confirmed},
        "interior": interior,
    }
    record["reason"] = (
        "the choice lies inside the grid"
        if interior
        else f"the choice still lies on an edge after {limit} extension step(s)"
    )
    log.info("%s: %d run(s) added; %s", approach, len(record["runs"]), record["reason"])
    return record


def extension_runs(paths: Sequence[str | os.PathLike]) -> list[dict]:
    """The runs the extension records in `paths` added (sweep runs, with their epochs)."""
    runs = []
    for path in paths:
        try:
            record = json.loads(Path(path).read_text())
            runs += [dict(run) for run in record["runs"]]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"{path}: not a readable sweep extension record ({error}); "
                "delete it and rerun its sweep_extend rule"
            ) from None
    return runs
