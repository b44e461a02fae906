"""The sweep's choice as a file: results/sweep/chosen.yaml, written by the sweep's summary and
read when the tuned study's cells are planned.

Plain Python and PyYAML only: the Snakefile reads it while it builds the jobs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import yaml


class ChosenSettingsError(ValueError):
    """A chosen-settings file that is missing, unreadable, or lacks an approach."""


def format_chosen(chosen: Mapping[str, Mapping], seeds: Sequence[int]) -> str:
    """chosen.yaml's text: {approach: {learning_rate, epochs, val_macro_f1, seeds}}."""
    header = ("# Chosen on val macro-F1 by the sweep (results/sweep/summary.md), mean over seeds "
              f"{', '.join(map(str, seeds))}; the tuned study trains each approach at these.\n")
    return header + yaml.safe_dump({k: dict(v) for k, v in chosen.items()}, sort_keys=True)


def read_chosen(path: str | os.PathLike, approach: str) -> dict:
    """The chosen learning rate and epochs of `approach`."""
    try:
        with open(path, encoding="utf-8") as handle:
            chosen = yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ChosenSettingsError(f"{path}: not a readable chosen-settings file ({error})") from None
    entry = chosen.get(approach) if isinstance(chosen, dict) else None
    if not isinstance(entry, dict) or not {"learning_rate", "epochs"} <= set(entry):
        raise ChosenSettingsError(f"{path}: no learning_rate and epochs for {approach!r}; the sweep "
                                  "chooses them for every approach it ran")
    return {"learning_rate": float(entry["learning_rate"]), "epochs": int(entry["epochs"])}
