"""The training precision, decided once per study by timing real training steps.

Candidates (what training and scoring do under each):

    32-true     everything float32.
    bf16-base   frozen base weights in bfloat16, trainable ones (LoRA, norms) in float32, no
                autocast (Lightning "32-true" over a model prepared by
                adaptune.hardware.precision.prepare_for_training; scoring casts the base alike).
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

Preparing a model for bf16-base: frozen base weights in bfloat16, trainable parameters (LoRA,
norms) in float32.

Training calls `prepare_for_training` after the adapter is attached and trains WITHOUT autocast
(Lightning "32-true"): the LoRA layers cast their small input to float32 themselves, and nothing
recasts the big frozen weights at every step as autocast on a float32 base does (aten::copy_:
5,740 calls a step with autocast, 4,874 without); the optimizer updates float32 weights.
Scoring calls `prepare_for_inference`, which casts the base the same way and keeps an adapter's
weights float32.
Any other precision leaves the model as it is (bf16-mixed is Lightning's / torch.autocast's job).
Measured and not kept: torch.compile (333 s to compile; a 250-step run saves less than that),
eager attention (no faster than SDPA). See bench/README.md."""

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


BF16_BASE = "bf16-base"
# A matmul the size of a 135M model's MLP projection over a batch of short prompts.
PROBE_SHAPE = (256, 576, 1536)


def matmul_gflops(dtype, device: str = "cpu", shape=PROBE_SHAPE, seconds: float = 0.1) -> float:
    """GFLOP/s of a matmul of `shape` (m, k, n) in `dtype` on `device`, best of a few timings
    (recorded beside the precision decision; the decision itself times training steps)."""
    import time

    import torch

    m, k, n = shape
    a = torch.randn(m, k, device=device).to(dtype)
    b = torch.randn(k, n, device=device).to(dtype)
    a @ b  # first call: library warm-up
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while True:
        if device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device != "cpu":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
        if time.perf_counter() > deadline:
            break
    return 2 * m * k * n / best / 1e9


def cast_frozen(model, dtype) -> int:
    """Cast the floating-point parameters that do not train (and floating buffers other than
    rotary tables) to `dtype`; trainable ones keep theirs. Quantized weights (int8/NF4) are not
    floating point and stay as they are. Returns the number of tensors cast."""
    cast = 0
    for param in model.parameters():
        if not param.requires_grad and param.is_floating_point() and param.dtype != dtype:
            param.data = param.data.to(dtype)
            cast += 1
    for name, module in model.named_modules():
        for buffer_name, buffer in module.named_buffers(recurse=False):
            # Rotary frequency tables stay float32: positions are computed from them.
            if (
                buffer.is_floating_point()
                and buffer.dtype != dtype
                and "inv_freq" not in buffer_name
            ):
                setattr(module, buffer_name, buffer.to(dtype))
                cast += 1
    return cast


def prepare_for_training(model, precision: str):
    """bf16-base: the frozen weights to bfloat16, trainable ones stay float32. Others: unchanged."""
    import torch

    if precision == BF16_BASE:
        cast_frozen(model, torch.bfloat16)
    return model


def prepare_for_inference(model, precision: str):
    """Eval mode; bf16-base: the base model's floating-point weights to bfloat16, an adapter's
    (PEFT) weights kept float32, as in training, so that a model scores the way its training's
    validation passes scored it. Scores then differ from float32 ones in their third digit (the
    scorer's log-softmax runs in float64)."""
    import torch

    if precision == BF16_BASE:
        adapters = tuple(f".{name}." for name in getattr(model, "peft_config", {}))
        for name, param in model.named_parameters():
            param.requires_grad_(any(a in name for a in adapters))
        cast_frozen(model, torch.bfloat16)
        for param in model.parameters():
            param.requires_grad_(False)
    model.eval()
    return model


def frozen_dtypes(model) -> list[str]:
    """The dtypes of the frozen floating-point weights (what a run really computed in)."""
    return sorted(
        {
            str(p.dtype).removeprefix("torch.")
            for p in model.parameters()
            if not p.requires_grad and p.is_floating_point()
        }
    )
