# The report: every system's metrics and predictions and every training run gathered into tables
# and figures (results/report/), and the items of `snakemake --report report.html`. Rule and
# script agree on files by name: the script checks the output names against the package's list.
# (No `def` here: snakemake --lint wants functions in common.smk, so the lists are values.)

# A figure of the report: the PNG is the report item; its SVG twin is a plain output.
# One label only: the HTML report turns a second label with two values into a toggle.
report_figure = lambda stem, title, category: report(
    f"results/report/figures/{stem}.png",
    caption=f"../report/{stem}.rst",
    category=category,
    labels={"result": title},
)


rule report:
    input:
        evaluations=all_eval_files(),
        summaries=training_summaries(),
        curves=[path.replace("summary.json", "curves.csv") for path in training_summaries()],
        splits=expand("results/splits/{split}.csv", split=SPLITS),
        # The val curves behind the settings the study's cells trained at (a tuned study).
        sweep=[SWEEP_SUMMARY] if config["sweep"]["tune_study"] else [],
    output:
        summary_csv=report(
            "results/report/summary.csv",
            caption="../report/summary_csv.rst",
            category="Comparison",
            labels={"result": "Every run, test split (CSV, every number)"},
        ),
        summary_md="results/report/summary.md",
        summary_html=report(
            "results/report/summary.html",
            caption="../report/summary.rst",
            category="Comparison",
            labels={"result": "The answer, test split"},
        ),
        groups_csv="results/report/groups.csv",
        paired_csv=report(
            "results/report/paired_differences.csv",
            caption="../report/paired_differences.rst",
            category="Comparison",
            labels={"result": "Paired differences between systems (CSV)"},
        ),
        run_json="results/report/run.json",
        # This pipeline's numbers on the reference study's val split (rows only under configs/reference.yaml).
        reference_csv="results/report/reference_split.csv",
        val_csv="results/report/summary_val.csv",
        val_md="results/report/summary_val.md",
        val_html=report(
            "results/report/summary_val.html",
            caption="../report/summary_val.rst",
            category="Evaluation",
            labels={"result": "All systems, validation split (used for choosing)"},
        ),
        forest=report_figure(
            "comparisons", "The planned comparisons and their verdicts", "Comparison"
        ),
        forest_svg="results/report/figures/comparisons.svg",
        macro_f1=report_figure("macro_f1", "Macro-F1 and accuracy by system", "Comparison"),
        macro_f1_svg="results/report/figures/macro_f1.svg",
        seeds=report_figure("seeds", "Every seed's result", "Comparison"),
        seeds_svg="results/report/figures/seeds.svg",
        confusion=report_figure("confusion_matrices", "Confusion matrices", "Evaluation"),
        confusion_svg="results/report/figures/confusion_matrices.svg",
        label_distribution=report_figure(
            "label_distribution", "Predicted labels per system", "Evaluation"
        ),
        label_distribution_svg="results/report/figures/label_distribution.svg",
        calibration=report_figure(
            "calibration", "Calibration of the fine-tuned models", "Evaluation"
        ),
        calibration_svg="results/report/figures/calibration.svg",
        curves=report_figure("training_curves", "Training curves", "Training"),
        curves_svg="results/report/figures/training_curves.svg",
        cost=report_figure("quality_vs_cost", "Quality against cost", "Comparison"),
        cost_svg="results/report/figures/quality_vs_cost.svg",
        balance=report_figure("class_balance", "Tweets per class in each split", "Data"),
        balance_svg="results/report/figures/class_balance.svg",
        sweep_curves=report_figure(
            "sweep_curves", "Sweep on val: macro-F1 by learning rate and epochs", "Tuning"
        ),
        sweep_curves_svg="results/report/figures/sweep_curves.svg",
    log:
        "logs/report.log",
    benchmark:
        "benchmarks/report.tsv"
    conda:
        "../../envs/report.yaml"
    params:
        labels=config["labels"],
        systems=[system.block() for system in STUDY],
        splits=config["evaluation"]["splits"],
        statistics={key: config["evaluation"][key] for key in ("analysis", "seed")},
        model=model_entry(),
        reference_split=config["splits"]["reference"]["enabled"],
    script:
        "../scripts/report.py"
