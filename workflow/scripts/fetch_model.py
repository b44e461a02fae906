import _checkout  # noqa: F401  (first: adaptune from this checkout; see _checkout.py)
import logging

from adaptune.core.logs import log_to

log_to(snakemake.log[0])

from adaptune.lm.prepare import fetch_model

path = fetch_model(dict(snakemake.params.entry), snakemake.output[0])
logging.info("fetched what %s needs into %s", snakemake.params.entry["name"], path)
