# Fine-tuning: one rule per approach (train_layernorm, train_lora_attention, train_lora_all), so
# each can be rerun or given resources alone; all share one script and adaptune.training.train.

TRAINING_COMMON_KEYS = [
    "seed", "precision", "optimizer", "max_length", "gradient_checkpointing", "val_checks_per_epoch",
]


def train_params(approach):
    """The params of train_{approach}: the training keys shared by all approaches, this
    approach's section alone, the quantization, the model entry, the labels and the style's
    template; so changing one approach's learning rate reruns that approach only."""

    def params(wildcards):
        training = config["training"]
        section = {k: v for k, v in training["approaches"][approach].items() if k != "enabled"}
        return {
            "approach": approach,
            **{k: training[k] for k in TRAINING_COMMON_KEYS},
            **section,
            "quantization": config["quantization"],
            "model": model_entry(wildcards.model),
            "labels": list(config["labels"]),
            "style": wildcards.style,
            "template": prompt_template(wildcards),
        }

    return params


for _approach in APPROACHES:

    rule:
        name:
            f"train_{_approach}"
        input:
            train="results/prompts/{style}/train.jsonl",
            val="results/prompts/{style}/val.jsonl",
            model="resources/models/{model}",
        output:
            adapter=directory(f"results/train/{{model}}/{_approach}/{{style}}/adapter"),
            curves=f"results/train/{{model}}/{_approach}/{{style}}/curves.csv",
            summary=f"results/train/{{model}}/{_approach}/{{style}}/summary.json",
        params:
            settings=train_params(_approach),
        log:
            f"logs/train_{_approach}/{{model}}/{{style}}.log",
        benchmark:
            f"benchmarks/train_{_approach}/{{model}}/{{style}}.tsv"
        threads: 2
        resources:
            mem_mb=6000,
            gpu=int(config["gpu"]),
        conda:
            "../../envs/train.yaml"
        script:
            "../scripts/train.py"
