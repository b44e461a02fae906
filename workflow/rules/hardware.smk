# The training precision, decided once per study by timing a few real training steps of the
# configured model under each candidate (adaptune.hardware.precision), and whether compiling pays
# (adaptune.hardware.compilation). Jobs read the file only when training.precision or training.compile
# is auto; where both are explicit this rule does not run.


rule hardware:
    input:
        train=f"results/prompts/{PRECISION_TIMED['style']}/train.jsonl",
        model=shared(f"resources/models/{MODEL}"),
    output:
        PRECISION_FILE,
    log:
        "logs/hardware.log",
    benchmark:
        "benchmarks/hardware.tsv"
    conda:
        "../../envs/train.yaml"
    # The cores of a training job: the decision is for the step as the training jobs run it.
    threads: MODEL_THREADS
    resources:
        mem_mb=6000,
        gpu=int(config["gpu"]),
    params:
        settings=precision_timing_params(),
        decide_precision=config["training"]["precision"] == "auto",
        compile_plan=compile_plan(),
    script:
        "../scripts/hardware.py"
