"""The report: every system's metrics and predictions and every training run gathered into
tables and figures.

inputs      read and check metrics.json, predictions.csv, summary.json, curves.csv, splits
statistics  seeds, paired bootstrap differences, calibration, predicted-label shares
tables      the tables and the sentences that state what the intervals support
rendering   Markdown and HTML pages
figures     seaborn figures, PNG and SVG
build       the whole report, files exchanged by name with the report rule

publish     a finished study's outputs copied under docs/results/, and the README's sections
progress    a long study's finished jobs saved and restored, to go on on another machine
cost        a publication's time per stage, the tables `adaptune docs` writes into docs/
sweep       the sweep's own report
reanalysis  a published study analysed again under a changed plan

No torch here: the report step reads JSON and CSV only. The package imports nothing itself, so
`adaptune publish` and `adaptune readme` need neither matplotlib nor scikit-learn.
"""
