# The report: every system's metrics and every training run gathered into tables and figures
# (results/report/), and the items of `snakemake --report report.html`.
# (No `def` here: snakemake --lint wants functions in common.smk, so the lists are values.)

# metrics.json of the val split of every system, when evaluation.splits lists val.
REPORT_VAL_METRICS = (
    [f"{d}/val/metrics.json" for d in all_eval_dirs()]
    if "val" in config["evaluation"]["splits"]
    else []
)
REPORT_CURVES = [path.replace("summary.json", "curves.csv") for path in training_summaries()]

# Systems the config describes but this run does not produce, each with the key that turned it
# off, so that the table lists them as not run instead of leaving them out.
_OPENAI_OFF = "openai.enabled is false"
REPORT_NOT_RUN = (
    [
        {"name": f"{MODEL}/{approach}/{style}", "method": approach, "model": MODEL,
         "style": style, "reason": f"training.approaches.{approach}.enabled is false"}
        for approach in APPROACHES
        if not config["training"]["approaches"][approach]["enabled"]
        for style in config["training"]["styles"]
    ]
    + (
        [{"name": "baseline/tfidf", "method": "tfidf", "model": "baseline",
          "reason": "evaluation.baseline.enabled is false"}]
        if not config["evaluation"]["baseline"]["enabled"]
        else []
    )
    + (
        [
            {"name": f"openai/ft-{m}", "method": "openai_finetune", "model": "openai",
             "openai_model": m, "style": config["openai"]["style"], "reason": _OPENAI_OFF}
            for m in config["openai"]["finetune_models"]
        ]
        + [
            {"name": f"openai/{m}-k{k}", "method": "openai_chat", "model": "openai",
             "openai_model": m, "k": k, "style": config["openai"]["style"], "reason": _OPENAI_OFF}
            for m in config["openai"]["chat_models"]
            for k in config["openai"]["chat_k"]
        ]
        if not config["openai"]["enabled"]
        else []
    )
)

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
        metrics=all_metrics(),
        val_metrics=REPORT_VAL_METRICS,
        summaries=training_summaries(),
        curves=REPORT_CURVES,
        splits=expand("results/splits/{split}.csv", split=SPLITS),
    output:
        summary_csv=report(
            "results/report/summary.csv",
            caption="../report/summary_csv.rst",
            category="Comparison",
            labels={"result": "All systems, test split (CSV, every number)"},
        ),
        summary_md="results/report/summary.md",
        summary_html=report(
            "results/report/summary.html",
            caption="../report/summary.rst",
            category="Comparison",
            labels={"result": "All systems, test split"},
        ),
        val_csv="results/report/summary_val.csv",
        val_md="results/report/summary_val.md",
        val_html=report(
            "results/report/summary_val.html",
            caption="../report/summary_val.rst",
            category="Evaluation",
            labels={"result": "All systems, validation split"},
        ),
        macro_f1=report_figure("macro_f1", "Macro-F1 and accuracy by system", "Comparison"),
        macro_f1_svg="results/report/figures/macro_f1.svg",
        confusion=report_figure("confusion_matrices", "Confusion matrices", "Evaluation"),
        confusion_svg="results/report/figures/confusion_matrices.svg",
        curves=report_figure("training_curves", "Training curves", "Training"),
        curves_svg="results/report/figures/training_curves.svg",
        cost=report_figure("quality_vs_cost", "Quality against cost", "Comparison"),
        cost_svg="results/report/figures/quality_vs_cost.svg",
        balance=report_figure("class_balance", "Tweets per class in each split", "Data"),
        balance_svg="results/report/figures/class_balance.svg",
    params:
        labels=config["labels"],
        not_run=REPORT_NOT_RUN,
    log:
        "logs/report.log",
    benchmark:
        "benchmarks/report.tsv"
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/report.py"
