# adaptune: how should you fine-tune a quantized causal LM for text classification?
# The chain: download_dataset -> sample_splits -> format_prompts -> train_{approach}
# -> evaluate / fewshot / baseline_tfidf / openai_* -> report. See README.md.

import os

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")

# Jobs import the package from this checkout, also inside per-rule conda environments.
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        filter(None, [os.path.join(workflow.basedir, "src"), os.environ.get("PYTHONPATH")])
    )
)

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
    seed="[0-9]+",
    split="|".join(SPLITS),
    k="[0-9]+",



include: "workflow/rules/data.smk"
include: "workflow/rules/prompts.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/openai.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
