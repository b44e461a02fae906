"""The evaluate stage: every system's predictions.csv and metrics.json.

run       a fine-tuned or few-shot system scored by its language model
baseline  the TF-IDF + logistic-regression baseline
metrics   classification metrics with stratified bootstrap intervals, and the shared writer
"""
