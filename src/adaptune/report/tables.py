"""The report's tables: one row per run (system x seed), one per group of seeds (mean, sd and
interval), the paired differences, and the sentences that state what those intervals support."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import pandas as pd

from adaptune.core.systems import System, group_systems
from adaptune.report.inputs import Run
from adaptune.report.plan import FACTORS, KINDS, AnalysisPlan
from adaptune.report.reference_study import REFERENCE_RESULTS, REFERENCE_SCORING, REFERENCE_SPLIT
from adaptune.report.statistics import (
    METRICS,
    Bootstrap,
    Codes,
    calibration,
    detectable_difference,
    difference,
    encode,
    holm,
    label_distribution,
    seed_paired_difference,
    summarize,
)

GRID_FACTORS = ("method", "style", "quantization")


def runs_table(runs: Sequence[Run], labels: Sequence[str], shown: dict[str, str]) -> pd.DataFrame:
    """One row per run, every number unrounded; runs that did not run at the bottom."""
    rows = []
    for run in runs:
        s = run.system
        row = {
            "system": shown[s.name],
            "name": s.name,
            "group": s.group,
            "model": s.model_label,
            "approach": s.approach_label,
            "method": s.method,
            "style": s.style,
            "k": s.k,
            "quantization": s.quantization,
            "seed": s.seed,
            "split_seed": s.split_seed,
            "order": s.order(),
            "status": "ran" if run.ran else f"not run: {run.reason}",
            "split": run.split,
            # What `adaptune predict --adapter` takes, relative to the workflow's directory.
            "adapter": f"{s.train_dir}/adapter" if s.finetuned else None,
        }
        if run.ran:
            m = run.metrics
            row.update(
                {
                    "n": m["n"],
                    "accuracy": m["accuracy"],
                    "accuracy_ci_low": m["accuracy_ci"][0],
                    "accuracy_ci_high": m["accuracy_ci"][1],
                    "macro_f1": m["macro_f1"],
                    "macro_f1_ci_low": m["macro_f1_ci"][0],
                    "macro_f1_ci_high": m["macro_f1_ci"][1],
                    "vocab_argmax_accuracy": m.get("vocab_argmax_accuracy"),
                    "invalid": m.get("invalid"),
                    "examples_per_second": m["examples_per_second"],
                    "eval_peak_memory_mb": (m.get("provenance") or {}).get("peak_memory_mb"),
                    "metrics_file": m["path"],
                }
            )
            row.update({f"f1_{label}": m["per_class"][label]["f1"] for label in labels})
            shares = label_distribution(run.predictions, labels)
            row.update({f"share_{label}": shares[label] for label in labels})
            calibrated = calibration(run.predictions, labels) if s.finetuned else None
            row.update(
                {"ece": calibrated["ece"], "brier": calibrated["brier"]} if calibrated else {}
            )
            row.update(_cost_columns(run))
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["ran"] = table["status"] == "ran"
    table = table.sort_values(["ran", "order"], ascending=[False, True], kind="stable")
    return table.drop(columns=["ran", "order"]).reset_index(drop=True)


def _cost_columns(run: Run) -> dict:
    """Trainable parameters, training minutes and training peak memory: from the training summary
    of a fine-tuned run; zero for prompting (nothing is trained); unknown otherwise."""
    if run.training is not None:
        s = run.training.summary
        trained_at = (s.get("provenance") or {}).get("config") or {}
        return {
            "trainable_parameters": s["trainable_parameters"],
            "total_parameters": s.get("total_parameters"),
            "training_minutes": s["wall_time_s"] / 60,
            "train_peak_memory_mb": s["peak_memory_mb"],
            # The setting it trained at: the sweep's choice in a tuned study.
            "learning_rate": trained_at.get("learning_rate"),
            "epochs": s.get("epochs"),
            # Training ended at training.max_time, before its last step.
            "stopped_by_time_limit": bool(s.get("stopped_by_time_limit", False)),
        }
    if run.system.method in ("fewshot", "openai_chat"):
        return {"trainable_parameters": 0, "training_minutes": 0.0}
    return {}


def group_codes(runs: Sequence[Run], labels: Sequence[str]) -> dict[str, tuple[list[Run], Codes]]:
    """The runs of each group (a system without its seed) that ran, with their coded predictions."""
    ran = [r for r in runs if r.ran]
    by_name = {r.system.name: r for r in ran}
    groups = {}
    for group, systems in group_systems([r.system for r in ran]).items():
        members = [by_name[s.name] for s in systems]
        groups[group] = (
            members,
            encode([r.predictions for r in members], labels, [r.system.name for r in members]),
        )
    return groups


class GroupScores:
    """Every group's coded test predictions and, computed once and shared by the group table and
    every comparison, each group's scores on one set of item resamples per set of items (every
    system scores the whole test split, so normally one; a paired comparison needs the same)."""

    def __init__(self, runs: Sequence[Run], labels: Sequence[str], samples: int, seed: int):
        self.coded = group_codes(runs, labels)
        self.systems = {g: members[0].system for g, (members, _) in self.coded.items()}
        self.samples, self.seed = samples, seed
        self._boots: dict[frozenset, Bootstrap] = {}
        self._scores: dict[str, dict] = {}

    def codes(self, group: str) -> Codes:
        return self.coded[group][1]

    def boot(self, group: str) -> Bootstrap:
        """The item resamples of `group`'s items (shared with every group scored on the same)."""
        codes = self.codes(group)
        key = frozenset(codes.ids)
        if key not in self._boots:
            self._boots[key] = Bootstrap(codes, self.samples, self.seed)
        return self._boots[key]

    def scores(self, group: str, metric: str):
        if group not in self._scores:
            self._scores[group] = self.boot(group).all_scores(self.codes(group))
        return self._scores[group][metric]


