"""Gather every metrics.json and training run into results/report/ (tables and figures)."""

import _checkout  # noqa: F401  (first: adaptune from this checkout; see _checkout.py)

from pathlib import Path

from adaptune.logs import log_to

log_to(snakemake.log[0])

from adaptune.report import OUTPUT_FILES, ReportSettings, build_report  # noqa: E402

out_dir = Path(snakemake.output.summary_csv).parent
expected = {out_dir / name for name in OUTPUT_FILES}
if {Path(p) for p in snakemake.output} != expected:
    raise ValueError(f"rule report: outputs {sorted(map(str, snakemake.output))} differ from the files "
                     f"adaptune.report writes {sorted(map(str, expected))}")

build_report(
    metrics_paths=snakemake.input.metrics,
    summary_paths=snakemake.input.summaries,
    out_dir=out_dir,
    settings=ReportSettings.from_params(snakemake.params.labels, snakemake.params.not_run),
    val_metrics_paths=snakemake.input.val_metrics,
    split_paths=snakemake.input.splits,
)
