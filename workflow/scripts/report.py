"""Gather every system's evaluation and training run into results/report/ (tables and figures)."""

import _checkout  # noqa: F401  (first: adaptune from this checkout; see _checkout.py)

from adaptune.core.logs import log_to

log_to(snakemake.log[0])

from adaptune.report.build import build_report  # noqa: E402
from adaptune.report.plan import AnalysisPlan  # noqa: E402
from adaptune.core.systems import System  # noqa: E402

statistics = dict(snakemake.params.statistics)
build_report(
    systems=[System.from_block(block) for block in snakemake.params.systems],
    outputs=dict(snakemake.output.items()),
    labels=list(snakemake.params.labels),
    splits=list(snakemake.params.splits),
    split_paths=list(snakemake.input.splits),
    plan=AnalysisPlan.from_config(statistics["analysis"]),
    seed=int(statistics["seed"]),
    model=dict(snakemake.params.model),
    reference_split=bool(snakemake.params.reference_split),
    config=snakemake.config,
    sweep_csv=snakemake.input.sweep[0] if snakemake.input.sweep else None,
)
