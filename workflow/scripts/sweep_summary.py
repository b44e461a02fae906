"""The sweep's tables and choice (results/sweep/summary.csv, summary.md, chosen.yaml)."""

import _checkout  # noqa: F401  (first: adaptune from this checkout; see _checkout.py)

from adaptune.core.logs import log_to

log_to(snakemake.log[0])

from adaptune.report.sweep import write_sweep  # noqa: E402
from adaptune.sweep.extension import extension_runs  # noqa: E402

# The grid's runs, then those its extension jobs added past an edge.
runs = list(snakemake.params.runs) + extension_runs(snakemake.input.extensions)
write_sweep(
    runs,
    list(snakemake.params.epochs),
    snakemake.output.csv,
    snakemake.output.md,
    snakemake.output.chosen,
)
