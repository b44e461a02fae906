"""What the machine can do, for choices that depend on it (today: the training precision)."""

from __future__ import annotations

from pathlib import Path

# CPU flags (as /proc/cpuinfo spells them) of instructions that compute in bfloat16 natively.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The `flags` of the first processor in cpuinfo; empty where the file is absent (not Linux)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def cpu_has_bf16_instructions(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether the CPU has AVX-512 BF16 or AMX; elsewhere torch emulates bf16 slowly."""
    import torch

    # torch names the widest vector unit it dispatches to ("AVX512", "AVX2", ...); newer builds
    # name AMX. Older ones do not tell AVX-512 with BF16 apart, hence the flags.
    if "AMX" in torch.backends.cpu.get_cpu_capability():
        return True
    return bool(cpu_flags(cpuinfo) & set(BF16_CPU_FLAGS))


def cpu_supports_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """True where the CPU has bf16 instructions AND bf16 matmuls measure faster than fp32 ones.
    The flags alone mislead: an Intel Xeon with avx512_bf16 (no AMX) ran bf16 matmuls at half
    its fp32 rate (bench/README.md), so there fp32 is the fast precision."""
    from adaptune.acceleration import bf16_matmul_pays

    return cpu_has_bf16_instructions(cpuinfo) and bf16_matmul_pays("cpu")


def accelerator_supports_bf16() -> bool:
    """bf16 where training and scoring will run: the CUDA GPU if there is one, else the CPU."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_supports_bf16()


def resolve_precision(precision: str) -> str:
    """A Lightning precision string for `precision`: "auto" becomes "bf16-mixed" where the device
    computes bf16 natively, else "32-true"; any other value is returned as given."""
    if precision != "auto":
        return precision
    return "bf16-mixed" if accelerator_supports_bf16() else "32-true"


def autocast_dtype(precision: str):
    """The torch.autocast dtype for a resolved precision, or None for full precision."""
    import torch

    if precision.startswith("bf16"):
        return torch.bfloat16
    if precision.startswith("16"):
        return torch.float16
    return None
