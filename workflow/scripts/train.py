import _checkout  # noqa: F401  (first: adaptune from this checkout; see _checkout.py)
import logging
from pathlib import Path

from adaptune.core.logs import log_to

log_to(snakemake.log[0])

from adaptune.core.offline import hub_offline

hub_offline()  # before bitsandbytes is imported (adaptune.core.offline)

from adaptune.hardware.devices import claim_devices

# Before torch sees CUDA: this job's own GPU(s) where several jobs share a machine.
claim_devices(int(snakemake.config["training"]["devices"]))

import torch

from adaptune.train.run import RUN_CONTROL_KEYS, TrainSettings, train
from adaptune.sweep.choice import read_chosen

torch.set_num_threads(snakemake.threads)
params = dict(snakemake.params.settings)
# How the run is carried out (a time limit, the checkpoints' interval): from the config, not params.
params.update({k: v for k, v in snakemake.config["training"].items() if k in RUN_CONTROL_KEYS})
if "chosen" in snakemake.input.keys():  # a tuned study: the sweep's learning rate and epochs
    params.update(read_chosen(snakemake.input.chosen, params["approach"]))
if "rates" in snakemake.input.keys():  # another study's learning rates, nothing else
    params["learning_rate"] = read_chosen(snakemake.input.rates, params["approach"])[
        "learning_rate"
    ]
settings = TrainSettings.from_params(params)
summary = train(
    settings,
    train_prompts=snakemake.input.train,
    val_prompts=snakemake.input.val,
    model_dir=snakemake.input.model,
    out_dir=Path(snakemake.output.summary).parent,
    precision_file=snakemake.input.get("precision"),
)
if summary is not None:  # None in the other processes of a DDP run
    if summary["torch_threads"] != snakemake.threads:
        logging.warning(
            "torch used %d threads, the rule declares %d",
            summary["torch_threads"],
            snakemake.threads,
        )
    logging.info(
        "%s: val accuracy %s after %d steps, %.2f samples/s",
        settings.approach,
        summary["final_val_accuracy"],
        summary["steps"],
        summary["train_samples_per_second"],
    )
