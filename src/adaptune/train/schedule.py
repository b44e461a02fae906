"""A training run's schedule: each epoch's data-order seed, the warm-up-stable-decay (wsd) rate,
and the shorter runs branched off one wsd run, which is how a sweep scores every epoch count
with one run per learning rate and seed (docs/tuning.md).

Under `lr_schedule: wsd` an e-epoch run is the longest run's first e epochs, except that its last
`decay` steps take the rate down to zero (wsd_multiplier). So at step
e x steps_per_epoch - decay of the long run DecayBranches keeps a copy of the trainable weights
and the optimizer's state, and the batches of the `decay` steps that follow; at the end of epoch
e it swaps the copy in, trains those batches again at the e-epoch run's decaying rate, scores the
val split, and swaps the long run back. A branch costs `decay` steps and one val pass, and gives
the score the e-epoch run would have had (tests/test_decay_branches.py checks it against one)."""

from __future__ import annotations

import copy

import numpy as np
import pytorch_lightning as pl
import torch


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


RESULT_COLUMNS = ("epochs", "step", "val_loss", "val_accuracy", "val_macro_f1")


class DecayBranches(pl.Callback):
    """Scores the `epochs`-epoch runs (each shorter than the run it branches from)."""

    def __init__(self, epochs, steps_per_epoch: int, warmup_ratio: float, decay_ratio: float):
        self.epochs = sorted(int(e) for e in epochs)
        self.steps_per_epoch = steps_per_epoch
        self.warmup_ratio, self.decay_ratio = warmup_ratio, decay_ratio
        self.decay = max(1, round(decay_ratio * steps_per_epoch))
        self.results: list[dict] = []
        # Between a branch point and its epoch's end: the state there and the batches since.
        self._saved: dict | None = None
        self._batches: list[dict] = []

    def _branch_starting_at(self, step: int) -> int | None:
        for epochs in self.epochs:
            if step == epochs * self.steps_per_epoch - self.decay:
                return epochs
        return None

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if self._branch_starting_at(trainer.global_step) is not None:
            self._saved = {
                "weights": trainable_weights(module),
                "optimizer": copy.deepcopy(trainer.optimizers[0].state_dict()),
            }
            self._batches = []
        if self._saved is not None:
            self._batches.append(batch)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        step = trainer.global_step  # optimizer steps done, this batch's included
        for epochs in self.epochs:
            if step == epochs * self.steps_per_epoch and self._saved is not None:
                self.results.append(
                    {"epochs": epochs, "step": step, **self._branch(trainer, module, epochs)}
                )
                self._saved, self._batches = None, []

    def _branch(self, trainer, module, epochs: int) -> dict:
        """Train the kept batches at the `epochs`-epoch run's rate from the kept state, score
        the val split, and put the long run's state back."""
        optimizer = trainer.optimizers[0]
        long_run = {
            "weights": trainable_weights(module),
            "optimizer": copy.deepcopy(optimizer.state_dict()),
        }
        load_trainable_weights(module, self._saved["weights"])
        optimizer.load_state_dict(copy.deepcopy(self._saved["optimizer"]))
        rate = wsd_multiplier(self.steps_per_epoch, epochs, self.warmup_ratio, self.decay_ratio)
        start = epochs * self.steps_per_epoch - self.decay
        peak = module.settings.learning_rate
        clip = module.settings.gradient_clip_val
        optimizer.zero_grad(set_to_none=True)  # Lightning clears gradients before a step, not after
        for i, batch in enumerate(self._batches):
            for group in optimizer.param_groups:
                group["lr"] = peak * rate(start + i)
            with trainer.precision_plugin.forward_context():
                loss = module.completion_loss(module.completion_logits(batch), batch)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(
                    [p for p in module.parameters() if p.requires_grad], clip
                )
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        with trainer.precision_plugin.forward_context():
            scores = module.score_loader(trainer.datamodule.val_dataloader())
        load_trainable_weights(module, long_run["weights"])
        optimizer.load_state_dict(long_run["optimizer"])
        return scores

    def state_dict(self):
        # A checkpoint between a branch point and its epoch's end carries what the branch needs.
        return {"results": self.results, "saved": self._saved, "batches": self._batches}

    def load_state_dict(self, state):
        self.results = list(state.get("results", []))
        self._saved, self._batches = state.get("saved"), list(state.get("batches", []))


def trainable_weights(module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters() if p.requires_grad}


def load_trainable_weights(module, weights: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name in weights:
                p.copy_(weights[name])