def val_means(val_runs: Sequence[Run], metric: str = "macro_f1") -> dict[str, float]:
    """Each group's mean `metric` over its seeds on the val split (from each run's metrics.json)."""
    values: dict[str, list[float]] = {}
    for run in val_runs:
        if run.ran:
            values.setdefault(run.system.group, []).append(float(run.metrics[metric]))
    return {group: sum(v) / len(v) for group, v in values.items()}


def choose_on_val(
    systems: Mapping[str, System], on_val: Mapping[str, float]
) -> dict[str, str | None]:
    """The best fine-tuned group and the best few-shot group, each the highest mean val score
    among the groups that ran on test (ties: the first in the grid's order). Test predictions
    play no part, so what is then reported on test is a test of a choice made beforehand."""

    def best(eligible) -> str | None:
        candidates = sorted(
            (g for g in systems if eligible(systems[g]) and g in on_val),
            key=lambda g: (-on_val[g], systems[g].order()),
        )
        return candidates[0] if candidates else None

    return {
        "finetuned": best(lambda s: s.finetuned),
        "fewshot": best(lambda s: s.method == "fewshot"),
    }


def groups_table(
    runs: Sequence[Run],
    labels: Sequence[str],
    shown_groups: dict[str, str],
    scores: GroupScores,
    on_val: Mapping[str, float] | None = None,
    chosen: Mapping[str, str | None] | None = None,
) -> pd.DataFrame:
    """One row per group: mean and sd over its seeds, the interval of the mean, its mean val
    macro-F1 and whether it is the val-chosen best; ordered by val macro-F1 (the split that
    chooses), test macro-F1 where there is no val."""
    on_val, chosen = on_val or {}, chosen or {}
    marks = {
        group: f"best {kind}, chosen on val"
        for kind, group in (
            ("fine-tuned", chosen.get("finetuned")),
            ("few-shot", chosen.get("fewshot")),
        )
        if group
    }
    table = runs_table(runs, labels, {r.system.name: shown_groups[r.system.group] for r in runs})
    rows = []
    for index, (group, (members, codes)) in enumerate(scores.coded.items()):
        s: System = members[0].system
        stats = summarize(
            codes, scores.boot(group), {m: scores.scores(group, m) for m in METRICS}, stream=index
        )
        mine = table[table["group"] == group]
        rows.append(
            {
                "system": shown_groups[group],
                "group": group,
                "method": s.method,
                "model": s.model_label,
                "style": s.style,
                "quantization": s.quantization,
                "k": s.k,
                "status": "ran",
                "n": len(codes.gold),
                **stats,
                "val_macro_f1_mean": on_val.get(group, float("nan")),
                "chosen": marks.get(group, ""),
                # NaN where no member has the column (no system trained, say), so that
                # every figure finds its columns.
                **{
                    c: pd.to_numeric(mine[c], errors="coerce").mean() if c in mine else float("nan")
                    for c in (
                        "ece",
                        "brier",
                        "trainable_parameters",
                        "training_minutes",
                        "vocab_argmax_accuracy",
                        "learning_rate",
                        "epochs",
                        "stopped_by_time_limit",
                    )
                },
                **{f"share_{label}": mine[f"share_{label}"].mean() for label in labels},
            }
        )
    ran_groups = {row["group"] for row in rows}
    not_run = {}
    for run in runs:
        s = run.system
        if not run.ran and s.group not in ran_groups:
            not_run.setdefault(
                s.group,
                {
                    "system": shown_groups[s.group],
                    "group": s.group,
                    "method": s.method,
                    "model": s.model_label,
                    "style": s.style,
                    "k": s.k,
                    "quantization": s.quantization,
                    "status": f"not run: {run.reason}",
                },
            )
    frame = pd.DataFrame(rows)
    if not frame.empty:
        key = "val_macro_f1_mean" if frame["val_macro_f1_mean"].notna().any() else "macro_f1_mean"
        frame = frame.sort_values(key, ascending=False, kind="stable", na_position="last")
    return pd.concat(
        [f for f in (frame, pd.DataFrame(list(not_run.values()))) if not f.empty], ignore_index=True
    )


