"""The `hardware` rule's measurement: a few real training steps of the configured model under
each precision candidate (adaptune.hardware.precision), interleaved, and the decision record it
writes. Apart from adaptune.hardware.precision so that jobs which only read the decision import
no training stack."""

from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path

from adaptune.hardware.precision import (
    CANDIDATES,
    MARGIN,
    autocast_dtype,
    cuda_mixed_precision,
    decide,
)

log = logging.getLogger(__name__)
# bf16 matmuls below this fraction of fp32's rate are emulated in software (an AVX2 CPU: about
# 1 GFLOP/s against 70 at one thread); natively they run at 0.5x (AVX-512) to 4x fp32's.
EMULATED = 0.25


def candidate_step(settings, model_dir, rows, precision: str, compiled: bool = False):
    """A function that runs one training step of `precision` on the next batch of `rows`: the
    model as adaptune.train.run builds it (approach, quantization, batch size, max_length of
    `settings`), the loss of its LightningModule, AdamW, bf16-mixed under autocast. `compiled`:
    the model compiled by inductor (adaptune.hardware.compilation), batches padded to length
    buckets."""
    import torch

    from adaptune.approaches.adapters import make_trainable
    from adaptune.hardware.precision import prepare_for_training
    from adaptune.lm.encoding import pad_token_id
    from adaptune.lm.models import load_model, model_entry
    from adaptune.train.data import Collator, encode_rows, length_grouped_order

    torch.manual_seed(settings.seed)
    model, tokenizer = load_model(model_dir, settings.quantization)
    model = prepare_for_training(make_trainable(model, settings, model_entry(model_dir)), precision)
    model.train()
    examples = encode_rows(
        tokenizer, rows, settings.labels, settings.max_length, settings.truncation_side
    )
    order = length_grouped_order(
        [len(e.prompt_ids) + len(e.completion_ids) for e in examples],
        settings.batch_size,
        settings.seed,
    )
    collate = Collator(pad_token_id(tokenizer))
    size = settings.batch_size
    data = [
        collate([examples[i] for i in order[j : j + size]])
        for j in range(0, len(order) - size + 1, size)
    ]
    if compiled:
        from adaptune.hardware.compilation import compile_model, pad_to_bucket

        model = compile_model(model)
        data = [pad_to_bucket(batch, pad_token_id(tokenizer)) for batch in data]
    return training_step_function(model, data, precision)


def time_compile(
    settings,
    train_prompts,
    model_dir,
    precision: str,
    study_steps: int,
    approaches: int,
    margin: float = MARGIN,
    rounds: int = 3,
    steps: int = 2,
) -> dict:
    """Whether compiling pays (adaptune.hardware.compilation.decide), from eager against compiled
    steps of `precision` on prompts of the most common length bucket (one compiled graph), the first
    compiled step's extra time taken as one graph's compile time. The graphs of the study are
    `approaches` times the buckets its training prompts reach, times training and validation."""
    from transformers import AutoTokenizer

    from adaptune.data.prompts import read_prompts
    from adaptune.hardware import compilation
    from adaptune.train.data import encode_rows

    rows = read_prompts(train_prompts, settings.labels)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    examples = encode_rows(
        tokenizer, rows, settings.labels, settings.max_length, settings.truncation_side
    )
    lengths = [len(e.prompt_ids) + len(e.completion_ids) for e in examples]
    buckets = compilation.buckets_reached(lengths)
    common = max(buckets, key=[compilation.bucket_length(n) for n in lengths].count)
    rows = [r for r, n in zip(rows, lengths) if compilation.bucket_length(n) == common]
    rows = rows[: 8 * settings.batch_size]
    eager = candidate_step(settings, model_dir, rows, precision)
    eager()
    start = time.perf_counter()
    eager()
    eager_first = time.perf_counter() - start
    try:  # a model inductor cannot compile (a quantized layer, say) trains eagerly
        compiled = candidate_step(settings, model_dir, rows, precision, compiled=True)
        start = time.perf_counter()
        compiled()  # compiles the bucket's graph (or loads it from the study's cache)
    except Exception as error:  # noqa: BLE001 (inductor raises many kinds)
        log.warning("compiling failed: %s", error)
        return {"choice": False, "reason": f"eager: compiling failed ({type(error).__name__})"}
    compile_s = max(0.0, time.perf_counter() - start - eager_first)
    seconds = interleaved_seconds({"eager": eager, "compiled": compiled}, rounds, steps)
    record = compilation.decide(
        statistics.median(seconds["eager"]),
        statistics.median(seconds["compiled"]),
        compile_s,
        approaches * len(buckets) * compilation.GRAPHS_PER_BUCKET,
        study_steps,
        margin,
    )
    record["buckets"] = buckets
    log.info("%s", record["reason"])
    return record


def time_candidates(
    settings,
    train_prompts,
    model_dir,
    candidates=CANDIDATES,
    rounds: int = 5,
    steps: int = 2,
    warmup: int = 1,
    batches: int = 8,
) -> dict[str, list[float]]:
    """Seconds per training step of each candidate (`candidate_step` on the first `batches`
    batches of `train_prompts`), one entry per round, the candidates interleaved."""
    from adaptune.data.prompts import read_prompts

    rows = read_prompts(train_prompts, settings.labels)[: batches * settings.batch_size]
    step_of = {}
    for name in candidates:
        step_of[name] = candidate_step(settings, model_dir, rows, name)
        for _ in range(warmup):
            step_of[name]()
    return interleaved_seconds(step_of, rounds, steps)


