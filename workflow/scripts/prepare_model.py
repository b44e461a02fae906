import _checkout  # noqa: F401  (first: adaptune from this checkout; see _checkout.py)
import logging

from adaptune.core.logs import log_to

log_to(snakemake.log[0])

from adaptune.lm.prepare import prepare_model

path = prepare_model(
    dict(snakemake.params.entry), snakemake.output[0], fetched=snakemake.input.fetched
)
logging.info("prepared %s in %s", snakemake.params.entry["name"], path)
