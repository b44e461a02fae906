"""The sweep's tables and choice (results/sweep/summary.csv, summary.md, chosen.yaml)."""

import _checkout  # noqa: F401  (first: adaptune from this checkout; see _checkout.py)

from adaptune.logs import log_to

log_to(snakemake.log[0])

from adaptune.report.sweep import write_sweep  # noqa: E402

write_sweep(list(snakemake.params.runs), list(snakemake.params.epochs), snakemake.output.csv,
            snakemake.output.md, snakemake.output.chosen)
