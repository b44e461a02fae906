"""The report: every system's metrics and predictions and every training run gathered into
tables and figures.

inputs      read and check metrics.json, predictions.csv, summary.json, curves.csv, splits
statistics  seeds, paired bootstrap differences, calibration, predicted-label shares
tables      the tables and the sentences that state what the intervals support
rendering   Markdown and HTML pages
figures     seaborn figures, PNG and SVG
build       the whole report, files exchanged by name with the report rule

No torch here: the report step reads JSON and CSV only.
"""

from adaptune.report.build import OUTPUTS, build_report, output_paths
from adaptune.report.inputs import ReportInputError

__all__ = ["OUTPUTS", "ReportInputError", "build_report", "output_paths"]
