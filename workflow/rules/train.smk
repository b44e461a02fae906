# Fine-tuning: one rule per approach (train_layernorm, train_lora_attention, train_lora_all), so
# each can be rerun or given resources alone; all share one script and adaptune.training.train.
# Style, quantization and seed are wildcards: every cell of the grid has its own outputs.

TRAINING_EXCLUDED_KEYS = {"styles", "quantizations", "seeds", "approaches"}


def train_params(approach):
    """The params of train_{approach}: the training keys shared by all approaches, this
    approach's section alone, the cell's seed and quantization, the model entry, the labels and
    the style's template; so changing one approach's learning rate, or one style's template,
    reruns those cells only."""

    def params(wildcards):
        training = config["training"]
        section = {k: v for k, v in training["approaches"][approach].items() if k != "enabled"}
        shared = {k: v for k, v in training.items() if k not in TRAINING_EXCLUDED_KEYS}
        return {
            "approach": approach,
            **shared,
            **section,
            "seed": int(wildcards.seed),
            "quantization": wildcards.quantization,
            "model": model_entry(wildcards.model),
            "labels": list(config["labels"]),
            "style": wildcards.style,
            "template": prompt_template(wildcards),
        }

    return params


# The cell's path of each approach's rule: the system name with the approach filled in.
TRAIN_CELL = {
    approach: FINETUNED_NAME.format(
        model="{model}", approach=approach, style="{style}", quantization="{quantization}", seed="{seed}"
    )
    for approach in APPROACHES
}


for _approach in APPROACHES:

    rule:
        name:
            f"train_{_approach}"
        input:
            train="results/prompts/{style}/train.jsonl",
            val="results/prompts/{style}/val.jsonl",
            model="resources/models/{model}",
        output:
            adapter=directory(f"results/train/{TRAIN_CELL[_approach]}/adapter"),
            curves=f"results/train/{TRAIN_CELL[_approach]}/curves.csv",
            summary=f"results/train/{TRAIN_CELL[_approach]}/summary.json",
        params:
            settings=train_params(_approach),
        log:
            f"logs/train/{TRAIN_CELL[_approach]}.log",
        benchmark:
            f"benchmarks/train/{TRAIN_CELL[_approach]}.tsv"
        threads: 2
        resources:
            mem_mb=6000,
        conda:
            "../../envs/train.yaml"
        script:
            "../scripts/train.py"
