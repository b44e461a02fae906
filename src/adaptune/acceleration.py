"""Make a model fast for a precision, and find out (by measuring, not from CPU flags) whether
bfloat16 pays on this machine.

The training and scoring code call these once, after the model is loaded (and, for training,
after the adapter is attached). Measured with bench/profile_step.py and bench/compare_training.py
(SmolLM2-135M, LoRA on all linear layers, reference split, 2 threads, machine shared); see
bench/README.md for the tables.

    precision "bf16"  frozen base weights in bfloat16, trainable parameters (LoRA, norms) in
                      float32 so the optimizer updates them at full precision; trained WITHOUT
                      autocast (Lightning precision "32-true"): the LoRA layers cast their small
                      input to float32 themselves, and nothing recasts the big frozen weights at
                      every step as autocast on a float32 base does (aten::copy_: 5,740 calls a
                      step with autocast, 4,874 without).
    precision "fp32"  nothing changes.

CPU flags are not enough: an Intel Xeon that reports avx512_bf16 ran bf16 matmuls at 82 GFLOP/s
against 299 in fp32 with torch 2.13 at 2 threads, so there bf16 training is slower, not faster.
`bf16_matmul_pays` measures it in a fraction of a second. Measured and not kept: torch.compile
(333 s to compile; a 250-step run saves less than that), eager attention (no faster than SDPA).
"""

from __future__ import annotations

BF16_PRECISIONS = ("bf16", "bf16-true", "bf16-mixed")
# A matmul the size of a 135M model's MLP projection over a batch of short prompts.
PROBE_SHAPE = (256, 576, 1536)


def matmul_gflops(dtype, device: str = "cpu", shape=PROBE_SHAPE, seconds: float = 0.1) -> float:
    """GFLOP/s of a matmul of `shape` (m, k, n) in `dtype` on `device`, best of a few timings."""
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


def bf16_matmul_pays(device: str = "cpu", margin: float = 1.2, rounds: int = 5) -> bool:
    """Whether bfloat16 matmuls on `device` run at least `margin` times float32's speed, measured
    now (about 1 s): the two dtypes are timed in turns and the median ratio decides, so that a
    burst of load from another process does not flip the answer. A CUDA device that supports bf16
    is taken to (its tensor cores do)."""
    import statistics

    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    ratios = [matmul_gflops(torch.bfloat16, device) / matmul_gflops(torch.float32, device)
              for _ in range(rounds)]
    return statistics.median(ratios) >= margin


def wants_bf16(precision: str) -> bool:
    return precision in BF16_PRECISIONS


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
            if buffer.is_floating_point() and buffer.dtype != dtype and "inv_freq" not in buffer_name:
                setattr(module, buffer_name, buffer.to(dtype))
                cast += 1
    return cast


def prepare_for_training(model, precision: str):
    """Make a model whose trainable parameters are already chosen fast for `precision`.

    bf16: frozen weights to bfloat16 (trainable ones stay float32), to be trained with Lightning
    precision "32-true" (no autocast): fewer copies than autocast over a float32 base, and
    unlike "bf16-true" the LoRA weights and optimizer state stay float32. Use it only where
    `bf16_matmul_pays()`; on the Xeon of bench/README.md fp32 was faster."""
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
