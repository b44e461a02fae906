"""The numbers the report derives from predictions: mean and spread over training seeds, paired
bootstrap differences between systems with their p-values, the Holm correction over the
analysis plan's family of comparisons, calibration and the predicted-label distribution.

How an interval is built (docs/report.md says the same at more length):

- Test items: a percentile bootstrap over the test items, resampled within each gold class (the
  split is balanced by design, so each resample is too). One set of item resamples is shared by
  every system scored on the same items, so a difference is paired item by item.
- Training seeds: on each item resample, the mean over a system's n seeds plus a t-based seed
  term, s / sqrt(n) * T with T drawn from Student's t on n - 1 degrees of freedom; s is the
  seeds' standard deviation net of the item noise the item resampling already carries
  (seed_sd). Resampling n seeds with replacement instead would shrink their spread by
  sqrt((n-1)/n) and, with three seeds, has ten distinct resamples; the t term gives the t
  interval when seeds dominate and vanishes when items do. One seed: no seed term, and the
  report says training noise is not covered.
- p-value: two-sided, from the same replicates, 2 * min(share <= 0, share >= 0), each share
  counted as (count + 1) / (replicates + 1) so that it is never 0; the 95% interval excludes zero
  about when p < 0.05.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from adaptune.core.names import LOGLIK, score_column
from adaptune.evaluate.metrics import macro_f1_from_hits, macro_f1_rows, stratified_rows

METRICS = ("accuracy", "macro_f1")
# Item resamples are scored in chunks of this many cells, so memory stays bounded.
_CHUNK_CELLS = 2_000_000


@dataclass(frozen=True)
class Codes:
    """Gold and predicted labels of several runs on the same items, as integer codes (a
    prediction that names no label is the code len(labels), always wrong), with the items' ids."""

    ids: np.ndarray  # (n,) item ids, in the order of the columns below
    gold: np.ndarray  # (n,)
    predicted: np.ndarray  # (runs, n)
    n_labels: int


def encode(
    predictions: Sequence[pd.DataFrame], labels: Sequence[str], names: Sequence[str]
) -> Codes:
    """Align runs on their item ids; they must have scored the same items with the same gold."""
    index = {label: i for i, label in enumerate(labels)}
    first = predictions[0].set_index("id")
    ids = first.index
    gold = first["gold"].map(index).to_numpy(np.int64)
    rows = []
    for frame, name in zip(predictions, names):
        frame = frame.set_index("id")
        if set(frame.index) != set(ids):
            raise ValueError(
                f"{name} scored other items than {names[0]} "
                f"({len(set(frame.index) ^ set(ids))} ids differ); "
                "a paired test needs the same items"
            )
        frame = frame.loc[ids]
        if not (frame["gold"].map(index).to_numpy(np.int64) == gold).all():
            raise ValueError(f"{name} and {names[0]} disagree on the gold label of some item")
        rows.append(frame["predicted"].map(lambda p: index.get(p, len(labels))).to_numpy(np.int64))
    return Codes(np.asarray(ids, dtype=object), gold, np.stack(rows), len(labels))


def align(reference: Codes, other: Codes, what: str = "the second system") -> Codes:
    """`other` reordered item by item onto `reference`'s ids: pairing by id, never by row order.
    Both must hold the same items with the same gold labels."""
    if len(other.ids) != len(reference.ids) or set(other.ids) != set(reference.ids):
        differ = len(set(other.ids) ^ set(reference.ids))
        raise ValueError(
            f"{what} scored other items ({differ} ids differ); a paired test needs the same items"
        )
    position = pd.Index(other.ids).get_indexer(reference.ids)
    aligned = Codes(
        reference.ids, other.gold[position], other.predicted[:, position], other.n_labels
    )
    if not np.array_equal(aligned.ids, reference.ids):
        raise AssertionError("items not aligned on their ids")
    wrong = np.flatnonzero(aligned.gold != reference.gold)
    if len(wrong):
        raise ValueError(f"{what} disagrees on the gold label of item {reference.ids[wrong[0]]!r}")
    return aligned


