# Raw dataset and balanced splits.


rule download_dataset:
    output:
        "data/labeled_data.csv",
    params:
        url=config["dataset"]["url"],
        sha256=config["dataset"]["sha256"],
    log:
        "logs/download_dataset.log",
    benchmark:
        "benchmarks/download_dataset.tsv"
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/download_dataset.py"


rule sample_splits:
    input:
        raw="data/labeled_data.csv",
        reference=reference_inputs,
    output:
        train="results/splits/train.csv",
        val="results/splits/val.csv",
        test="results/splits/test.csv",
    params:
        splits=config["splits"],
        labels=config["labels"],
    log:
        "logs/sample_splits.log",
    benchmark:
        "benchmarks/sample_splits.tsv"
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/sample_splits.py"
