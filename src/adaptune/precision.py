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
path, and a small win is not worth the bf16 rounding. On a CUDA GPU that supports bf16 the choice
is bf16-mixed without timing (its tensor cores compute bf16 at several times the fp32 rate).

Jobs with `training.precision: auto` read only the choice from the file; the timings never reach
a run's fingerprint or its results.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
from pathlib import Path

CANDIDATES = ("32-true", "bf16-base", "bf16-mixed")
MARGIN = 1.10  # a candidate must be at least 10% faster than fp32 to be chosen
# Precisions a config may name; "auto" reads the decision file.
PRECISIONS = ("auto", "32-true", "bf16-base", "bf16-mixed", "16-mixed", "bf16-true")

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- using a precision


def lightning_precision(precision: str) -> str:
    """The Lightning Trainer precision of a resolved precision: bf16-base trains without autocast."""
    return "32-true" if precision == "bf16-base" else precision


def autocast_dtype(precision: str):
    """The torch.autocast dtype of a resolved precision (mixed ones only), or None."""
    import torch

    return {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)


def resolve(precision: str, decision_file: str | os.PathLike | None = None) -> str:
    """The precision to run under: an explicit one as given; "auto" the decision file's choice.
    Without a decision file (a direct call, not the pipeline) "auto" is bf16-mixed on a CUDA GPU
    that supports bf16 and fp32 elsewhere: unmeasured, fp32 is never the slow choice by much."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: got {precision!r}, expected one of {list(PRECISIONS)}")
    if precision != "auto":
        return precision
    if decision_file is not None:
        return read_decision(decision_file)["choice"]
    return "bf16-mixed" if _cuda_bf16() else "32-true"


def read_decision(path: str | os.PathLike) -> dict:
    """The decision file, checked: its `choice` must be one of CANDIDATES."""
    path = Path(path)
    try:
        decision = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable precision decision ({error}); "
                         "delete it and rerun the `hardware` rule") from None
    choice = decision.get("choice") if isinstance(decision, dict) else None
    if choice not in CANDIDATES:
        raise ValueError(f"{path}: choice: got {choice!r}, expected one of {list(CANDIDATES)}")
    return decision


def _cuda_bf16() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


# ---------------------------------------------------------------------------- deciding


def decide(seconds: dict[str, list[float]], margin: float = MARGIN) -> tuple[str, dict[str, float]]:
    """(choice, median speed-up over fp32 of each candidate) from per-round seconds per step
    (the rounds of all candidates interleaved, so round i of each saw the same load)."""
    if "32-true" not in seconds:
        raise ValueError("timings must include 32-true, the reference")
    base = seconds["32-true"]
    speedups = {name: statistics.median(b / t for b, t in zip(base, times))
                for name, times in seconds.items()}
    best = max(speedups, key=speedups.get)
    return (best if best != "32-true" and speedups[best] >= margin else "32-true"), speedups


def candidate_step(settings, model_dir, rows, precision: str):
    """A function that runs one training step of `precision` on the next batch of `rows`: the
    model as adaptune.training builds it (approach, quantization, batch size, max_length of
    `settings`), the loss of its LightningModule, AdamW, bf16-mixed under autocast."""
    import torch

    from adaptune.acceleration import prepare_for_training
    from adaptune.adapters import make_trainable
    from adaptune.batches import pad_token_id
    from adaptune.models import load_model, model_entry
    from adaptune.training_data import Collator, encode_rows, length_grouped_order

    torch.manual_seed(settings.seed)
    model, tokenizer = load_model(model_dir, settings.quantization)
    model = prepare_for_training(make_trainable(model, settings, model_entry(model_dir)), precision)
    model.train()
    examples = encode_rows(tokenizer, rows, settings.labels, settings.max_length, settings.truncation_side)
    order = length_grouped_order([len(e.prompt_ids) + len(e.completion_ids) for e in examples],
                                 settings.batch_size, settings.seed)
    collate = Collator(pad_token_id(tokenizer))
    size = settings.batch_size
    data = [collate([examples[i] for i in order[j:j + size]]) for j in range(0, len(order) - size + 1, size)]
    return _step(model, data, precision)


def time_candidates(settings, train_prompts, model_dir, candidates=CANDIDATES, rounds: int = 5,
                    steps: int = 2, warmup: int = 1, batches: int = 8) -> dict[str, list[float]]:
    """Seconds per training step of each candidate (`candidate_step` on the first `batches`
    batches of `train_prompts`), one entry per round, the candidates interleaved."""
    from adaptune.prompts import read_prompts

    rows = read_prompts(train_prompts, settings.labels)[: batches * settings.batch_size]
    step_of = {}
    for name in candidates:
        step_of[name] = candidate_step(settings, model_dir, rows, name)
        for _ in range(warmup):
            step_of[name]()
    times = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, step in step_of.items():
            start = time.perf_counter()
            for _ in range(steps):
                step()
            times[name].append((time.perf_counter() - start) / steps)
    return times


def _step(model, batches, precision):
    """One training step on the next batch, the way Lightning runs adaptune's CompletionLM."""
    import itertools
    from contextlib import nullcontext

    import torch

    from adaptune.training_module import CompletionLM

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


def measure_and_decide(settings, train_prompts, model_dir, threads: int, rounds: int = 5,
                       steps: int = 2, margin: float = MARGIN) -> dict:
    """The decision record: machine, torch, per-candidate timings and the choice."""
    import torch

    from adaptune.acceleration import matmul_gflops
    from adaptune.hardware import cpu_flags, cpu_name

    record = {"cpu": cpu_name(), "cpu_bf16_flags": sorted(cpu_flags() & {"avx512_bf16", "amx_bf16", "amx_tile"}),
              "torch": torch.__version__, "threads": threads, "model": Path(model_dir).name,
              "approach": settings.approach, "quantization": settings.quantization,
              "batch_size": settings.batch_size, "margin": margin}
    if _cuda_bf16():
        record.update(device=torch.cuda.get_device_name(), choice="bf16-mixed",
                      reason="a CUDA GPU that supports bf16: bf16-mixed, not timed")
        return record
    record["device"] = "cpu"
    record["matmul_gflops"] = {name: round(matmul_gflops(dtype), 1) for name, dtype in
                               (("float32", torch.float32), ("bfloat16", torch.bfloat16))}
    seconds = time_candidates(settings, train_prompts, model_dir, rounds=rounds, steps=steps)
    choice, speedups = decide(seconds, margin)
    record["candidates"] = {
        name: {"seconds_per_step": [round(t, 4) for t in times],
               "median_seconds_per_step": round(statistics.median(times), 4),
               "samples_per_second": round(settings.batch_size / statistics.median(times), 3),
               "speedup_over_fp32": round(speedups[name], 3)}
        for name, times in seconds.items()}
    record["rounds"], record["steps_per_round"] = rounds, steps
    record["choice"] = choice
    best = max(speedups, key=speedups.get)
    record["reason"] = (f"{choice}: {speedups[choice]:.2f}x fp32's speed (median of {rounds} interleaved rounds)"
                        if choice != "32-true" else
                        f"32-true: no candidate was {margin:.2f}x fp32's speed or more "
                        f"(best {best} at {speedups[best]:.2f}x)")
    log.info("precision: %s", record["reason"])
    return record
