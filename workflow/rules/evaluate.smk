# Evaluation: every system scores the same prompts/splits and writes predictions.csv and
# metrics.json (test at the top of its directory, other splits below; see eval_files).
#   evaluate        a fine-tuned adapter on its base model (label likelihood, adaptune.lm.scoring)
#   fewshot         the base model with k demonstrations from the train split per query
#   baseline_tfidf  TF-IDF word + character n-grams and a logistic regression
# (No `def` here: snakemake --lint wants functions in common.smk, so helpers are values.)

EVAL = config["evaluation"]
EVAL_SPLITS = EVAL["splits"]
FEWSHOT = EVAL["fewshot"]
FEWSHOT_STYLE = FEWSHOT["style"]
# The part of `evaluation` that every scorer uses; few-shot and baseline add their own below,
# so that changing the few-shot k or max_length reruns nothing else.
EVAL_COMMON = {key: EVAL[key] for key in ("batch_size", "bootstrap_samples", "seed")}


rule evaluate:
    input:
        model=shared("resources/models/{model}"),
        adapter=f"results/train/{FINETUNED_NAME}/adapter",
        # training's final validation pass: the val split is not scored again
        val_scores=f"results/train/{FINETUNED_NAME}/val_scores.csv",
        summary=f"results/train/{FINETUNED_NAME}/summary.json",
        prompts=expand("results/prompts/{{style}}/{split}.jsonl", split=EVAL_SPLITS),
    output:
        eval_files(f"results/eval/{FINETUNED_NAME}"),
    log:
        f"logs/evaluate/{FINETUNED_NAME}.log",
    benchmark:
        f"benchmarks/evaluate/{FINETUNED_NAME}.tsv"
    priority: EVALUATION_PRIORITY
    conda:
        "../../envs/eval.yaml"
    threads: MODEL_THREADS
    resources:
        mem_mb=4000,
        gpu=int(config["gpu"]),
    params:
        evaluation=EVAL_COMMON,
        splits=EVAL_SPLITS,
        name=lambda w: System.finetuned_cell(w).name,
    script:
        "../scripts/evaluate.py"


rule fewshot:
    input:
        unpack(precision_decision),
        model=shared("resources/models/{model}"),
        train=f"results/prompts/{FEWSHOT_STYLE}/train.jsonl",
        prompts=expand(f"results/prompts/{FEWSHOT_STYLE}/{{split}}.jsonl", split=EVAL_SPLITS),
    output:
        eval_files(f"results/eval/{FEWSHOT_NAME}"),
    log:
        "logs/fewshot/{model}/k{k}.log",
    benchmark:
        "benchmarks/fewshot/{model}/k{k}.tsv"
    conda:
        "../../envs/eval.yaml"
    threads: MODEL_THREADS
    resources:
        mem_mb=4000,
        gpu=int(config["gpu"]),
    params:
        evaluation={
            **EVAL_COMMON,
            "fewshot": {
                key: FEWSHOT[key]
                for key in ("style", "max_length", "demonstrations", "instruction", "separator")
            },
        },
        # only when fixed, so that per-query runs do not rerun for an unused list
        fixed_demonstrations=(
            FEWSHOT["fixed_demonstrations"] if FEWSHOT["demonstrations"] == "fixed" else []
        ),
        quantization=FEWSHOT["quantization"],
        # The precision the fine-tuned systems train and score under (training.precision; auto:
        # the decision file's choice).
        precision=config["training"]["precision"],
        template=lambda w: config["prompts"]["templates"][FEWSHOT_STYLE],
        labels=config["labels"],
        splits=EVAL_SPLITS,
        k=lambda w: int(w.k),
        name=lambda w: System(
            "fewshot", w.model, FEWSHOT_STYLE, FEWSHOT["quantization"], k=int(w.k)
        ).name,
    script:
        "../scripts/fewshot.py"


rule baseline_tfidf:
    input:
        train="results/splits/train.csv",
        splits=expand("results/splits/{split}.csv", split=EVAL_SPLITS),
    output:
        eval_files("results/eval/baseline/tfidf"),
    log:
        "logs/baseline_tfidf.log",
    benchmark:
        "benchmarks/baseline_tfidf.tsv"
    conda:
        "../../envs/eval.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        evaluation={key: EVAL[key] for key in ("bootstrap_samples", "seed")},
        labels=config["labels"],
        splits=EVAL_SPLITS,
    script:
        "../scripts/baseline_tfidf.py"
