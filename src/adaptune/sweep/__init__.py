"""The sweep: scoring every learning rate and epoch count on val, choosing, extending the grid
past an edge, and the choice as a file the study's cells are planned from.

scores     the sweep's points and its choice
extension  runs past a grid edge, and the second seed that confirms the top settings
choice     results/sweep/chosen.yaml, read and written (plain Python: the Snakefile reads it)
"""