PAIRED_COLUMNS = [
    "comparison",
    "a",
    "b",
    "a_group",
    "b_group",
    "seeds_a",
    "seeds_b",
    "seed_paired",
    "metric",
    "difference",
    "ci_low",
    "ci_high",
    "p_value",
    "p_holm",
    "resolved",
    "standard_error",
    "p_equivalence",
    "p_equivalence_holm",
    "equivalent",
    "margin",
    "detectable",
    "verdict",
]
# The three verdicts of a planned comparison (docs/report.md).
BEATS, EQUIVALENT, UNDECIDED = "beats", "equivalent", "undecided"


def planned_pairs(
    scores: GroupScores, plan: AnalysisPlan, chosen: Mapping[str, str | None]
) -> list[tuple[str, str, str]]:
    """(kind, a, b) for every comparison of the plan's family that this study's groups allow."""
    systems = scores.systems
    finetuned = [g for g in scores.coded if systems[g].finetuned]
    pairs = []
    for a, b in itertools.combinations(finetuned, 2):
        differing = [f for f in GRID_FACTORS if getattr(systems[a], f) != getattr(systems[b], f)]
        if len(differing) == 1 and systems[a].model == systems[b].model:
            kind = next(k for k, factor in FACTORS.items() if factor == differing[0])
            if kind in plan.comparisons:
                pairs.append((KINDS[kind], a, b))
    best = chosen.get("finetuned")
    others = {
        "best_vs_tfidf": next((g for g in scores.coded if systems[g].method == "tfidf"), None),
        "best_vs_fewshot": chosen.get("fewshot"),
    }
    for kind, other in others.items():
        if kind in plan.comparisons and best is not None and other is not None:
            pairs.append((KINDS[kind], best, other))
    return pairs


