# Prompt/completion pairs, one file per prompt style and split.


def prompt_template(wildcards):
    templates = config["prompts"]["templates"]
    if wildcards.style not in templates:
        raise WorkflowError(
            f"unknown prompt style {wildcards.style!r}; expected one of {sorted(templates)} "
            f"(the keys of prompts.templates in config.yaml)"
        )
    return templates[wildcards.style]


rule format_prompts:
    input:
        "results/splits/{split}.csv",
    output:
        "results/prompts/{style}/{split}.jsonl",
    params:
        template=prompt_template,
        labels=config["labels"],
    log:
        "logs/format_prompts/{style}/{split}.log",
    benchmark:
        "benchmarks/format_prompts/{style}/{split}.tsv"
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/format_prompts.py"
