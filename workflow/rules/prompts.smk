# Prompt/completion pairs, one file per prompt style and split.


rule format_prompts:
    input:
        "results/splits/{split}.csv",
    output:
        "results/prompts/{style}/{split}.jsonl",
    log:
        "logs/format_prompts/{style}/{split}.log",
    benchmark:
        "benchmarks/format_prompts/{style}/{split}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        template=prompt_template,
        labels=config["labels"],
    script:
        "../scripts/format_prompts.py"
