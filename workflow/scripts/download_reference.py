import _checkout  # noqa: F401  (first: adaptune from this checkout; see _checkout.py)

from adaptune.core.logs import log_to

log_to(snakemake.log[0])

from adaptune.data.splits import download_reference

download_reference(snakemake.params.url, snakemake.output[0])