def comparisons(
    scores: GroupScores,
    shown_groups: dict[str, str],
    plan: AnalysisPlan,
    chosen: Mapping[str, str | None],
) -> pd.DataFrame:
    """The plan's family of paired differences on the test split: each with its interval, its
    two-sided bootstrap p-value and the Holm-adjusted p-value over the whole family; a difference
    is resolved only where the adjusted p-value is below the plan's alpha."""
    rows = []
    for index, (kind, a, b) in enumerate(planned_pairs(scores, plan, chosen)):
        orders = seed_orders(scores, a, b) if plan.seeds == "paired" else None
        if orders is None:
            result = difference(
                scores.codes(a),
                scores.codes(b),
                scores.scores(a, plan.metric),
                scores.scores(b, plan.metric),
                scores.boot(a),
                plan.metric,
                stream=index,
                margin=plan.margin,
            )
        else:
            (codes_a, scores_a), (codes_b, scores_b) = (
                (in_runs(scores.codes(g), order), scores.scores(g, plan.metric)[:, order])
                for g, order in zip((a, b), orders)
            )
            result = seed_paired_difference(
                codes_a,
                codes_b,
                scores_a,
                scores_b,
                scores.boot(a),
                plan.metric,
                stream=index,
                margin=plan.margin,
            )
        rows.append(
            {
                "comparison": kind,
                "a": shown_groups[a],
                "b": shown_groups[b],
                "a_group": a,
                "b_group": b,
                "seeds_a": len(orders[0]) if orders else len(scores.coded[a][0]),
                "seeds_b": len(orders[1]) if orders else len(scores.coded[b][0]),
                "seed_paired": orders is not None,
                **result,
            }
        )
    frame = pd.DataFrame(rows, columns=PAIRED_COLUMNS)
    if not frame.empty:
        frame["p_holm"] = holm(frame["p_value"].to_numpy())
        frame["resolved"] = frame["p_holm"] < plan.alpha
        # Equivalence is a family of its own tests, Holm-corrected like the differences.
        frame["p_equivalence_holm"] = holm(frame["p_equivalence"].to_numpy())
        frame["equivalent"] = ~frame["resolved"] & (frame["p_equivalence_holm"] < plan.alpha)
        frame["margin"] = plan.margin
        # The difference each comparison would find 80% of the time at the family's strictest
        # Holm threshold, alpha / m.
        frame["detectable"] = [
            detectable_difference(se, plan.alpha / len(frame)) for se in frame["standard_error"]
        ]
        frame["verdict"] = [verdict(r) for _, r in frame.iterrows()]
    return frame


def seed_orders(scores: GroupScores, a: str, b: str) -> tuple[list[int], list[int]] | None:
    """The run positions of groups a and b on the training seeds both are fine-tuned on, in seed
    order, when they share two or more (each seed gives both the same data order): a group
    trained on fewer seeds (the 8-bit cells of a study cut to 3) is paired on those. Else None."""
    seeds = [
        [
            (r.system.seed, -1 if r.system.split_seed is None else r.system.split_seed)
            for r in scores.coded[g][0]
        ]
        for g in (a, b)
    ]
    if not all(scores.systems[g].finetuned for g in (a, b)) or any(
        len(set(s)) != len(s) for s in seeds
    ):
        return None
    shared = sorted(set(seeds[0]) & set(seeds[1]))
    if len(shared) < 2:
        return None
    return tuple([s.index(key) for key in shared] for s in seeds)


def in_runs(codes: Codes, order: Sequence[int]) -> Codes:
    """`codes` with its runs (rows) in `order`."""
    return Codes(codes.ids, codes.gold, codes.predicted[list(order)], codes.n_labels)


def verdict(row) -> str:
    """A beats B or B beats A (Holm), equivalent within the margin (Holm-corrected TOST), or
    undecided."""
    if row["resolved"]:
        return "A beats B" if row["difference"] > 0 else "B beats A"
    return EQUIVALENT if row["equivalent"] else UNDECIDED


METRIC_NAMES = {"macro_f1": "macro-F1", "accuracy": "accuracy"}


def _interval(difference: float, low: float, high: float, metric: str = "macro_f1") -> str:
    return f"{difference:+.3f} {METRIC_NAMES[metric]}, 95% interval [{low:+.3f}, {high:+.3f}]"


def _p(value: float) -> str:
    return f"{value:.2g}" if value >= 0.001 else "< 0.001"


