import _checkout  # noqa: F401  (first: adaptune from this checkout; see _checkout.py)
from adaptune.core.logs import log_to

log_to(snakemake.log[0])

from adaptune.core.offline import hub_offline

hub_offline()  # before bitsandbytes is imported (adaptune.core.offline)

import json

from adaptune.hardware.devices import claim_devices

claim_devices(1)  # before torch sees CUDA: this job's own GPU where several jobs share a machine

import torch

from adaptune.evaluate.run import EvaluationSettings, evaluate_adapter, split_directories

torch.set_num_threads(snakemake.threads)
splits = list(snakemake.params.splits)
evaluate_adapter(
    model_dir=snakemake.input.model,
    adapter_dir=snakemake.input.adapter,
    prompt_files=dict(zip(splits, snakemake.input.prompts)),
    outputs=split_directories(splits, snakemake.output),
    settings=EvaluationSettings.from_config(dict(snakemake.params.evaluation)),
    name=snakemake.params.name,
    config_section={"evaluation": dict(snakemake.params.evaluation)},
    val_scores=snakemake.input.val_scores,
    val_examples_per_second=json.loads(open(snakemake.input.summary).read()).get(
        "final_val_examples_per_second"
    ),
)
