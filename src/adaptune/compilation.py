"""torch.compile (inductor) whose compilation is paid once per study, not once per job.

Every job of a study points inductor's on-disk caches (the FX-graph cache and the AOT-autograd
cache) at one folder keyed by torch version and CPU (`cache_dir`), so the second job that
compiles a graph of the same shapes loads it instead of compiling it. Prompts are padded to a
few fixed lengths (`bucket_length`), so a study compiles one graph per bucket, not one per
batch width. Inductor keys each entry by the graph, its shapes and its own configuration too:
a folder per torch version and CPU only keeps stale kinds apart and easy to delete.
"""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

# Padded prompt lengths (tokens): training prompts average 51 tokens, p99 82, max 108.
BUCKETS = (32, 64, 96, 128)


def cpu_key() -> str:
    """A short name of this CPU kind: model name and the instruction-set flags that choose
    inductor's kernels (a cache compiled for AVX-512 must not be loaded on an AVX2 CPU)."""
    model, flags = platform.processor() or platform.machine(), ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = " ".join(sorted(f for f in value.split() if f.startswith(("avx", "amx"))))
                break
    except OSError:
        pass
    digest = hashlib.sha256(f"{model}|{flags}".encode()).hexdigest()[:10]
    return f"{platform.machine()}-{digest}"


def cache_dir(root: str | os.PathLike, torch_version: str | None = None) -> Path:
    """`root`/<torch version>-<cpu key>: the study's compile cache for this torch and CPU."""
    import torch

    version = (torch_version or torch.__version__).replace("+", "_")
    return Path(root) / f"{version}-{cpu_key()}"


def use_cache(root: str | os.PathLike, torch_version: str | None = None) -> Path:
    """Point inductor's FX-graph and AOT-autograd caches at the study's folder under `root`
    (before the first compile of the process). Returns the folder."""
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    folder = cache_dir(root, torch_version)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
    inductor_config.fx_graph_cache = True
    functorch_config.enable_autograd_cache = True
    return folder


def bucket_length(length: int, buckets: tuple[int, ...] = BUCKETS) -> int:
    """The smallest bucket that holds `length` tokens; a longer prompt keeps its own length."""
    for bucket in buckets:
        if length <= bucket:
            return bucket
    return length


def compile_model(model):
    """The model's forward compiled by inductor, in place (parameters and state dict unchanged),
    with fixed shapes: the buckets bound how many graphs a study compiles."""
    model.compile(backend="inductor", dynamic=False)
    return model


def cache_counters() -> dict[str, int]:
    """Inductor's cache hits and misses in this process (FX graph and AOT autograd)."""
    from torch._dynamo.utils import counters

    names = ("fxgraph_cache_hit", "fxgraph_cache_miss", "autograd_cache_hit", "autograd_cache_miss")
    seen = {**counters["inductor"], **counters["aot_autograd"]}
    return {name: int(seen.get(name, 0)) for name in names}


def pad_to_bucket(batch: dict, pad_id: int, ignore: int = -100) -> dict:
    """A left-padded training batch (adaptune.training_data.Collator's) padded further on the
    left to its bucket's width: same loss, one of a few shapes for the compiled graph."""
    import torch

    width = batch["input_ids"].size(1)
    extra = bucket_length(width) - width
    if extra == 0:
        return batch
    fill = {"input_ids": pad_id, "attention_mask": 0, "position_ids": 0, "labels": ignore}
    padded = dict(batch)
    for key, value in fill.items():
        if key in batch:
            tensor = batch[key]
            left = torch.full((tensor.size(0), extra), value, dtype=tensor.dtype)
            padded[key] = torch.cat([left, tensor], dim=1)
    return padded
