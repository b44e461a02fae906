"""Seeds and learning-rate shapes of a training run that are plain arithmetic, shared by the
training loop and the sweep: each epoch's data-order seed, and the warm-up-stable-decay rate."""

from __future__ import annotations

import numpy as np


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's data order, drawn from numpy's SeedSequence of (seed, epoch): no
    two (seed, epoch) pairs share an order, unlike seed + epoch (where seed s's second epoch was
    seed s+1's first)."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def wsd_multiplier(steps_per_epoch: int, epochs: int, warmup_ratio: float, decay_ratio: float):
    """The warm-up-stable-decay learning rate of an `epochs`-epoch run, as a function of the
    optimizer step giving the fraction of the peak rate: a linear warm-up over `warmup_ratio` of
    an epoch's steps, the peak rate, and a linear decay to zero over the last `decay_ratio` of an
    epoch's steps. Warm-up and decay are fractions of one epoch, not of the run, so runs of
    every length agree step for step until their decay starts: an e-epoch run is the longest
    run's first e epochs with its decay branched off `decay` steps before epoch e ends."""
    warmup = round(warmup_ratio * steps_per_epoch)
    decay = max(1, round(decay_ratio * steps_per_epoch))
    total = steps_per_epoch * epochs
    if warmup + decay > total:
        raise ValueError(
            f"warm-up ({warmup} steps) and decay ({decay} steps) do not fit in "
            f"{total} steps ({epochs} epochs of {steps_per_epoch})"
        )
    start = total - decay

    def multiplier(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if step < start:
            return 1.0
        return max(0.0, (total - step) / (decay + 1))  # every decay step below the peak

    return multiplier
