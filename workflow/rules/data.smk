# Raw dataset and balanced splits.


rule download_dataset:
    output:
        shared("data/labeled_data.csv"),
    log:
        "logs/download_dataset.log",
    benchmark:
        "benchmarks/download_dataset.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        url=config["dataset"]["url"],
        sha256=config["dataset"]["sha256"],
    script:
        "../scripts/download_dataset.py"


rule download_reference:
    output:
        shared("data/reference_{part}.csv"),
    log:
        "logs/download_reference/{part}.log",
    benchmark:
        "benchmarks/download_reference/{part}.tsv"
    wildcard_constraints:
        part="train|val",
    conda:
        "../../envs/data.yaml"
    params:
        url=lambda w: config["splits"]["reference"][f"{w.part}_url"],
    script:
        "../scripts/download_reference.py"


# Another draw of the train split (training.split_seeds); val and test stay the study's own.
rule sample_train_split:
    input:
        unpack(reference_files),
        raw=shared("data/labeled_data.csv"),
        val="results/splits/val.csv",
        test="results/splits/test.csv",
    output:
        "results/splits/train-split{split_seed}.csv",
    log:
        "logs/sample_train_split/{split_seed}.log",
    benchmark:
        "benchmarks/sample_train_split/{split_seed}.tsv"
    wildcard_constraints:
        split_seed="[0-9]+",
    conda:
        "../../envs/data.yaml"
    params:
        splits=config["splits"],
        labels=config["labels"],
        exclude_texts=[d["text"] for d in config["evaluation"]["fewshot"]["fixed_demonstrations"]],
    script:
        "../scripts/sample_train_split.py"


rule sample_splits:
    input:
        unpack(reference_files),
        raw=shared("data/labeled_data.csv"),
    output:
        train="results/splits/train.csv",
        val="results/splits/val.csv",
        test="results/splits/test.csv",
    log:
        "logs/sample_splits.log",
    benchmark:
        "benchmarks/sample_splits.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        splits=config["splits"],
        labels=config["labels"],
        # Fixed few-shot demonstrations stay out of every sampled split.
        exclude_texts=[d["text"] for d in config["evaluation"]["fewshot"]["fixed_demonstrations"]],
    script:
        "../scripts/sample_splits.py"
