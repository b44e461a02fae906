import _checkout  # noqa: F401  (first: adaptune from this checkout; see _checkout.py)
from adaptune.logs import log_to

log_to(snakemake.log[0])

import torch

from adaptune.evaluation import EvaluationSettings, evaluate_fewshot, split_directories

torch.set_num_threads(snakemake.threads)
splits = list(snakemake.params.splits)
evaluation = dict(snakemake.params.evaluation)
evaluate_fewshot(
    model_dir=snakemake.input.model,
    quantization=snakemake.params.quantization,
    train_prompts=snakemake.input.train,
    prompt_files=dict(zip(splits, snakemake.input.prompts)),
    outputs=split_directories(splits, snakemake.output),
    k=snakemake.params.k,
    labels=list(snakemake.params.labels),
    style=evaluation["fewshot"]["style"],
    settings=EvaluationSettings.from_config(evaluation),
    name=snakemake.params.name,
    config_section={"evaluation": evaluation, "k": snakemake.params.k,
                    "quantization": snakemake.params.quantization},
)
