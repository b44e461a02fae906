"""The numbers the report derives from predictions: mean and spread over training seeds, paired
bootstrap differences between systems, calibration and the predicted-label distribution.

Every interval is a 95% percentile bootstrap over the test items, resampled within each gold
class (the split is balanced by design, so each resample is too); where a system has several
training seeds the seeds are resampled as well, so the interval covers training noise and
test-sampling noise together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from adaptune.metrics import macro_f1_rows, stratified_rows
from adaptune.names import LOGLIK, score_column

METRICS = ("accuracy", "macro_f1")


@dataclass(frozen=True)
class Codes:
    """Gold and predicted labels of several runs on the same items, as integer codes (a
    prediction that names no label is the code len(labels), always wrong)."""

    gold: np.ndarray        # (n,)
    predicted: np.ndarray   # (runs, n)
    n_labels: int


def encode(predictions: Sequence[pd.DataFrame], labels: Sequence[str], names: Sequence[str]) -> Codes:
    """Align runs on their item ids; they must have scored the same items with the same gold."""
    index = {label: i for i, label in enumerate(labels)}
    first = predictions[0].set_index("id")
    ids = first.index
    gold = first["gold"].map(index).to_numpy(np.int64)
    rows = []
    for frame, name in zip(predictions, names):
        frame = frame.set_index("id")
        if set(frame.index) != set(ids):
            raise ValueError(f"{name} scored other items than {names[0]} "
                             f"({len(set(frame.index) ^ set(ids))} ids differ); a paired test needs the same items")
        frame = frame.loc[ids]
        if not (frame["gold"].map(index).to_numpy(np.int64) == gold).all():
            raise ValueError(f"{name} and {names[0]} disagree on the gold label of some item")
        rows.append(frame["predicted"].map(lambda p: index.get(p, len(labels))).to_numpy(np.int64))
    return Codes(gold, np.stack(rows), len(labels))


def _scores(codes: Codes, rows: np.ndarray | None, metric: str) -> np.ndarray:
    """(replicates, runs) metric of every run on every resample of the items (rows: replicates x n;
    None is the items as they are)."""
    rows = np.arange(len(codes.gold))[None, :] if rows is None else rows
    gold = codes.gold[rows]
    out = np.empty((rows.shape[0], codes.predicted.shape[0]))
    for run, predicted in enumerate(codes.predicted):
        p = predicted[rows]
        out[:, run] = (gold == p).mean(axis=1) if metric == "accuracy" else macro_f1_rows(gold, p, codes.n_labels)
    return out


def _seed_means(rng: np.random.Generator, scores: np.ndarray) -> np.ndarray:
    """Mean over a resample (with replacement) of the runs, per replicate."""
    replicates, runs = scores.shape
    if runs == 1:
        return scores[:, 0]
    pick = rng.integers(0, runs, size=(replicates, runs))
    return np.take_along_axis(scores, pick, axis=1).mean(axis=1)


def group_statistics(codes: Codes, samples: int, seed: int) -> dict:
    """Mean and sample sd over the runs (seeds) of accuracy and macro-F1, and the 95% interval of
    the mean, resampling items (stratified) and seeds."""
    rng = np.random.default_rng(seed)
    rows = stratified_rows(rng, codes.gold, samples)
    result = {"seeds": int(codes.predicted.shape[0])}
    for metric in METRICS:
        point = _scores(codes, None, metric)[0]
        boot = _seed_means(rng, _scores(codes, rows, metric))
        result[f"{metric}_mean"] = float(point.mean())
        result[f"{metric}_sd"] = float(point.std(ddof=1)) if len(point) > 1 else float("nan")
        result[f"{metric}_ci_low"], result[f"{metric}_ci_high"] = map(float, np.percentile(boot, [2.5, 97.5]))
        result[f"{metric}_per_seed"] = [float(v) for v in point]
    return result


def paired_difference(a: Codes, b: Codes, samples: int, seed: int, metric: str = "macro_f1") -> dict:
    """Mean metric of A's seeds minus B's on the same items, with a 95% paired bootstrap interval:
    each replicate resamples the items within each gold class (the same items for A and B) and
    the seeds of each side."""
    if not np.array_equal(a.gold, b.gold):
        raise ValueError("a paired test needs both systems' predictions on the same items, in the same order")
    rng = np.random.default_rng(seed)
    rows = stratified_rows(rng, a.gold, samples)
    difference = _scores(a, None, metric)[0].mean() - _scores(b, None, metric)[0].mean()
    boot = _seed_means(rng, _scores(a, rows, metric)) - _seed_means(rng, _scores(b, rows, metric))
    low, high = map(float, np.percentile(boot, [2.5, 97.5]))
    return {"metric": metric, "difference": float(difference), "ci_low": low, "ci_high": high,
            "excludes_zero": bool(low > 0 or high < 0)}


def softmax_probabilities(predictions: pd.DataFrame, labels: Sequence[str]) -> np.ndarray | None:
    """Label probabilities from the loglik_<label> columns (a language model's label
    log-likelihoods), or None when a column is missing or not finite."""
    from adaptune.scoring import label_probabilities

    columns = [score_column(LOGLIK, label) for label in labels]
    if any(c not in predictions.columns for c in columns):
        return None
    scores = predictions[columns].to_numpy(float)
    if not np.isfinite(scores).all():
        return None
    return label_probabilities(scores)


def calibration(predictions: pd.DataFrame, labels: Sequence[str], bins: int = 10) -> dict | None:
    """Expected calibration error (confidence of the top label against its accuracy, `bins`
    equal-width bins), multi-class Brier score, and the reliability points; None without scores."""
    probabilities = softmax_probabilities(predictions, labels)
    if probabilities is None:
        return None
    gold = predictions["gold"].map({label: i for i, label in enumerate(labels)}).to_numpy(int)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == gold
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    ece, points = 0.0, []
    for b in range(bins):
        members = which == b
        if members.any():
            gap = abs(correct[members].mean() - confidence[members].mean())
            ece += members.mean() * gap
            points.append({"confidence": float(confidence[members].mean()),
                           "accuracy": float(correct[members].mean()), "count": int(members.sum())})
    one_hot = np.eye(len(labels))[gold]
    brier = float(((probabilities - one_hot) ** 2).sum(axis=1).mean())
    return {"ece": float(ece), "brier": brier, "points": points}


def label_distribution(predictions: pd.DataFrame, labels: Sequence[str]) -> dict[str, float]:
    """Share of the items given each label, and of answers that named none ('no label')."""
    counts = predictions["predicted"].value_counts()
    shares = {label: float(counts.get(label, 0)) / len(predictions) for label in labels}
    shares["no label"] = 1.0 - sum(shares.values())
    return shares
