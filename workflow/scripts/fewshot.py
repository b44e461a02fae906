import _checkout  # noqa: F401  (first: adaptune from this checkout; see _checkout.py)
from adaptune.core.logs import log_to

log_to(snakemake.log[0])

from adaptune.core.offline import hub_offline

hub_offline()  # before bitsandbytes is imported (adaptune.core.offline)

from adaptune.hardware.devices import claim_devices

claim_devices(1)  # before torch sees CUDA: this job's own GPU where several jobs share a machine

import torch

from adaptune.evaluate.run import EvaluationSettings, evaluate_fewshot, split_directories
from adaptune.data.prompts import completion, render

torch.set_num_threads(snakemake.threads)
splits = list(snakemake.params.splits)
evaluation = dict(snakemake.params.evaluation)
labels = list(snakemake.params.labels)
fixed = None
if evaluation["fewshot"]["demonstrations"] == "fixed":
    fixed = [
        {
            "id": f"fixed-{i}",
            "prompt": render(snakemake.params.template, d["text"], labels),
            "completion": completion(d["label"]),
        }
        for i, d in enumerate(snakemake.params.fixed_demonstrations)
    ]
evaluate_fewshot(
    model_dir=snakemake.input.model,
    quantization=snakemake.params.quantization,
    train_prompts=snakemake.input.train,
    prompt_files=dict(zip(splits, snakemake.input.prompts)),
    outputs=split_directories(splits, snakemake.output),
    k=snakemake.params.k,
    labels=labels,
    style=evaluation["fewshot"]["style"],
    settings=EvaluationSettings.from_config(evaluation),
    name=snakemake.params.name,
    config_section={
        "evaluation": evaluation,
        "k": snakemake.params.k,
        "quantization": snakemake.params.quantization,
        "fixed_demonstrations": snakemake.params.fixed_demonstrations,
    },
    fixed=fixed,
    precision=snakemake.params.precision,
    precision_file=snakemake.input.get("precision"),
)