def answer(
    groups: pd.DataFrame,
    paired: pd.DataFrame,
    plan: AnalysisPlan | None = None,
    chosen: Mapping[str, str | None] | None = None,
    shown_groups: Mapping[str, str] | None = None,
    on_val: Mapping[str, float] | None = None,
) -> list[str]:
    """The first lines of the report: what survives the Holm correction first, then what is
    equivalent within the margin, then what is undecided with its interval's reach, the smallest
    difference each family would detect, how the best systems were chosen and how the intervals
    were built."""
    plan = plan or AnalysisPlan()
    chosen, shown_groups, on_val = chosen or {}, shown_groups or {}, on_val or {}
    ran = groups[groups["status"] == "ran"] if not groups.empty else groups
    if ran.empty:
        return ["No system was evaluated on the test split."]
    resolved, equivalent, undecided = [], [], []
    family = paired.sort_values("p_holm", kind="stable") if not paired.empty else paired
    for _, row in family.iterrows():
        metric = row["metric"]
        interval = _interval(row["difference"], row["ci_low"], row["ci_high"], metric)
        kind = _sentence_case(row["comparison"])
        if row["resolved"]:
            # The sentence names the better system first, so its difference is better - worse.
            if row["difference"] > 0:
                better, worse = row["a"], row["b"]
            else:
                better, worse = row["b"], row["a"]
                interval = _interval(-row["difference"], -row["ci_high"], -row["ci_low"], metric)
            resolved.append(
                f"{kind}: {better} beats {worse} ({interval}; Holm-adjusted p {_p(row['p_holm'])})."
            )
        elif row.get("equivalent", False):
            equivalent.append(
                f"{kind}: {row['a']} and {row['b']} are equivalent within "
                f"±{row['margin']:g} ({interval}; Holm-adjusted TOST p "
                f"{_p(row['p_equivalence_holm'])})."
            )
        elif row.get("standard_error", None) == 0 and "n" in ran:
            # Every replicate zero: the two agree on every tweet, which bounds no difference
            # below the margin on this many (statistics.alike_equivalence_p).
            undecided.append(
                f"{kind}: undecided between {row['a']} and {row['b']} (they agree on every one "
                f"of the {int(ran['n'].iloc[0])} test tweets, too few to exclude a difference "
                f"of ±{row['margin']:g})."
            )
        else:
            reach = max(abs(row["ci_low"]), abs(row["ci_high"]))
            undecided.append(
                f"{kind}: undecided between {row['a']} and {row['b']} ({interval}: "
                f"differences up to {reach:.3f} not excluded)."
            )
    lines = resolved + equivalent + undecided
    if "detectable" in paired and not paired.empty:
        lines.append(detectable_line(paired))
    lines.append(_chosen_line(chosen, shown_groups, on_val, plan))
    seeds = int(pd.to_numeric(ran.get("seeds"), errors="coerce").max()) if "seeds" in ran else 1
    by_seed = int(paired["seed_paired"].sum()) if "seed_paired" in paired else 0
    lines.append(
        f"Intervals resample the {int(ran['n'].iloc[0])} test tweets within each class"
        + (
            f" and add a t-based term for the training seeds (up to {seeds})"
            if seeds > 1
            else " (one training seed, so training noise is not covered)"
        )
        + (
            f"; {by_seed} of the comparisons are between systems trained on the same seeds, "
            "compared seed by seed"
            if by_seed
            else ""
        )
        + f"; a difference counts as resolved only where its Holm-corrected p-value over the "
        f"{len(paired)} planned comparisons is below {plan.alpha:g}."
    )
    return lines


def detectable_line(paired: pd.DataFrame) -> str:
    """Per comparison family, the smallest difference its comparisons would detect (the median
    over the family)."""
    parts = [
        f"{kind} {rows['detectable'].median():.3f}"
        for kind, rows in paired.groupby("comparison", sort=False)
    ]
    return (
        "Smallest difference each family would find 80% of the time at its strictest Holm "
        "threshold (median over its comparisons): " + "; ".join(parts) + "."
    )


def _chosen_line(chosen, shown_groups, on_val, plan) -> str:
    picked = [
        (what, chosen.get(key))
        for what, key in (
            ("best fine-tuned system", "finetuned"),
            ("best few-shot prompting", "fewshot"),
        )
    ]
    named = [
        f"{what}: {shown_groups.get(g, g)} (val macro-F1 {on_val[g]:.3f})"
        for what, g in picked
        if g
    ]
    if not on_val:
        return (
            "No system was scored on the val split, so no best system was chosen and the "
            "comparisons against TF-IDF and few-shot prompting were left out."
        )
    if not named:
        return "No fine-tuned or few-shot system ran, so no best system was chosen."
    return "Chosen on the val split's macro-F1, then tested once on test: " + "; ".join(named) + "."


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]


