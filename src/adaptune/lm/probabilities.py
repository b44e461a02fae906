"""Label probabilities from label log-likelihoods: numpy only, so that the report and
`adaptune predict` share it without importing a training or metrics stack."""

from __future__ import annotations

import numpy as np


def label_probabilities(scores: np.ndarray) -> np.ndarray:
    """Softmax over the labels of each row: the model's belief restricted to the label set."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=1, keepdims=True)
