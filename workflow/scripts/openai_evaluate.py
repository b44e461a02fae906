import _checkout  # noqa: F401  (first: adaptune from this checkout; see _checkout.py)
"""Evaluate one OpenAI system (rule openai_evaluate); the key comes from OPENAI_API_KEY."""

import json

from adaptune.logs import log_to

log_to(snakemake.log[0])

from adaptune.openai_client import OpenAISettings, guard_secret  # noqa: E402

guard_secret()

from adaptune.openai_eval import EvaluationSettings, System, evaluate  # noqa: E402


def files(named):
    """A named input as a list of paths (Snakemake gives one path as a plain string)."""
    return [named] if isinstance(named, str) else list(named)


spec = snakemake.params.system
model = spec["base_model"]
if spec["method"] == "openai_finetune":
    (model_file,) = files(snakemake.input.model)
    with open(model_file, encoding="utf-8") as handle:
        model = json.load(handle)["fine_tuned_model"]

evaluate(
    system=System(name=spec["name"], model=model, method=spec["method"], k=spec["k"],
                  base_model=spec["base_model"]),
    splits=dict(zip(snakemake.params.splits, files(snakemake.input.splits), strict=True)),
    train=snakemake.input.train,
    directory=snakemake.params.directory,
    labels=snakemake.params.labels,
    settings=OpenAISettings.from_config(snakemake.params.openai),
    evaluation=EvaluationSettings(**snakemake.params.evaluation),
    cache_dir=snakemake.params.cache_dir,
)
