# The report: every system's metrics and predictions and every training run gathered into tables
# and figures (results/report/), and the items of `snakemake --report report.html`. Its outputs
# are named once, in adaptune.report.outputs: the rule declares them from there (report_outputs
# in common.smk) and the script writes them by those names.


rule report:
    input:
        evaluations=all_eval_files(),
        summaries=training_summaries(),
        curves=[path.replace("summary.json", "curves.csv") for path in training_summaries()],
        splits=expand("results/splits/{split}.csv", split=SPLITS),
        # The val curves behind the settings the study's cells trained at (a tuned study).
        sweep=[SWEEP_SUMMARY] if config["sweep"]["tune_study"] else [],
    output:
        # Named once, in adaptune.report.outputs.
        **report_outputs(),
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
