"""The report's files, named once: the report rule declares its outputs from this list (and the
items of `snakemake --report`), the report script writes them by these names, and publishing
copies some of them. Plain Python: the Snakefile imports it."""

from __future__ import annotations

from dataclasses import dataclass

DIRECTORY = "results/report"


@dataclass(frozen=True)
class Output:
    """One file of the report, relative to its folder. With a `title` it is an item of the HTML
    report (`snakemake --report`) under `category`, captioned by workflow/report/<caption>.rst."""

    path: str
    title: str | None = None
    category: str | None = None
    caption: str | None = None


TABLES = {
    "summary_csv": Output(
        "summary.csv", "Every run, test split (CSV, every number)", "Comparison", "summary_csv"
    ),
    "summary_md": Output("summary.md"),
    "summary_html": Output("summary.html", "The answer, test split", "Comparison", "summary"),
    "groups_csv": Output("groups.csv"),
    "paired_csv": Output(
        "paired_differences.csv",
        "Paired differences between systems (CSV)",
        "Comparison",
        "paired_differences",
    ),
    "val_csv": Output("summary_val.csv"),
    "val_md": Output("summary_val.md"),
    "val_html": Output(
        "summary_val.html",
        "All systems, validation split (used for choosing)",
        "Evaluation",
        "summary_val",
    ),
    "run_json": Output("run.json"),
    # This pipeline's numbers on the reference study's val split (rows only under
    # configs/reference.yaml).
    "reference_csv": Output("reference_split.csv"),
}
# name -> (file stem, title, category). A figure's PNG is the report item; its SVG twin is a
# plain output. One label only: the HTML report turns a second label into a toggle.
FIGURES = {
    "forest": ("comparisons", "The planned comparisons and their verdicts", "Comparison"),
    "macro_f1": ("macro_f1", "Macro-F1 and accuracy by system", "Comparison"),
    "seeds": ("seeds", "Every seed's result", "Comparison"),
    "confusion": ("confusion_matrices", "Confusion matrices", "Evaluation"),
    "label_distribution": ("label_distribution", "Predicted labels per system", "Evaluation"),
    "calibration": ("calibration", "Calibration of the fine-tuned models", "Evaluation"),
    "curves": ("training_curves", "Training curves", "Training"),
    "cost": ("quality_vs_cost", "Quality against cost", "Comparison"),
    "balance": ("class_balance", "Tweets per class in each split", "Data"),
    "sweep_curves": (
        "sweep_curves",
        "Sweep on val: macro-F1 by learning rate and epochs",
        "Tuning",
    ),
}
OUTPUTS: dict[str, Output] = {
    **TABLES,
    **{
        name: Output(f"figures/{stem}.png", title, category, stem)
        for name, (stem, title, category) in FIGURES.items()
    },
    **{f"{name}_svg": Output(f"figures/{stem}.svg") for name, (stem, _, _) in FIGURES.items()},
}
# The report's files a publication holds (adaptune publish), and the one it copies where it
# has rows.
# The forest plot is the one figure published: summary.md opens with it.
PUBLISHED = ("summary_md", "summary_csv", "groups_csv", "paired_csv", "run_json", "forest")
REFERENCE_SPLIT = "reference_csv"


def relative_paths() -> dict[str, str]:
    """name -> path relative to the report's folder, of every output."""
    return {name: output.path for name, output in OUTPUTS.items()}
