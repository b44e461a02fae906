"""One approach's choice (results/sweep/<model>/<approach>/chosen.yaml), from its grid's runs and
those its extension added: what its tuned cells read, so they start once its own sweep is done."""

import _checkout  # noqa: F401  (first: adaptune from this checkout; see _checkout.py)

from adaptune.core.logs import log_to

log_to(snakemake.log[0])

from adaptune.report.sweep import write_choice  # noqa: E402
from adaptune.sweep.extension import extension_runs  # noqa: E402

runs = list(snakemake.params.runs) + extension_runs([snakemake.input.extension])
write_choice(runs, list(snakemake.params.epochs), snakemake.output[0])
