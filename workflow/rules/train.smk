# Fine-tuning: one rule per approach (train_layernorm, train_lora_attention, train_lora_all), so
# each can be rerun or given resources alone; all share one script and adaptune.train.run.train.
# Style, quantization and seed are wildcards: every cell of the grid has its own outputs.

# The cell's path of each approach's rule: the system name with the approach filled in.
TRAIN_CELL = {
    approach: FINETUNED_NAME.format(
        model="{model}",
        approach=approach,
        style="{style}",
        quantization="{quantization}",
        seed="{seed}",
    )
    for approach in APPROACHES
}


for _approach in APPROACHES:

    rule:
        name:
            f"train_{_approach}"
        input:
            unpack(precision_decision),
            unpack(tuned_input),
            train=train_prompts,
            val="results/prompts/{style}/val.jsonl",
            model=shared("resources/models/{model}"),
        output:
            adapter=directory(f"results/train/{TRAIN_CELL[_approach]}/adapter"),
            curves=f"results/train/{TRAIN_CELL[_approach]}/curves.csv",
            val_scores=f"results/train/{TRAIN_CELL[_approach]}/val_scores.csv",
            summary=f"results/train/{TRAIN_CELL[_approach]}/summary.json",
        log:
            f"logs/train/{TRAIN_CELL[_approach]}.log",
        benchmark:
            f"benchmarks/train/{TRAIN_CELL[_approach]}.tsv"
        # The longest jobs first: evaluations and few-shot fill the other core and the tail.
        priority: TRAINING_PRIORITY
        conda:
            "../../envs/train.yaml"
        threads: MODEL_THREADS
        resources:
            mem_mb=lambda wildcards: train_mem_mb(wildcards.model, wildcards.quantization),
            gpu=int(config["gpu"]) * config["training"]["devices"],
        params:
            settings=train_params(_approach),
        script:
            "../scripts/train.py"


# The sweep (configs/sweep.yaml, configs/tuned.yaml): one run per approach x learning rate x
# seed on the sweep's style and quantization, trained for the largest epoch count and scored on
# val at every epoch's end; summarised by val macro-F1. Only the sweep's choice
# (results/sweep/chosen.yaml) reaches the study, and only when sweep.tune_study is set: choosing
# on val never touches test.
SWEEP = config["sweep"]


for _approach in APPROACHES:

    rule:
        name:
            f"sweep_{_approach}"
        input:
            unpack(precision_decision),
            train=f"results/prompts/{SWEEP['style']}/train.jsonl",
            val=f"results/prompts/{SWEEP['style']}/val.jsonl",
            model=shared("resources/models/{model}"),
        output:
            adapter=directory(
                f"results/sweep/{{model}}/{_approach}/lr{{rate}}/seed{{seed}}/adapter"
            ),
            curves=f"results/sweep/{{model}}/{_approach}/lr{{rate}}/seed{{seed}}/curves.csv",
            val_scores=f"results/sweep/{{model}}/{_approach}/lr{{rate}}/seed{{seed}}/val_scores.csv",
            summary=f"results/sweep/{{model}}/{_approach}/lr{{rate}}/seed{{seed}}/summary.json",
        log:
            f"logs/sweep/{{model}}/{_approach}/lr{{rate}}/seed{{seed}}.log",
        benchmark:
            f"benchmarks/sweep/{{model}}/{_approach}/lr{{rate}}/seed{{seed}}.tsv"
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
            settings=sweep_params(_approach),
        script:
            "../scripts/train.py"


# Where an approach's choice lies on an edge of its grid, this job trains one step past it and
# chooses again (sweep.extend_steps times at most), itself: no Snakemake checkpoint, so a
# finished sweep plans nothing (adaptune.sweep.extension).
for _approach in APPROACHES:

    rule:
        name:
            f"sweep_extend_{_approach}"
        input:
            unpack(precision_decision),
            [run["curves"] for run in sweep_runs() if run["approach"] == _approach],
            train=f"results/prompts/{SWEEP['style']}/train.jsonl",
            val=f"results/prompts/{SWEEP['style']}/val.jsonl",
            model=shared(f"resources/models/{MODEL}"),
        output:
            f"results/sweep/{MODEL}/{_approach}/extension.json",
        log:
            f"logs/sweep/{MODEL}/{_approach}/extension.log",
        benchmark:
            f"benchmarks/sweep/{MODEL}/{_approach}/extension.tsv"
        conda:
            "../../envs/train.yaml"
        threads: MODEL_THREADS
        resources:
            mem_mb=train_mem_mb(MODEL, SWEEP["quantization"]),
            gpu=int(config["gpu"]) * config["training"]["devices"],
        params:
            template=sweep_template(_approach),
            runs=[run for run in sweep_runs() if run["approach"] == _approach],
        script:
            "../scripts/sweep_extend.py"


# The tuned study's cells take chosen.yaml as an input and read it when they run.
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
