import _checkout  # noqa: F401  (first: adaptune from this checkout; see _checkout.py)
import logging

from adaptune.core.logs import log_to

log_to(snakemake.log[0])

from adaptune.data.prompts import format_prompts

count = format_prompts(
    snakemake.input[0],
    snakemake.params.template,
    list(snakemake.params.labels),
    snakemake.output[0],
    style=snakemake.wildcards.style,
)
logging.info("wrote %d prompts to %s", count, snakemake.output[0])
