# The OpenAI stage (optional, off unless openai.enabled; it costs money): fine-tune models of
# an OpenAI-compatible endpoint on the training prompts, and evaluate them and chat models with
# k demonstrations. The key is read from OPENAI_API_KEY inside the scripts only. A fine-tuning
# job is recorded in results/openai/{model}/job.json, which is no output, so a rerun after a
# failure resumes that job instead of paying for another (src/adaptune/openai/finetune.py).
# A model the endpoint refuses still gets its outputs, marked "not_run" with the reason.
# Responses are cached under results/openai/cache/, so a rerun pays for nothing twice.

import re

OPENAI = config["openai"]
OPENAI_STYLE = OPENAI["style"]
# Settings of the connection, which every OpenAI rule uses.
OPENAI_CONNECTION = ("base_url", "max_retries", "timeout_s", "completion_models")
# The evaluated OpenAI systems by directory name under results/eval/openai/, as
# adaptune.core.systems names them.
OPENAI_SYSTEMS = {s.name.removeprefix("openai/"): s for s in STUDY if s.method.startswith("openai")}


rule openai_finetune:
    input:
        train=f"results/prompts/{OPENAI_STYLE}/train.jsonl",
        val=f"results/prompts/{OPENAI_STYLE}/val.jsonl",
    output:
        model="results/openai/{oai_model}/model.json",
    log:
        "logs/openai_finetune/{oai_model}.log",
    benchmark:
        "benchmarks/openai_finetune/{oai_model}.tsv"
    wildcard_constraints:
        # exactly the configured models; "(?!)" matches nothing when there are none
        oai_model="|".join(map(re.escape, OPENAI["finetune_models"])) or "(?!)",
    priority: REMOTE_TRAINING_PRIORITY
    conda:
        "../../envs/openai.yaml"
    # It waits on OpenAI's servers (polling, for up to hours) and computes next to nothing, so it
    # holds none of --cores: local training goes on at full width beside it.
    threads: 0
    params:
        labels=config["labels"],
        openai={
            key: OPENAI[key]
            for key in OPENAI_CONNECTION
            + (
                "style",
                "epochs",
                "max_training_tokens",
                "seed",
                "poll_interval_s",
                "max_poll_interval_s",
                "create_attempts",
                "delete_files",
            )
        },
        # Not an output, so that Snakemake keeps it when the job fails or is interrupted.
        job_record=lambda w: f"results/openai/{w.oai_model}/job.json",
    script:
        "../scripts/openai_finetune.py"


rule openai_evaluate:
    input:
        splits=expand(
            f"results/prompts/{OPENAI_STYLE}/{{split}}.jsonl",
            split=config["evaluation"]["splits"],
        ),
        train=f"results/prompts/{OPENAI_STYLE}/train.jsonl",  # the demonstrations
        # a fine-tuned system also needs its model
        model=lambda w: (
            [f"results/openai/{OPENAI_SYSTEMS[w.oai_system].openai_model}/model.json"]
            if OPENAI_SYSTEMS[w.oai_system].method == "openai_finetune"
            else []
        ),
    output:
        eval_files("results/eval/openai/{oai_system}"),
    log:
        "logs/openai_evaluate/{oai_system}.log",
    benchmark:
        "benchmarks/openai_evaluate/{oai_system}.tsv"
    wildcard_constraints:
        oai_system="|".join(map(re.escape, OPENAI_SYSTEMS)) or "(?!)",
    conda:
        "../../envs/openai.yaml"
    params:
        system=lambda w: {
            "name": w.oai_system,
            "method": OPENAI_SYSTEMS[w.oai_system].method,
            "base_model": OPENAI_SYSTEMS[w.oai_system].openai_model,
            "k": OPENAI_SYSTEMS[w.oai_system].k,
        },
        splits=config["evaluation"]["splits"],
        labels=config["labels"],
        openai={
            key: OPENAI[key] for key in OPENAI_CONNECTION + ("style", "seed", "max_concurrency")
        },
        evaluation={key: config["evaluation"][key] for key in ("bootstrap_samples", "seed")},
        directory=lambda w: OPENAI_SYSTEMS[w.oai_system].eval_dir,
        cache_dir="results/openai/cache",
    script:
        "../scripts/openai_evaluate.py"
