"""The sweep's table (results/sweep/summary.csv and .md)."""

import _checkout  # noqa: F401  (first: adaptune from this checkout; see _checkout.py)

from adaptune.logs import log_to

log_to(snakemake.log[0])

from adaptune.report.sweep import write_sweep  # noqa: E402

write_sweep(list(snakemake.params.points), snakemake.output.csv, snakemake.output.md)
