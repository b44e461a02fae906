"""Seeds and learning-rate shapes of a training run that are plain arithmetic, shared by the
training loop and the sweep: each epoch's data-order seed, and the warm-up-stable-decay rate."""

from __future__ import annotations

import numpy as np


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's data order, drawn from numpy's SeedSequence of (seed, epoch): no
    two (seed, epoch) pairs share an order, unlike seed + epoch (where seed s's second epoch was
    seed s+1's first)."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])
