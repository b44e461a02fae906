"""Classification metrics with stratified bootstrap confidence intervals, and the writer of one
system's predictions.csv + metrics.json (the format every evaluating rule shares; see the
contract).

Light on purpose: numpy, pandas and scikit-learn only, so the OpenAI and report steps can import
it without torch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from adaptune.core.io import atomic_path, write_json

REQUIRED_PREDICTION_COLUMNS = ("id", "text", "gold", "predicted")
# Bootstrap resamples are drawn in chunks so memory stays bounded for large n.
_CHUNK_CELLS = 4_000_000


def classification_metrics(
    gold: Sequence[str],
    predicted: Sequence[str | None],
    labels: Sequence[str],
    bootstrap_samples: int = 1000,
    seed: int = 42,
) -> dict:
    """Accuracy, macro-F1 (with 95% percentile-bootstrap intervals), per-class precision/recall/F1,
    the confusion matrix (rows gold, columns predicted, in `labels` order) and the invalid count.

    A prediction that is None or not one of `labels` is an invalid answer: it counts as wrong for
    accuracy and as a miss (false negative) of its gold class for F1, and it appears in no column
    of the confusion matrix.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = list(labels)
    gold_idx, pred_idx = _encode(gold, predicted, labels)
    if bootstrap_samples < 1:
        raise ValueError(f"bootstrap_samples must be at least 1, got {bootstrap_samples}")
    n = len(gold_idx)
    invalid_code = len(labels)
    # sklearn on the codes: the invalid code is left out of `labels=`, so it only ever misses.
    codes = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        gold_idx, pred_idx, labels=codes, average=None, zero_division=0
    )
    accuracy = float(accuracy_score(gold_idx, pred_idx))
    macro_f1 = float(np.mean(f1))
    accuracy_ci, macro_f1_ci = _bootstrap_intervals(
        gold_idx, pred_idx, len(labels), bootstrap_samples, seed
    )
    return {
        "n": n,
        "labels": labels,
        "accuracy": accuracy,
        "accuracy_ci": accuracy_ci,
        "macro_f1": macro_f1,
        "macro_f1_ci": macro_f1_ci,
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": confusion_matrix(gold_idx, pred_idx, labels=codes).tolist(),
        "invalid": int(np.sum(pred_idx == invalid_code)),
    }


def system_info(
    model: str,
    method: str,
    name: str,
    style: str | None = None,
    k: int | None = None,
    quantization: str | None = None,
    seed: int | None = None,
) -> dict:
    """The "system" block of metrics.json (adaptune.core.systems.System.block() gives the same
    keys)."""
    return {
        "model": model,
        "method": method,
        "name": name,
        "style": style,
        "k": k,
        "quantization": quantization,
        "seed": seed,
    }


def evaluation_record(
    system: dict,
    split: str,
    gold: Sequence[str],
    predicted: Sequence[str | None],
    labels: Sequence[str],
    examples_per_second: float,
    provenance: dict,
    bootstrap_samples: int = 1000,
    seed: int = 42,
) -> dict:
    """A whole metrics.json record, keys in the contract's order."""
    return {
        "system": system,
        "split": split,
        **classification_metrics(gold, predicted, labels, bootstrap_samples, seed),
        "examples_per_second": float(examples_per_second),
        "provenance": provenance,
    }


def write_evaluation(directory: str | os.PathLike, predictions, metrics: dict) -> None:
    """Write `directory`/predictions.csv and `directory`/metrics.json, each atomically; metrics.json
    last, so a directory with metrics.json always has its predictions."""
    missing = [c for c in REQUIRED_PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise ValueError(
            f"predictions for {directory}: missing column(s) {missing}; "
            f"expected {list(REQUIRED_PREDICTION_COLUMNS)} "
            "then loglik_<label> or prob_<label> columns"
        )
    if "n" in metrics and metrics["n"] != len(predictions):
        raise ValueError(
            f"predictions for {directory}: {len(predictions)} rows but metrics say n={metrics['n']}"
        )
    directory = Path(directory)
    with atomic_path(directory / "predictions.csv") as tmp:
        predictions.to_csv(tmp, index=False, lineterminator="\n")
    write_json(directory / "metrics.json", metrics)


def _encode(gold, predicted, labels) -> tuple[np.ndarray, np.ndarray]:
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ValueError(f"labels must be at least two distinct names, got {labels}")
    gold, predicted = list(gold), list(predicted)
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    if not gold:
        raise ValueError("no examples to score (empty gold list)")
    index = {label: i for i, label in enumerate(labels)}
    gold_idx = np.empty(len(gold), dtype=np.int64)
    for row, label in enumerate(gold):
        if label not in index:
            raise ValueError(f"gold label {label!r} in row {row} is not one of {labels}")
        gold_idx[row] = index[label]
    # Anything that is not a label (None, "", "Hate.") is the invalid code len(labels).
    pred_idx = np.array(
        [index.get(p, len(labels)) if p is not None else len(labels) for p in predicted],
        dtype=np.int64,
    )
    return gold_idx, pred_idx


def stratified_rows(rng: np.random.Generator, gold_idx: np.ndarray, count: int) -> np.ndarray:
    """`count` bootstrap resamples of the item positions (count x n), each drawn with replacement
    within every gold class, so that each resample keeps the split's class counts: on a balanced
    split a constant predictor then scores exactly 1 / n_classes in every resample."""
    rows = np.empty((count, len(gold_idx)), dtype=np.int64)
    for code in np.unique(gold_idx):
        members = np.flatnonzero(gold_idx == code)
        rows[:, members] = members[rng.integers(0, len(members), size=(count, len(members)))]
    return rows


def macro_f1_rows(g: np.ndarray, p: np.ndarray, n_labels: int) -> np.ndarray:
    """Macro-F1 of each row of (gold, predicted) code arrays."""
    return macro_f1_from_hits(g, p, g == p, n_labels)


def _bootstrap_intervals(gold_idx, pred_idx, n_labels, samples, seed):
    """95% percentile intervals of accuracy and macro-F1 over `samples` class-stratified
    resamples of the items (seeded)."""
    rng = np.random.default_rng(seed)
    n = len(gold_idx)
    accuracies, macro_f1s = [], []
    chunk = max(1, _CHUNK_CELLS // n)
    for start in range(0, samples, chunk):
        rows = stratified_rows(rng, gold_idx, min(chunk, samples - start))
        g, p = gold_idx[rows], pred_idx[rows]
        correct = g == p
        accuracies.append(correct.mean(axis=1))
        macro_f1s.append(macro_f1_from_hits(g, p, correct, n_labels))
    accuracies, macro_f1s = np.concatenate(accuracies), np.concatenate(macro_f1s)
    return _percentiles(accuracies), _percentiles(macro_f1s)


def macro_f1_from_hits(g, p, correct, n_labels) -> np.ndarray:
    """Macro-F1 of each row of resampled (gold, predicted) codes; F1 = 2TP / (gold + predicted),
    0 where a class is neither present nor predicted (sklearn's zero_division=0)."""
    scores = np.zeros(g.shape[0])
    for c in range(n_labels):
        tp = np.sum(correct & (g == c), axis=1)
        denominator = np.sum(g == c, axis=1) + np.sum(p == c, axis=1)
        scores += np.divide(2 * tp, denominator, out=np.zeros(g.shape[0]), where=denominator > 0)
    return scores / n_labels


def _percentiles(values: np.ndarray) -> list[float]:
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [float(lo), float(hi)]