def interleaved_seconds(step_of: dict, rounds: int, steps: int) -> dict[str, list[float]]:
    """Seconds per step of each `step()` in `step_of`, one entry per round; within a round every
    variant runs `steps` steps in turn, so round i of each saw the same load."""
    times = {name: [] for name in step_of}
    for _ in range(rounds):
        for name, step in step_of.items():
            start = time.perf_counter()
            for _ in range(steps):
                step()
            times[name].append((time.perf_counter() - start) / steps)
    return times


def training_step_function(model, batches, precision):
    """One training step on the next batch, the way Lightning runs adaptune's CompletionLM."""
    import itertools
    from contextlib import nullcontext

    import torch

    from adaptune.train.module import CompletionLM

    device = next(model.parameters()).device
    batches = [{k: v.to(device) if hasattr(v, "to") else v for k, v in b.items()} for b in batches]
    module = CompletionLM(model, settings=None, label_ids=[])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    dtype = autocast_dtype(precision)
    cycle = itertools.cycle(batches)

    def step():
        batch = next(cycle)
        with torch.autocast(device.type, dtype=dtype) if dtype else nullcontext():
            loss = module.completion_loss(module.completion_logits(batch), batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return step


def measure_and_decide(
    settings,
    train_prompts,
    model_dir,
    threads: int,
    rounds: int = 5,
    steps: int = 2,
    margin: float = MARGIN,
    candidates=CANDIDATES,
    compile_plan: dict | None = None,
) -> dict:
    """The decision record: machine, torch, per-candidate timings and the choice; with
    `compile_plan` ({"study_steps", "approaches", "cache"}) also whether to compile (time_compile).
    A bf16 candidate is not timed where bf16 matmuls run below EMULATED of fp32's rate (bf16
    emulated in software): its step cannot win, and timing it costs a minute."""
    import torch

    from adaptune.hardware.precision import matmul_gflops
    from adaptune.hardware.probe import cpu_flags, cpu_name

    record = {
        "cpu": cpu_name(),
        "cpu_bf16_flags": sorted(cpu_flags() & {"avx512_bf16", "amx_bf16", "amx_tile"}),
        "torch": torch.__version__,
        "threads": threads,
        "model": Path(model_dir).name,
        "approach": settings.approach,
        "quantization": settings.quantization,
        "batch_size": settings.batch_size,
        "margin": margin,
    }
    on_gpu = cuda_mixed_precision()
    if on_gpu:
        capability = ".".join(map(str, torch.cuda.get_device_capability()))
        record.update(
            device=torch.cuda.get_device_name(),
            choice=on_gpu,
            reason=f"a CUDA GPU of compute capability {capability}: {on_gpu}, not timed "
            "(bf16 from 8.0, where it is native; fp16 below)",
        )
        if compile_plan is not None:
            record["compile"] = {
                "choice": False,
                "reason": "eager: compilation is not timed on a GPU",
            }
        return record
    record["device"] = "cpu"
    rates = {
        name: round(matmul_gflops(dtype), 1)
        for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16))
    }
    record["matmul_gflops"] = rates
    if len(candidates) > 1 and rates["bfloat16"] < EMULATED * rates["float32"]:
        record["not_timed"] = {
            name: f"bf16 matmul {rates['bfloat16']} GFLOP/s is below "
            f"{EMULATED:.0%} of fp32's {rates['float32']}: emulated"
            for name in candidates
            if name != "32-true"
        }
        candidates = [name for name in candidates if name == "32-true"]
    if len(candidates) == 1 and candidates[0] != "32-true":  # the config's: nothing to decide
        record.update(choice=candidates[0], reason=f"{candidates[0]}: set by the config")
    else:  # fp32 alone is timed once: its speed is on record
        _time_and_choose(
            record,
            settings,
            train_prompts,
            model_dir,
            candidates,
            rounds if len(candidates) > 1 else 1,
            steps,
            margin,
        )
    log.info("precision: %s", record["reason"])
    if compile_plan is not None:
        from adaptune.hardware.compilation import use_cache

        use_cache(compile_plan["cache"])  # the graph compiled here serves the training jobs
        record["compile"] = time_compile(
            settings,
            train_prompts,
            model_dir,
            record["choice"],
            compile_plan["study_steps"],
            compile_plan["approaches"],
            margin,
        )
    return record


def _time_and_choose(record, settings, train_prompts, model_dir, candidates, rounds, steps, margin):
    """Times the candidates into `record` and sets its choice and reason."""
    seconds = time_candidates(
        settings, train_prompts, model_dir, candidates, rounds=rounds, steps=steps
    )
    choice, speedups = decide(seconds, margin)
    record["candidates"] = {
        name: {
            "seconds_per_step": [round(t, 4) for t in times],
            "median_seconds_per_step": round(statistics.median(times), 4),
            "samples_per_second": round(settings.batch_size / statistics.median(times), 3),
            "speedup_over_fp32": round(speedups[name], 3),
        }
        for name, times in seconds.items()
    }
    record["rounds"], record["steps_per_round"] = rounds, steps
    record["choice"] = choice
    best = max(speedups, key=speedups.get)
    record["reason"] = (
        f"{choice}: {speedups[choice]:.2f}x fp32's speed (median of {rounds} interleaved rounds)"
        if choice != "32-true"
        else f"32-true: no candidate was {margin:.2f}x fp32's speed or more "
        f"(best {best} at {speedups[best]:.2f}x)"
    )
