"""A published study's planned comparisons redone with the seeds as blocks and three verdicts,
from its published files alone (no retraining, no per-tweet predictions).

A publication made before per-tweet predictions were published holds, per run, the test
metric and its own item-bootstrap interval (summary.csv), and per comparison the independent-
seeds result (paired_differences.csv). From those:

- a comparison between fine-tuned systems trained on the same seeds takes its seed term from
  the spread of the per-seed differences (t on n - 1 degrees of freedom), as the report's
  seed-paired form does. The spread is gross: it still holds the item noise that the report's
  own form nets out, so it errs wide;
- its item term cannot be computed without the tweets' predictions; it is bounded by treating
  the two systems' item noise as uncorrelated, each system's as perfectly correlated across its
  seeds (so its standard error is the mean of its runs'). Systems scored on the same tweets are
  positively correlated, so this too errs wide;
- a comparison without shared seeds (TF-IDF, few-shot) keeps its published interval and
  p-value; its equivalence test reads a normal approximation of that interval.

Holm's correction then runs over the family as the report's does, for the differences and,
separately, for the equivalence tests. The result is written as paired_by_seed.csv beside the
publication, with reanalysis.md saying the same as this docstring.
"""

from __future__ import annotations

import os
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd

from adaptune.core.io import write_csv, write_text
from adaptune.report.plan import AnalysisPlan
from adaptune.report.statistics import detectable_difference, equivalence_p, holm, two_sided_p
from adaptune.report.tables import EQUIVALENT, UNDECIDED

REANALYSIS_CSV = "paired_by_seed.csv"
REANALYSIS_MD = "reanalysis.md"
Z95 = NormalDist().inv_cdf(0.975)


def run_standard_errors(runs: pd.DataFrame, metric: str) -> pd.Series:
    """Each run's item-bootstrap standard error, from its published 95% interval."""
    return (runs[f"{metric}_ci_high"] - runs[f"{metric}_ci_low"]) / (2 * Z95)


def seed_paired_replicates(
    a: pd.DataFrame, b: pd.DataFrame, metric: str, samples: int, rng: np.random.Generator
) -> tuple[float, np.ndarray]:
    """(mean per-seed difference, replicates) of A and B, two systems' runs (one row per seed,
    same seeds): the mean difference plus a normal item term (uncorrelated sides, each side's
    runs perfectly correlated) plus a t-based seed term from the per-seed differences' sd."""
    a, b = a.set_index("seed").sort_index(), b.set_index("seed").sort_index()
    if list(a.index) != list(b.index) or len(a) < 2:
        raise ValueError(
            f"seed-paired reanalysis needs the same two or more seeds on both sides, "
            f"got {list(a.index)} and {list(b.index)}"
        )
    per_seed = (a[metric] - b[metric]).to_numpy(float)
    item_se = float(
        np.hypot(run_standard_errors(a, metric).mean(), run_standard_errors(b, metric).mean())
    )
    n = len(per_seed)
    seed_term = per_seed.std(ddof=1) / np.sqrt(n) * rng.standard_t(n - 1, size=samples)
    return float(per_seed.mean()), per_seed.mean() + rng.normal(
        0, item_se, size=samples
    ) + seed_term


