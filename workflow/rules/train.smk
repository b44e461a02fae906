# Fine-tuning: one rule per approach (train_layernorm, train_lora_attention, train_lora_all), so
# each can be rerun or given resources alone; all share one script and adaptune.training.train.
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
            train="results/prompts/{style}/train.jsonl",
            val="results/prompts/{style}/val.jsonl",
            model="resources/models/{model}",
        output:
            adapter=directory(f"results/train/{TRAIN_CELL[_approach]}/adapter"),
            curves=f"results/train/{TRAIN_CELL[_approach]}/curves.csv",
            val_scores=f"results/train/{TRAIN_CELL[_approach]}/val_scores.csv",
            summary=f"results/train/{TRAIN_CELL[_approach]}/summary.json",
        log:
            f"logs/train/{TRAIN_CELL[_approach]}.log",
        benchmark:
            f"benchmarks/train/{TRAIN_CELL[_approach]}.tsv"
        conda:
            "../../envs/train.yaml"
        threads: 2
        resources:
            mem_mb=6000,
            gpu=int(config["gpu"]) * config["training"].get("devices", 1),
        params:
            settings=train_params(_approach),
        script:
            "../scripts/train.py"


# The sweep (configs/sweep.yaml): the same training, one run per approach x learning rate x
# epochs on the sweep's style, quantization and seed, judged by its val accuracy; nothing in the
# study reads these runs, so choosing on val never touches test.
SWEEP = config["sweep"]


for _approach in APPROACHES:

    rule:
        name:
            f"sweep_{_approach}"
        input:
            unpack(precision_decision),
            train=f"results/prompts/{SWEEP['style']}/train.jsonl",
            val=f"results/prompts/{SWEEP['style']}/val.jsonl",
            model="resources/models/{model}",
        output:
            adapter=directory(
                f"results/sweep/{{model}}/{_approach}/lr{{rate}}/epochs{{epochs}}/adapter"
            ),
            curves=f"results/sweep/{{model}}/{_approach}/lr{{rate}}/epochs{{epochs}}/curves.csv",
            val_scores=f"results/sweep/{{model}}/{_approach}/lr{{rate}}/epochs{{epochs}}/val_scores.csv",
            summary=f"results/sweep/{{model}}/{_approach}/lr{{rate}}/epochs{{epochs}}/summary.json",
        log:
            f"logs/sweep/{{model}}/{_approach}/lr{{rate}}/epochs{{epochs}}.log",
        benchmark:
            f"benchmarks/sweep/{{model}}/{_approach}/lr{{rate}}/epochs{{epochs}}.tsv"
        wildcard_constraints:
            rate="[0-9.e+-]+",
            epochs="[0-9]+",
        conda:
            "../../envs/train.yaml"
        threads: 2
        resources:
            mem_mb=6000,
            gpu=int(config["gpu"]) * config["training"].get("devices", 1),
        params:
            settings=sweep_params(_approach),
        script:
            "../scripts/train.py"


rule sweep_summary:
    input:
        [point["summary"] for point in sweep_points()],
    output:
        csv="results/sweep/summary.csv",
        md="results/sweep/summary.md",
    log:
        "logs/sweep_summary.log",
    benchmark:
        "benchmarks/sweep_summary.tsv"
    conda:
        "../../envs/report.yaml"
    params:
        points=sweep_points(),
    script:
        "../scripts/sweep_summary.py"
