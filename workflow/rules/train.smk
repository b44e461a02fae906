# Fine-tuning: one rule over the grid's wildcards, the approach among them (its values are the
# registry's, the Snakefile's wildcard constraint); all approaches share one script and
# adaptune.train.run.train. Style, quantization and seed are wildcards too: every cell of the
# grid has its own outputs. A cluster profile gives every approach's jobs one set of resources.


rule train:
    input:
        unpack(precision_decision),
        unpack(tuned_input),
        train=train_prompts,
        val="results/prompts/{style}/val.jsonl",
        model=shared("resources/models/{model}"),
    output:
        adapter=directory(f"results/train/{FINETUNED_NAME}/adapter"),
        curves=f"results/train/{FINETUNED_NAME}/curves.csv",
        val_scores=f"results/train/{FINETUNED_NAME}/val_scores.csv",
        summary=f"results/train/{FINETUNED_NAME}/summary.json",
    log:
        f"logs/train/{FINETUNED_NAME}.log",
    benchmark:
        f"benchmarks/train/{FINETUNED_NAME}.tsv"
    # The longest jobs first (a finished cell's evaluation aside): few-shot fills the other core
    # and the tail.
    priority: TRAINING_PRIORITY
    conda:
        "../../envs/train.yaml"
    threads: MODEL_THREADS
    resources:
        mem_mb=lambda wildcards: train_mem_mb(wildcards.model, wildcards.quantization),
        gpu=int(config["gpu"]) * config["training"]["devices"],
    params:
        settings=train_params,
    script:
        "../scripts/train.py"


# The sweep (configs/sweep.yaml, configs/tuned.yaml): one run per approach x learning rate x
# seed on the sweep's style and quantization, trained for the largest epoch count and scored on
# val at every epoch's end; summarised by val macro-F1. Only the sweep's choice
# (results/sweep/chosen.yaml) reaches the study, and only when sweep.tune_study is set: choosing
# on val never touches test.
SWEEP = config["sweep"]
SWEEP_RUN = "results/sweep/{model}/{approach}/lr{rate}/seed{seed}"


rule sweep:
    input:
        unpack(precision_decision),
        train=f"results/prompts/{SWEEP['style']}/train.jsonl",
        val=f"results/prompts/{SWEEP['style']}/val.jsonl",
        model=shared("resources/models/{model}"),
    output:
        adapter=directory(f"{SWEEP_RUN}/adapter"),
        curves=f"{SWEEP_RUN}/curves.csv",
        val_scores=f"{SWEEP_RUN}/val_scores.csv",
        summary=f"{SWEEP_RUN}/summary.json",
    log:
        "logs/sweep/{model}/{approach}/lr{rate}/seed{seed}.log",
    benchmark:
        "benchmarks/sweep/{model}/{approach}/lr{rate}/seed{seed}.tsv"
    wildcard_constraints:
        rate="[0-9.e+-]+",
    priority: TRAINING_PRIORITY
    conda:
        "../../envs/train.yaml"
    threads: MODEL_THREADS
    resources:
        mem_mb=lambda wildcards: train_mem_mb(wildcards.model, SWEEP["quantization"]),
        gpu=int(config["gpu"]) * config["training"]["devices"],
    params:
        settings=sweep_params,
    script:
        "../scripts/train.py"


# Where an approach's choice lies on an edge of its grid, this job trains one step past it and
# chooses again (sweep.extend_steps times at most), itself: no Snakemake checkpoint, so a
# finished sweep plans nothing (adaptune.sweep.extension).
rule sweep_extend:
    input:
        unpack(precision_decision),
        lambda wildcards: [run["curves"] for run in approach_sweep_runs(wildcards)],
        train=f"results/prompts/{SWEEP['style']}/train.jsonl",
        val=f"results/prompts/{SWEEP['style']}/val.jsonl",
        model=shared(f"resources/models/{MODEL}"),
    output:
        f"results/sweep/{MODEL}/{{approach}}/extension.json",
    log:
        f"logs/sweep/{MODEL}/{{approach}}/extension.log",
    benchmark:
        f"benchmarks/sweep/{MODEL}/{{approach}}/extension.tsv"
    conda:
        "../../envs/train.yaml"
    threads: MODEL_THREADS
    resources:
        mem_mb=train_mem_mb(MODEL, SWEEP["quantization"]),
        gpu=int(config["gpu"]) * config["training"]["devices"],
    params:
        template=sweep_template,
        runs=approach_sweep_runs,
    script:
        "../scripts/sweep_extend.py"


# One approach's choice, which its tuned cells take as an input and read when they run: each
# approach's cells start once its own sweep and extension are done, not every approach's.
rule sweep_choice:
    input:
        lambda wildcards: [run["curves"] for run in approach_sweep_runs(wildcards)],
        extension=f"results/sweep/{MODEL}/{{approach}}/extension.json",
    output:
        SWEEP_APPROACH_CHOSEN.format(model=MODEL, approach="{approach}"),
    log:
        f"logs/sweep/{MODEL}/{{approach}}/chosen.log",
    benchmark:
        f"benchmarks/sweep/{MODEL}/{{approach}}/chosen.tsv"
    conda:
        "../../envs/report.yaml"
    params:
        runs=approach_sweep_runs,
        epochs=SWEEP["epochs"],
    script:
        "../scripts/sweep_choice.py"


# The sweep's tables and every approach's choice, for the report.
rule sweep_summary:
    input:
        [run["curves"] for run in sweep_runs()],
        extensions=sweep_extensions(),
    output:
        chosen=SWEEP_CHOSEN,
        csv=report(
            SWEEP_SUMMARY,
            caption="../report/sweep.rst",
            category="Tuning",
            labels={"result": "Sweep on the validation split and the chosen settings"},
        ),
        md=SWEEP_SUMMARY_MD,
    log:
        "logs/sweep_summary.log",
    benchmark:
        "benchmarks/sweep_summary.tsv"
    conda:
        "../../envs/report.yaml"
    params:
        runs=sweep_runs(),
        epochs=SWEEP["epochs"],
    script:
        "../scripts/sweep_summary.py"
