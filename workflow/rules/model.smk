# The base model in Hugging Face format under resources/models/{model}/ (see adaptune.models).


rule prepare_model:
    output:
        directory(shared("resources/models/{model}")),
    log:
        "logs/prepare_model/{model}.log",
    benchmark:
        "benchmarks/prepare_model/{model}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: MODEL_THREADS
    resources:
        mem_mb=4000,
    params:
        # Only this model's entry: editing another model's entry reruns nothing here.
        entry=lambda wildcards: model_entry(wildcards.model),
    script:
        "../scripts/prepare_model.py"
