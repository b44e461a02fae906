import _checkout  # noqa: F401  (first: adaptune from this checkout; see _checkout.py)
import logging

from adaptune.core.logs import log_to

log_to(snakemake.log[0])

from adaptune.core.offline import hub_offline

hub_offline()  # before bitsandbytes is imported (adaptune.core.offline)

from adaptune.evaluate.baseline import BaselineSettings, run_baseline
from adaptune.evaluate.run import split_directories

splits = list(snakemake.params.splits)
evaluation = dict(snakemake.params.evaluation)
results = run_baseline(
    train_csv=snakemake.input.train,
    splits=dict(zip(splits, snakemake.input.splits)),
    outputs=split_directories(splits, snakemake.output),
    labels=list(snakemake.params.labels),
    settings=BaselineSettings.from_config(evaluation),
    config_section={"evaluation": evaluation},
)
for split, metrics in results.items():
    logging.info(
        "tfidf %s: accuracy %.3f, macro-F1 %.3f", split, metrics["accuracy"], metrics["macro_f1"]
    )
