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
# Graphs one process may compile before dynamo falls back to eager for new shapes: every bucket
# in training and in validation (eval mode and no_grad guard a graph of their own), with room.
RECOMPILE_LIMIT = 32
# Compiled graphs per approach and bucket in a study: the training step's and validation's.
GRAPHS_PER_BUCKET = 2


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
    import torch._dynamo.config as dynamo_config

    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, RECOMPILE_LIMIT)
    model.compile(backend="inductor", dynamic=False)
    return model


def cache_counters(since: dict[str, int] | None = None) -> dict[str, int]:
    """Inductor's cache hits and misses in this process (FX graph and AOT autograd), or those
    since an earlier reading of them."""
    from torch._dynamo.utils import counters

    names = ("fxgraph_cache_hit", "fxgraph_cache_miss", "autograd_cache_hit", "autograd_cache_miss")
    seen = {**counters["inductor"], **counters["aot_autograd"]}
    since = since or {}
    return {name: int(seen.get(name, 0)) - since.get(name, 0) for name in names}


def pad_to_bucket(batch: dict, pad_id: int, ignore: int = -100) -> dict:
    """A left-padded training batch (adaptune.train.data.Collator's) padded further on the
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


def buckets_reached(lengths) -> list[int]:
    """The buckets that prompts of these token lengths fall into (each a compiled shape)."""
    return sorted({bucket_length(n) for n in lengths})


def decide(
    eager_s: float,
    compiled_s: float,
    compile_s: float,
    graphs: int,
    study_steps: int,
    margin: float,
) -> dict:
    """Whether compiling pays in a study: the time it saves over the study's training steps
    against the compilation it costs, `compile_s` (one cold graph's) times the graphs the study
    compiles once in its shared cache. A compiled step must also be `margin` times as fast as
    an eager one, as a precision must be: a small win is within a shared machine's noise."""
    speedup = eager_s / compiled_s
    saved_s = (eager_s - compiled_s) * study_steps
    cost_s = compile_s * graphs
    choice = speedup >= margin and saved_s > cost_s
    reason = (
        f"compiled steps {speedup:.2f}x eager's speed save {saved_s:.0f} s over the "
        f"study's {study_steps} steps; compiling {graphs} graphs costs about {cost_s:.0f} s"
    )
    return {
        "choice": choice,
        "eager_s_per_step": round(eager_s, 4),
        "compiled_s_per_step": round(compiled_s, 4),
        "speedup": round(speedup, 3),
        "compile_s_per_graph": round(compile_s, 1),
        "graphs": graphs,
        "study_steps": study_steps,
        "saved_s": round(saved_s),
        "cost_s": round(cost_s),
        "reason": ("compile: " if choice else "eager: ") + reason,
    }


def resolve(setting: bool | str, decision_file: str | os.PathLike | None = None) -> bool:
    """Whether a job compiles: true or false as the config says; auto as the hardware rule's
    decision file says (its `compile` record), eager where there is none."""
    if setting != "auto":
        return bool(setting)
    if decision_file is None:
        return False
    from adaptune.hardware.precision import read_decision

    return bool(read_decision(decision_file).get("compile", {}).get("choice", False))
