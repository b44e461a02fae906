"""Make a model fast for a precision: what measured faster on the CPU (and is standard on a GPU).

The training and scoring code call these once, after the model is loaded (and, for training,
after the adapter is attached). Gains below are medians of interleaved runs of
bench/profile_step.py (SmolLM2-135M, LoRA on all linear layers, batch 4 of the reference split,
2 threads of an AMD EPYC with AVX-512 BF16, machine shared); see bench/README.md.

    precision "bf16"  frozen base weights in bfloat16, trainable parameters (LoRA, norms) in
                      float32 so the optimizer updates them at full precision; run WITHOUT
                      autocast (Lightning precision "32-true"): the LoRA layers cast their small
                      input to float32 themselves, and nothing casts the big weights per step.
    precision "fp32"  nothing changes.
"""

from __future__ import annotations

BF16_PRECISIONS = ("bf16", "bf16-true", "bf16-mixed")


def wants_bf16(precision: str) -> bool:
    return precision in BF16_PRECISIONS


def cast_frozen(model, dtype) -> int:
    """Cast the floating-point parameters that do not train (and floating buffers other than
    rotary tables) to `dtype`; trainable ones keep theirs. Quantized weights (int8/NF4) are not
    floating point and stay as they are. Returns the number of tensors cast."""
    import torch

    cast = 0
    for param in model.parameters():
        if not param.requires_grad and param.is_floating_point() and param.dtype != dtype:
            param.data = param.data.to(dtype)
            cast += 1
    for name, module in model.named_modules():
        for buffer_name, buffer in module.named_buffers(recurse=False):
            # Rotary frequency tables stay float32: positions are computed from them.
            if buffer.is_floating_point() and buffer.dtype != dtype and "inv_freq" not in buffer_name:
                setattr(module, buffer_name, buffer.to(dtype))
                cast += 1
    del torch
    return cast


def prepare_for_training(model, precision: str):
    """Make a model whose trainable parameters are already chosen fast for `precision`.

    bf16: frozen weights to bfloat16 (trainable ones stay float32). Against Lightning's
    "bf16-mixed" on a float32 base, which recasts every frozen weight at every step (most of the
    step's aten::copy_), this measured 1.9x the samples/s; against "bf16-true" (everything,
    LoRA and optimizer state included, in bfloat16) it is as fast and keeps the updates in
    float32. Train it with Lightning precision "32-true" (no autocast)."""
    import torch

    if wants_bf16(precision):
        cast_frozen(model, torch.bfloat16)
    return model


def prepare_for_inference(model, precision: str):
    """Make a model fast to score with: bf16 casts every floating-point weight (adapters too)
    to bfloat16; scores then differ from float32 ones in their third digit, not in rank for
    most prompts (the scorer's log-softmax runs in float64 either way)."""
    import torch

    if wants_bf16(precision):
        for param in model.parameters():
            param.requires_grad_(False)
        cast_frozen(model, torch.bfloat16)
    model.eval()
    return model


def lightning_precision(precision: str) -> str:
    """The Lightning precision to train a model prepared by `prepare_for_training` with."""
    return "32-true" if wants_bf16(precision) else precision