def reanalyse(
    folder: str | os.PathLike, plan: AnalysisPlan = AnalysisPlan(), seed: int = 42
) -> pd.DataFrame:
    """The publication's planned comparisons, seed-paired where the seeds are shared, each with
    its verdict; written to `folder`/paired_by_seed.csv and explained in reanalysis.md."""
    folder = Path(folder)
    runs = pd.read_csv(folder / "summary.csv")
    published = pd.read_csv(folder / "paired_differences.csv")
    metric = plan.metric
    rng = np.random.default_rng(seed)
    rows = []
    for _, row in published.iterrows():
        a, b = (runs[runs["group"] == row[g]] for g in ("a_group", "b_group"))
        shared = (
            len(a) > 1
            and len(a) == len(b)
            and sorted(a["seed"]) == sorted(b["seed"])
            and a["approach"].eq("fine-tuning").all()
            and b["approach"].eq("fine-tuning").all()
        )
        if shared:
            difference, replicates = seed_paired_replicates(
                a, b, metric, plan.bootstrap_samples, rng
            )
            low, high = np.percentile(replicates, [2.5, 97.5])
            p_value, se = two_sided_p(replicates), float(replicates.std(ddof=1))
            p_equivalence = equivalence_p(replicates, plan.margin)
        else:
            difference, low, high, p_value = (
                row["difference"],
                row["ci_low"],
                row["ci_high"],
                row["p_value"],
            )
            se = (high - low) / (2 * Z95)
            # An interval without width (the two agreed on every tweet) gives the normal
            # approximation nothing to judge equivalence by (statistics.alike_equivalence_p).
            p_equivalence = 1.0
            if se > 0:
                normal = NormalDist(difference, se)
                p_equivalence = max(normal.cdf(-plan.margin), 1 - normal.cdf(plan.margin))
        rows.append(
            {
                **{
                    k: row[k]
                    for k in ("comparison", "a", "b", "a_group", "b_group", "seeds_a", "seeds_b")
                },
                "seed_paired": shared,
                "metric": metric,
                "difference": float(difference),
                "ci_low": float(low),
                "ci_high": float(high),
                "p_value": float(p_value),
                "standard_error": se,
                "p_equivalence": float(p_equivalence),
            }
        )
    frame = pd.DataFrame(rows)
    frame["p_holm"] = holm(frame["p_value"].to_numpy())
    frame["resolved"] = frame["p_holm"] < plan.alpha
    frame["p_equivalence_holm"] = holm(frame["p_equivalence"].to_numpy())
    frame["equivalent"] = ~frame["resolved"] & (frame["p_equivalence_holm"] < plan.alpha)
    frame["margin"] = plan.margin
    frame["detectable"] = [
        detectable_difference(se, plan.alpha / len(frame)) for se in frame["standard_error"]
    ]
    frame["verdict"] = np.where(
        frame["resolved"],
        np.where(frame["difference"] > 0, "A beats B", "B beats A"),
        np.where(frame["equivalent"], EQUIVALENT, UNDECIDED),
    )
    write_csv(folder / REANALYSIS_CSV, frame)
    write_text(folder / REANALYSIS_MD, _explanation(published, frame, plan))
    return frame


def _explanation(published: pd.DataFrame, frame: pd.DataFrame, plan: AnalysisPlan) -> str:
    doc = (__doc__ or "").split("\n\n", 1)[1].strip()
    paired = frame[frame["seed_paired"]]
    before = published.set_index(["a_group", "b_group"]).loc[
        list(zip(paired["a_group"], paired["b_group"]))
    ]
    widths = lambda f: (f["ci_high"] - f["ci_low"]) / 2  # noqa: E731
    lines = [
        "# The published comparisons, reanalysed with the seeds as blocks",
        "",
        "Written by `adaptune reanalyse` from this folder's summary.csv and paired_differences.csv "
        f"(margin ±{plan.margin:g}, alpha {plan.alpha:g}, {plan.bootstrap_samples:,} draws).",
        "",
        doc,
        "",
        f"Seed-paired comparisons: {len(paired)} of {len(frame)}; their 95% half-widths "
        f"{widths(paired).min():.3f}–{widths(paired).max():.3f}, against "
        f"{widths(before).min():.3f}–{widths(before).max():.3f} with independent seeds.",
        "",
        "| comparison | A | B | A − B [95% CI] | paired by seed | verdict |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for _, r in frame.iterrows():
        verdict = (
            f"equivalent within ±{r['margin']:g}" if r["verdict"] == EQUIVALENT else r["verdict"]
        )
        lines.append(
            f"| {r['comparison']} | {r['a']} | {r['b']} | {r['difference']:+.3f} "
            f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] "
            f"| {'yes' if r['seed_paired'] else 'no'} | {verdict} |"
        )
    return "\n".join(lines) + "\n"
