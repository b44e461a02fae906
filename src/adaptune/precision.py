"""The training precision, decided once per study by timing real training steps.

Candidates (what training and scoring do under each):

    32-true     everything float32.
    bf16-base   frozen base weights in bfloat16, trainable ones (LoRA, norms) in float32, no
                autocast (Lightning "32-true" over a model prepared by
                adaptune.acceleration.prepare_for_training; scoring casts the base alike).
    bf16-mixed  float32 weights, forward under bfloat16 autocast (Lightning "bf16-mixed").

A fast bf16 matmul does not make a fast bf16 training step (on an Intel Xeon with AMX a LoRA step
ran faster in fp32 than under autocast; bench/README.md), so on a CPU the `hardware` rule times a
few steps of the configured model and approach under each candidate, interleaved round by round,
and writes the timings and the choice to results/hardware/precision.json. The choice is the
candidate whose median per-round speed-up over fp32 is largest, provided it is at least
MARGIN; otherwise fp32: a burst of load from another process cannot make a rerun pick a slower
path, and a small win is not worth the bf16 rounding. On a CUDA GPU the choice is made without
timing, by compute capability: bf16-mixed from 8.0 (Ampere on: A100, H100, RTX 30xx), whose tensor
cores compute bf16 at several times the fp32 rate; 16-mixed (fp16 with loss scaling) below it
(V100, T4), where torch.cuda.is_bf16_supported() also counts bf16 that is only emulated, slowly.
NF4's compute dtype follows the same rule (cuda_compute_dtype).

Jobs with `training.precision: auto` read only the choice from the file; the timings never reach
a run's fingerprint or its results.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
from pathlib import Path

CANDIDATES = ("32-true", "bf16-base", "bf16-mixed")
# What a decision file may hold: a timed candidate, or fp16 mixed, a CUDA GPU's choice below 8.0.
CHOICES = (*CANDIDATES, "16-mixed")
NATIVE_BF16_CAPABILITY = (8, 0)  # the first compute capability with bf16 tensor cores
MARGIN = 1.10  # a candidate must be at least 10% faster than fp32 to be chosen
# Precisions a config may name; "auto" reads the decision file.
PRECISIONS = ("auto", "32-true", "bf16-base", "bf16-mixed", "16-mixed", "bf16-true")

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- using a precision


def lightning_precision(precision: str) -> str:
    """The Lightning Trainer precision of a resolved precision: bf16-base trains without
    autocast."""
    return "32-true" if precision == "bf16-base" else precision


def autocast_dtype(precision: str):
    """The torch.autocast dtype of a resolved precision (mixed ones only), or None."""
    import torch

    return {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)


def resolve(precision: str, decision_file: str | os.PathLike | None = None) -> str:
    """The precision to run under: an explicit one as given; "auto" the decision file's choice.
    Without a decision file (a direct call, not the pipeline) "auto" is a CUDA GPU's mixed
    precision (cuda_mixed_precision) and fp32 elsewhere: unmeasured, fp32 is never the slow
    choice by much on a CPU."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: got {precision!r}, expected one of {list(PRECISIONS)}")
    if precision != "auto":
        return precision
    if decision_file is not None:
        return read_decision(decision_file)["choice"]
    return cuda_mixed_precision() or "32-true"


def read_decision(path: str | os.PathLike) -> dict:
    """The decision file, checked: its `choice` must be one of CHOICES."""
    path = Path(path)
    try:
        decision = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(
            f"{path}: not a readable precision decision ({error}); "
            "delete it and rerun the `hardware` rule"
        ) from None
    choice = decision.get("choice") if isinstance(decision, dict) else None
    if choice not in CHOICES:
        raise ValueError(f"{path}: choice: got {choice!r}, expected one of {list(CHOICES)}")
    return decision


def _cuda_bf16() -> bool:
    """A CUDA GPU with native bf16 (compute capability 8.0 or more), not emulated bf16."""
    import torch

    if not torch.cuda.is_available():
        return False
    return torch.cuda.get_device_capability() >= NATIVE_BF16_CAPABILITY


def cuda_mixed_precision() -> str | None:
    """The mixed precision of the CUDA GPU this process sees: bf16-mixed where bf16 is native,
    16-mixed below compute capability 8.0; None without a CUDA GPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    return "bf16-mixed" if _cuda_bf16() else "16-mixed"


def cuda_compute_dtype():
    """The dtype bitsandbytes' NF4 layers compute in on this CUDA GPU: bfloat16 where native,
    else float16."""
    import torch

    return torch.bfloat16 if _cuda_bf16() else torch.float16


# ---------------------------------------------------------------------------- deciding


def decide(seconds: dict[str, list[float]], margin: float = MARGIN) -> tuple[str, dict[str, float]]:
    """(choice, median speed-up over fp32 of each candidate) from per-round seconds per step
    (the rounds of all candidates interleaved, so round i of each saw the same load)."""
    if "32-true" not in seconds:
        raise ValueError("timings must include 32-true, the reference")
    base = seconds["32-true"]
    speedups = {
        name: statistics.median(b / t for b, t in zip(base, times))
        for name, times in seconds.items()
    }
    best = max(speedups, key=speedups.get)
    return (best if best != "32-true" and speedups[best] >= margin else "32-true"), speedups
