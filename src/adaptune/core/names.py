"""The names the study is made of, in one place: approaches, quantizations, splits, and where
each split's evaluation lies. The schema's enums list the same names (tests/test_names.py holds
them to these). Plain Python: the Snakefile imports it on every invocation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from adaptune.approaches import names

# The ways of fine-tuning (one training rule each), from the registry of approaches.
APPROACHES = names()
# Precisions of the frozen base weights: bitsandbytes int8, NF4, or unquantized.
QUANTIZATIONS = ("8bit", "4bit", "none")
# The splits sample_splits writes; evaluation scores test and val.
SPLITS = ("train", "val", "test")
# The headline split: its evaluation lies at the top of a system's directory.
HEADLINE_SPLIT = "test"
# A sweep run's branched shorter runs and their val scores (adaptune.train.schedule).
BRANCHES_FILE = "branches.csv"


def split_dir(directory: str | os.PathLike, split: str) -> Path:
    """Where a system's evaluation of `split` lies: test at the top of its directory, other
    splits in a folder of their name below it."""
    return Path(directory) if split == HEADLINE_SPLIT else Path(directory) / split


def headline_last(splits: Iterable[str]) -> list[str]:
    """`splits` in the order an evaluation writes them: the headline split last, so that the
    metrics.json at the top of a system's folder marks its whole evaluation finished."""
    return sorted(splits, key=lambda split: split == HEADLINE_SPLIT)


# The per-label score columns of predictions.csv say what they hold:
LOGLIK = "loglik"  # a language model's log-likelihood of the label's completion (natural log)
PROB = "prob"  # a probability of the label (TF-IDF; OpenAI: its top-5 token probability mass)


def score_column(kind: str, label: str) -> str:
    """The column of `label`'s score of `kind` (LOGLIK or PROB): loglik_hate, prob_hate."""
    if kind not in (LOGLIK, PROB):
        raise ValueError(f"score kind {kind!r}: expected {LOGLIK!r} or {PROB!r}")
    return f"{kind}_{label}"
