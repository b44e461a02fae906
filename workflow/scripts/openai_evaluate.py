import _checkout  # noqa: F401  (first: adaptune from this checkout; see _checkout.py)

"""Evaluate one OpenAI system (rule openai_evaluate); the key comes from OPENAI_API_KEY."""

import json

from adaptune.core.logs import log_to

log_to(snakemake.log[0])

from adaptune.openai.client import guard_secret  # noqa: E402

guard_secret()

from adaptune.openai.evaluation import MetricSettings, System, evaluate  # noqa: E402
from adaptune.openai.settings import OpenAISettings  # noqa: E402


def files(named):
    """A named input as a list of paths (Snakemake gives one path as a plain string)."""
    return [named] if isinstance(named, str) else list(named)


spec = snakemake.params.system
model, not_run_reason = spec["base_model"], None
if spec["method"] == "openai_finetune":
    (model_file,) = files(snakemake.input.model)
    with open(model_file, encoding="utf-8") as handle:
        record = json.load(handle)
    if record["status"] == "not_run":
        not_run_reason = record["reason"]
    else:
        model = record["fine_tuned_model"]

evaluate(
    system=System(
        name=spec["name"],
        model=model,
        method=spec["method"],
        k=spec["k"],
        base_model=spec["base_model"],
    ),
    splits=dict(zip(snakemake.params.splits, files(snakemake.input.splits), strict=True)),
    train=snakemake.input.train,
    directory=snakemake.params.directory,
    labels=snakemake.params.labels,
    settings=OpenAISettings.from_config(snakemake.params.openai),
    metric_settings=MetricSettings(**snakemake.params.evaluation),
    cache_dir=snakemake.params.cache_dir,
    not_run_reason=not_run_reason,
)
