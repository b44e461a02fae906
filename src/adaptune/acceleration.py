"""Prepare a model for the bf16-base precision (adaptune.precision): frozen base weights in
bfloat16, trainable parameters (LoRA, norms) in float32.

Training calls `prepare_for_training` after the adapter is attached and trains WITHOUT autocast
(Lightning "32-true"): the LoRA layers cast their small input to float32 themselves, and nothing
recasts the big frozen weights at every step as autocast on a float32 base does (aten::copy_:
5,740 calls a step with autocast, 4,874 without); the optimizer updates float32 weights.
Scoring calls `prepare_for_inference`, which casts the base the same way and keeps an adapter's
weights float32.
Any other precision leaves the model as it is (bf16-mixed is Lightning's / torch.autocast's job).
Measured and not kept: torch.compile (333 s to compile; a 250-step run saves less than that),
eager attention (no faster than SDPA). See bench/README.md.
"""

from __future__ import annotations

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
