"""The core every stage uses: the config and its schema, the study's names and systems, writing
files whole, logs and run records. Plain Python (PyYAML at most): the Snakefile imports it.

config         the schema: defaults, typed command-line overrides
config_checks  what the schema cannot say (cuts that name a subset of the grid, seed overlaps)
names          approaches, quantizations, splits, score columns
systems        the systems of a study: names, labels, colours, factors
io             atomic writers (a failed job leaves nothing that looks done)
logs           a job's log file
provenance     what a run records of its versions and checkout
"""