def same_split_table(
    val_runs: Sequence[Run], shown: dict[str, str], labels: Sequence[str]
) -> pd.DataFrame:
    """This pipeline's runs on the reference study's own validation split (configs/reference.yaml),
    every number unrounded: the label-restricted accuracy, the reference study's whole-vocabulary
    argmax accuracy where the scorer wrote it, macro-F1; then the majority-class floor, counted
    from the split's own gold labels (that split is not balanced)."""
    ran = [r for r in sorted(val_runs, key=lambda r: r.system.order()) if r.ran]
    rows = [
        {
            "system": shown[r.system.name],
            "model": r.system.model_label,
            "n": r.metrics["n"],
            "accuracy": r.metrics["accuracy"],
            "accuracy_ci_low": r.metrics["accuracy_ci"][0],
            "accuracy_ci_high": r.metrics["accuracy_ci"][1],
            "vocab_argmax_accuracy": r.metrics.get("vocab_argmax_accuracy"),
            "macro_f1": r.metrics["macro_f1"],
        }
        for r in ran
    ]
    if ran:
        from sklearn.metrics import f1_score

        gold = ran[0].predictions["gold"]
        counts = gold.value_counts().reindex(labels, fill_value=0)
        majority = counts.idxmax()
        always = [majority] * len(gold)
        rows.append(
            {
                "system": f'always "{majority}" (the majority class; '
                + ", ".join(f"{n} {label}" for label, n in counts.items())
                + ")",
                "model": "—",
                "n": len(gold),
                "accuracy": counts[majority] / len(gold),
                "vocab_argmax_accuracy": None,
                "macro_f1": f1_score(
                    gold, always, labels=list(labels), average="macro", zero_division=0
                ),
            }
        )
    return pd.DataFrame(rows, columns=SAME_SPLIT_COLUMNS)


SAME_SPLIT_COLUMNS = [
    "system",
    "model",
    "n",
    "accuracy",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "vocab_argmax_accuracy",
    "macro_f1",
]


def display_same_split(table: pd.DataFrame) -> pd.DataFrame:
    """The reference-split table as people read it, one column per scoring rule."""
    return pd.DataFrame(
        [
            {
                "System": r["system"],
                "Model": r["model"],
                "Accuracy (argmax over the labels) [95% CI]": fmt(r["accuracy"])
                + (
                    ""
                    if pd.isna(r["accuracy_ci_low"])
                    else f" [{fmt(r['accuracy_ci_low'])}, {fmt(r['accuracy_ci_high'])}]"
                ),
                "Accuracy (argmax over the vocabulary)": fmt(r["vocab_argmax_accuracy"]),
                "Macro-F1": fmt(r["macro_f1"]),
            }
            for _, r in table.iterrows()
        ]
    )


def reference_table() -> pd.DataFrame:
    """One column per scoring rule, so that no column mixes them."""
    return pd.DataFrame(
        [
            {
                "System": r["system"],
                "Model": r["model"],
                "Split": REFERENCE_SPLIT,
                **{
                    column: r["accuracy"] if key == r["scoring"] else "—"
                    for key, column in REFERENCE_SCORING.items()
                },
            }
            for r in REFERENCE_RESULTS
        ]
    )


# ------------------------------------------------------------------ tables for people


def fmt(value, digits: int = 3) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def fmt_count(value) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "—"
    value = int(value)
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return str(value)