class Bootstrap:
    """One set of class-stratified item resamples (`samples` x n), shared by every system scored
    on the items of `reference`, and the t draws of the seed terms."""

    def __init__(self, reference: Codes, samples: int, seed: int):
        if samples < 1:
            raise ValueError(f"bootstrap samples must be at least 1, got {samples}")
        self.reference = reference
        self.samples = samples
        self.seed = seed
        rows = stratified_rows(np.random.default_rng(seed), reference.gold, samples)
        self.rows = rows.astype(np.int32) if len(reference.gold) < 2**31 else rows

    def scores(self, codes: Codes, metric: str) -> np.ndarray:
        """(samples, runs): the metric of every run of `codes` on every item resample."""
        return self.all_scores(codes, (metric,))[metric]

    def all_scores(self, codes: Codes, metrics: Sequence[str] = METRICS) -> dict[str, np.ndarray]:
        """scores() of several metrics at once, each resample indexed once for all of them."""
        codes = align(self.reference, codes)
        out = {metric: np.empty((self.samples, codes.predicted.shape[0])) for metric in metrics}
        chunk = max(1, _CHUNK_CELLS // len(codes.gold))
        for start in range(0, self.samples, chunk):
            rows = self.rows[start : start + chunk]
            gold = codes.gold[rows]
            for run, predicted in enumerate(codes.predicted):
                p = predicted[rows]
                correct = gold == p
                for metric in metrics:
                    out[metric][start : start + chunk, run] = (
                        correct.mean(axis=1)
                        if metric == "accuracy"
                        else macro_f1_from_hits(gold, p, correct, codes.n_labels)
                    )
        return out

    def draws(self, stream: int) -> np.random.Generator:
        """A generator for the seed terms, reproducible per `stream` and independent of the
        items'."""
        return np.random.default_rng([self.seed, 1, stream])


def point(codes: Codes, metric: str) -> np.ndarray:
    """(runs,): the metric of every run on the items as they are."""
    gold = codes.gold[None, :]
    if metric == "accuracy":
        return (gold == codes.predicted).mean(axis=1)
    return macro_f1_rows(
        np.repeat(gold, len(codes.predicted), axis=0), codes.predicted, codes.n_labels
    )


def seed_sd(values: np.ndarray, scores: np.ndarray) -> float:
    """The training-noise standard deviation between seeds, net of item noise: the seeds' sample
    variance on the items as they are (`values`, one per seed), less the part the item bootstrap
    already carries (each seed's deviation from the seed mean varies from one item resample to
    the next; `scores`: samples x seeds), floored at zero. Without that subtraction a seed that
    is right on other items than its siblings would be counted twice."""
    runs = len(values)
    if runs == 1:
        return 0.0
    between = float(values.var(ddof=1))
    deviations = scores - scores.mean(axis=1, keepdims=True)
    within = float(deviations.var(axis=0, ddof=1).mean()) * runs / (runs - 1)
    return float(np.sqrt(max(0.0, between - within)))


def with_seed_term(values: np.ndarray, scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(samples,): per item resample, the mean over the seeds plus the t-based seed term
    seed_sd / sqrt(n) * T(n - 1); the mean alone for one seed."""
    mean = scores.mean(axis=1)
    runs = scores.shape[1]
    if runs == 1:
        return mean
    return mean + seed_sd(values, scores) / np.sqrt(runs) * rng.standard_t(runs - 1, size=len(mean))


def two_sided_p(replicates: np.ndarray) -> float:
    """Two-sided bootstrap p-value of 'no difference': twice the smaller share of replicates on
    either side of zero (ties count on both sides), each share (count + 1) / (replicates + 1)."""
    total = len(replicates) + 1
    below = (np.count_nonzero(replicates <= 0) + 1) / total
    above = (np.count_nonzero(replicates >= 0) + 1) / total
    return float(min(1.0, 2 * min(below, above)))


def equivalence_p(replicates: np.ndarray, margin: float) -> float:
    """Bootstrap p-value of the two one-sided tests (TOST) of 'the difference lies outside
    ±margin': the larger of the shares of replicates at or below -margin and at or above
    +margin, each (count + 1) / (replicates + 1). Below alpha, the difference is inside the
    margin; it is the (1 - 2 alpha) interval lying inside ±margin."""
    total = len(replicates) + 1
    below = (np.count_nonzero(replicates <= -margin) + 1) / total
    above = (np.count_nonzero(replicates >= margin) + 1) / total
    return float(min(1.0, max(below, above)))


def disagreeing_items(a: Codes, b: Codes, metric: str) -> int:
    """The items on which the runs of A and B do not all agree: on the label (macro-F1), or on
    whether it is right (accuracy, which two different wrong labels leave alike)."""
    runs = np.concatenate([a.predicted, b.predicted])
    if metric == "accuracy":
        runs = runs == a.gold
    return int((runs != runs[:1]).any(axis=0).sum())


def alike_equivalence_p(codes: Codes, metric: str, margin: float) -> float:
    """TOST p-value for two systems whose runs all agree on each of the n items of `codes`
    (disagreeing_items), where the replicates are all zero and the bootstrap has no spread to judge.
    A population difference of `margin` or more needs the systems to disagree on a share rho of
    items of at least `margin` for accuracy, and `margin` * K * pi / 4 for macro-F1 (K labels, pi
    the smallest gold class's share: each class's F1, 2t / (pi_c + q_c), moves by at most
    (2 |dt_c| + |dq_c|) / pi_c, and disagreeing items move the t's by rho and the q's by 2 rho in
    all). n items without one disagreement then have probability at most (1 - rho) ** n: 12
    balanced tweets cannot show equivalence within 0.03, 3,000 can."""
    n = len(codes.gold)
    if metric == "accuracy":
        rho = margin
    else:
        per_class = np.bincount(codes.gold, minlength=codes.n_labels)[: codes.n_labels]
        rho = margin * codes.n_labels * (per_class.min() / n) / 4
    return float(min(1.0, (1 - min(rho, 1.0)) ** n))


def detectable_difference(standard_error: float, alpha: float, power: float = 0.8) -> float:
    """The smallest true difference a two-sided test at level `alpha` finds with probability
    `power`, for an estimate with this standard error (normal approximation)."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf
    return float((z(1 - alpha / 2) + z(power)) * standard_error)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979): sort ascending, multiply the i-th smallest
    (0-based) by (m - i), carry the running maximum forward, cap at 1. A hypothesis is rejected at
    level alpha exactly when its adjusted p-value is below alpha; the family-wise error rate is at
    most alpha under any dependence between the tests."""
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or ((p < 0) | (p > 1) | np.isnan(p)).any():
        raise ValueError(f"p-values must be a list of numbers in [0, 1], got {list(p_values)}")
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def summarize(
    codes: Codes, boot: Bootstrap, scores: dict[str, np.ndarray], stream: int = 0
) -> dict:
    """Mean and sample sd over the runs (seeds) of accuracy and macro-F1, and the 95% interval of
    the mean (items resampled within class, t-based seed term); `scores` by metric from boot."""
    result = {"seeds": int(codes.predicted.shape[0])}
    for metric in METRICS:
        values = point(codes, metric)
        replicates = with_seed_term(values, scores[metric], boot.draws(stream))
        result[f"{metric}_mean"] = float(values.mean())
        result[f"{metric}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
        result[f"{metric}_ci_low"], result[f"{metric}_ci_high"] = map(
            float, np.percentile(replicates, [2.5, 97.5])
        )
        result[f"{metric}_per_seed"] = [float(v) for v in values]
    return result


def group_statistics(codes: Codes, samples: int, seed: int) -> dict:
    """summarize() with a bootstrap of its own."""
    boot = Bootstrap(codes, samples, seed)
    return summarize(codes, boot, boot.all_scores(codes))


def difference(
    a: Codes,
    b: Codes,
    a_scores: np.ndarray,
    b_scores: np.ndarray,
    boot: Bootstrap,
    metric: str,
    stream: int = 0,
    margin: float | None = None,
) -> dict:
    """Mean metric of A's seeds minus B's on the same items, its 95% percentile interval and
    two-sided p-value, from replicates that share the item resample of both sides and add each
    side's own seed term."""
    b = align(a, b)
    rng = boot.draws(stream)
    replicates = with_seed_term(point(a, metric), a_scores, rng) - with_seed_term(
        point(b, metric), b_scores, rng
    )
    observed = float(point(a, metric).mean() - point(b, metric).mean())
    return _summary(a, b, replicates, observed, metric, margin)


def _summary(
    a: Codes, b: Codes, replicates: np.ndarray, observed: float, metric: str, margin: float | None
) -> dict:
    """The difference, its 95% interval, two-sided p-value, the replicates' standard deviation
    (the standard error behind the detectable difference) and, given a margin, the p-value of
    equivalence within it: the TOST on the replicates, or, where A and B agree on every item,
    the bound on the disagreement those items leave unseen (alike_equivalence_p)."""
    low, high = map(float, np.percentile(replicates, [2.5, 97.5]))
    p_equivalence = None
    if margin:
        p_equivalence = (
            alike_equivalence_p(a, metric, margin)
            if disagreeing_items(a, b, metric) == 0
            else equivalence_p(replicates, margin)
        )
    return {
        "metric": metric,
        "difference": observed,
        "ci_low": low,
        "ci_high": high,
        "p_value": two_sided_p(replicates),
        "standard_error": float(replicates.std(ddof=1)),
        "p_equivalence": p_equivalence,
    }


def seed_paired_difference(
    a: Codes,
    b: Codes,
    a_scores: np.ndarray,
    b_scores: np.ndarray,
    boot: Bootstrap,
    metric: str,
    stream: int = 0,
    margin: float | None = None,
) -> dict:
    """difference() for A and B trained on the same seeds, their runs in the same seed order: a
    seed gives both the same data order, so its effect is shared and cancels in A's run minus B's
    run of that seed. Replicates: per item resample, the mean of the per-seed differences plus a
    t-based seed term from their spread net of item noise (with_seed_term on the differences)."""
    b = align(a, b)
    if a.predicted.shape[0] != b.predicted.shape[0]:
        raise ValueError(
            f"seed-paired comparison of {a.predicted.shape[0]} and {b.predicted.shape[0]} "
            "runs; expected one run per seed on each side"
        )
    per_seed = point(a, metric) - point(b, metric)
    replicates = with_seed_term(per_seed, a_scores - b_scores, boot.draws(stream))
    return _summary(a, b, replicates, float(per_seed.mean()), metric, margin)


def paired_difference(
    a: Codes, b: Codes, samples: int, seed: int, metric: str = "macro_f1"
) -> dict:
    """difference() with a bootstrap of its own; B is paired with A by item id."""
    boot = Bootstrap(a, samples, seed)
    return difference(a, b, boot.scores(a, metric), boot.scores(b, metric), boot, metric)


def softmax_probabilities(predictions: pd.DataFrame, labels: Sequence[str]) -> np.ndarray | None:
    """Label probabilities from the loglik_<label> columns (a language model's label
    log-likelihoods), or None when a column is missing or not finite."""
    from adaptune.lm.probabilities import label_probabilities

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
            points.append(
                {
                    "confidence": float(confidence[members].mean()),
                    "accuracy": float(correct[members].mean()),
                    "count": int(members.sum()),
                }
            )
    one_hot = np.eye(len(labels))[gold]
    brier = float(((probabilities - one_hot) ** 2).sum(axis=1).mean())
    return {"ece": float(ece), "brier": brier, "points": points}


def label_distribution(predictions: pd.DataFrame, labels: Sequence[str]) -> dict[str, float]:
    """Share of the items given each label, and of answers that named none ('no label')."""
    counts = predictions["predicted"].value_counts()
    shares = {label: float(counts.get(label, 0)) / len(predictions) for label in labels}
    shares["no label"] = 1.0 - sum(shares.values())
    return shares
