# The base model in Hugging Face format under resources/models/{model}/ (see adaptune.models).


rule prepare_model:
    output:
        directory("resources/models/{model}"),
    params:
        # Only this model's entry: editing another model's entry reruns nothing here.
        entry=lambda wildcards: model_entry(wildcards.model),
    log:
        "logs/prepare_model/{model}.log",
    benchmark:
        "benchmarks/prepare_model/{model}.tsv"
    threads: 2
    resources:
        mem_mb=4000,
    conda:
        "../../envs/train.yaml"
    script:
        "../scripts/prepare_model.py"