def display_groups(groups: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """The group table as people read it: mean ± sd over seeds and the 95% interval."""
    rows = []
    for _, r in groups.iterrows():
        ran = r["status"] == "ran"

        def stat(metric: str) -> str:
            if not ran:
                return "—"
            sd = "" if pd.isna(r[f"{metric}_sd"]) else f" ± {fmt(r[f'{metric}_sd'])}"
            return (
                f"{fmt(r[f'{metric}_mean'])}{sd} "
                f"[{fmt(r[f'{metric}_ci_low'])}, {fmt(r[f'{metric}_ci_high'])}]"
            )

        rows.append(
            {
                "System": r["system"]
                + (f" ({r['chosen']})" if isinstance(r.get("chosen"), str) and r["chosen"] else ""),
                "Model": r["model"],
                "Prompt style": r["style"] if isinstance(r["style"], str) else "—",
                "Seeds": str(int(r["seeds"])) if ran else "—",
                "Val macro-F1 (mean)": fmt(r.get("val_macro_f1_mean")) if ran else "—",
                "Macro-F1 mean ± sd [95% CI]": stat("macro_f1") if ran else r["status"],
                "Accuracy mean ± sd [95% CI]": stat("accuracy"),
                "Predicted " + " / ".join(labels): " / ".join(
                    fmt(r.get(f"share_{label}"), 2) for label in labels
                )
                if ran
                else "—",
                "ECE / Brier": f"{fmt(r.get('ece'))} / {fmt(r.get('brier'))}"
                if ran and not pd.isna(r.get("ece"))
                else "—",
                "Trainable parameters": fmt_count(r.get("trainable_parameters")) if ran else "—",
                "Learning rate, epochs": trained_at(r.get("learning_rate"), r.get("epochs"))
                if ran
                else "—",
                "Training minutes": fmt(r.get("training_minutes"), 1) + time_limit_note(r)
                if ran
                else "—",
            }
        )
    return pd.DataFrame(rows)


def time_limit_note(group) -> str:
    """A mark on the training minutes of a group whose runs (some or all) stopped at max_time."""
    share = group.get("stopped_by_time_limit")
    if share is None or pd.isna(share) or share == 0:
        return ""
    return f" (stopped by max_time: {share:.0%} of runs)"


def trained_at(learning_rate, epochs) -> str:
    """The setting as shown, such as 0.001, 2; a dash for a system that trained nothing."""
    if learning_rate is None or epochs is None or pd.isna(learning_rate) or pd.isna(epochs):
        return "—"
    return f"{learning_rate:g}, {int(epochs)}"


def display_paired(paired: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Comparison": r["comparison"],
                "A": r["a"],
                "B": r["b"],
                "Metric": METRIC_NAMES[r["metric"]],
                "A − B [95% CI]": (
                    f"{r['difference']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"
                ),
                "Paired by": "seed and tweet" if r.get("seed_paired") else "tweet",
                "p": _p(r["p_value"]),
                "p (Holm)": _p(r["p_holm"]),
                "Verdict": (
                    f"equivalent within ±{r['margin']:g}"
                    if r["verdict"] == EQUIVALENT
                    else r["verdict"]
                ),
            }
            for _, r in paired.iterrows()
        ]
    )


def display_runs(table: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """Every run (each seed its own row): accuracy and macro-F1 with their intervals."""
    rows = []
    for _, r in table.iterrows():
        ran = r["status"] == "ran"
        rows.append(
            {
                "System": r["system"],
                "Seed": "—" if pd.isna(r.get("seed")) else str(int(r["seed"])),
                "Accuracy [95% CI]": f"{fmt(r['accuracy'])} [{fmt(r['accuracy_ci_low'])}, "
                f"{fmt(r['accuracy_ci_high'])}]"
                if ran
                else "not run",
                "Macro-F1 [95% CI]": f"{fmt(r['macro_f1'])} [{fmt(r['macro_f1_ci_low'])}, "
                f"{fmt(r['macro_f1_ci_high'])}]"
                if ran
                else r["status"].removeprefix("not run: "),
                f"F1 ({labels[0]})": fmt(r.get(f"f1_{labels[0]}")) if ran else "—",
                "Whole-vocabulary argmax accuracy": fmt(r.get("vocab_argmax_accuracy"))
                if ran
                else "—",
                "Examples per second": fmt(r.get("examples_per_second"), 1) if ran else "—",
            }
        )
    frame = pd.DataFrame(rows)
    if not frame.empty and (frame["Whole-vocabulary argmax accuracy"] == "—").all():
        frame = frame.drop(columns="Whole-vocabulary argmax accuracy")
    return frame
