"""Where a study's shared results lie, named once: the rules declare them from here and
publishing reads them by the same names. Plain Python: the Snakefile imports it."""

# The sweep's val scores and its choice (adaptune.sweep).
SWEEP_SUMMARY = "results/sweep/summary.csv"
SWEEP_SUMMARY_MD = "results/sweep/summary.md"
SWEEP_CHOSEN = "results/sweep/chosen.yaml"
# One approach's choice, the same as its entry in SWEEP_CHOSEN: its tuned cells wait for it alone,
# not for every approach's sweep.
SWEEP_APPROACH_CHOSEN = "results/sweep/{model}/{approach}/chosen.yaml"
# The hardware rule's precision and compilation decision (adaptune.hardware.precision).
PRECISION_FILE = "results/hardware/precision.json"
