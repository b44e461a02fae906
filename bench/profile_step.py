"""Where a LoRA training step's time goes, and what each speed-up is worth, measured side by side.

    python bench/profile_step.py [--model-dir /work/models/smollm2-135m] [--rounds 5] [--steps 3]
                                 [--compile] [--profile]

Builds one model per variant (SmolLM2, no quantization, LoRA r=8 on all linear layers) and times
adaptune's training step (loss on the completion tokens, logits_to_keep, AdamW) on the same
batches of the reference split, the variants interleaved round by round; prints the median
seconds per step, samples/s, achieved GFLOP/s and the ratio to today's bf16-mixed path.
--profile prints torch.profiler's top operators (and aten::copy_ calls) for bf16-mixed and the
two fp32 variants; --compile adds torch.compile of the fastest eager variant, with its compile time.
"""

from __future__ import annotations

import argparse
import time

import benchlib


def build(model_dir, precision: str, dropout: float = 0.05, attention: str = "sdpa"):
    """(model, step function factory) for one variant."""
    import torch
    from peft import LoraConfig, get_peft_model

    from adaptune.acceleration import prepare_for_training
    from adaptune.models import load_model

    model, tokenizer = load_model(model_dir, "none")
    model.set_attn_implementation(attention)
    for param in model.parameters():
        param.requires_grad = False
    entry = benchlib.config()["models"]["smollm2-135m"]
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=dropout, bias="none", task_type="CAUSAL_LM",
                        target_modules=entry["attention_modules"] + entry["mlp_modules"])
    model = get_peft_model(model, config)
    if precision == "bf16-true":
        model = model.to(torch.bfloat16)
    elif precision == "bf16":
        prepare_for_training(model, "bf16")
    model.train()
    return model, tokenizer


def step_function(model, batches, autocast: bool):
    """adaptune's training step (as its LightningModule computes it) on `batches` in turn."""
    import itertools

    import torch

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    cycle = itertools.cycle(batches)
    loss_of = benchlib.adaptune_loss(model)

    def step():
        batch = next(cycle)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = loss_of(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    return step


def profile(name, step) -> None:
    from torch.profiler import ProfilerActivity, profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    print(f"\nprofile of one step, {name}: {total / 1e3:.0f} ms of operator self time")
    for e in sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:10]:
        print(f"  {e.key:<40}{e.self_cpu_time_total / total:>7.1%}{e.count:>7} calls")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default="/work/models/smollm2-135m")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = benchlib.config()
    variants = {  # name: (precision, autocast, dropout, attention)
        "bf16-mixed (fp32 base, autocast)": ("fp32", True, 0.05, "sdpa"),
        "bf16-true (all bf16)": ("bf16-true", False, 0.05, "sdpa"),
        "bf16 base, fp32 LoRA": ("bf16", False, 0.05, "sdpa"),
        "bf16 base, fp32 LoRA, dropout 0": ("bf16", False, 0.0, "sdpa"),
        "bf16 base, fp32 LoRA, eager attn": ("bf16", False, 0.05, "eager"),
        "fp32, LoRA dropout 0.05": ("fp32", False, 0.05, "sdpa"),
        "fp32, no dropout (the default)": ("fp32", False, 0.0, "sdpa"),
    }
    rows = benchlib.reference_rows("train")
    steps, flops = {}, {}
    for name, (precision, autocast, dropout, attention) in variants.items():
        model, tokenizer = build(args.model_dir, precision, dropout, attention)
        batches = benchlib.adaptune_batches(tokenizer, rows[:40 * args.batch_size], cfg["labels"],
                                            args.batch_size, 96)
        steps[name] = step_function(model, batches, autocast)
        steps[name]()  # warm-up
        flops[name] = benchlib.count_flops(steps[name]) / args.batch_size
    if args.compile:
        precision, autocast, dropout, attention = variants["bf16 base, fp32 LoRA, dropout 0"]
        model, tokenizer = build(args.model_dir, precision, dropout, attention)
        model = torch.compile(model, dynamic=True)
        batches = benchlib.adaptune_batches(tokenizer, rows[:40 * args.batch_size], cfg["labels"], args.batch_size, 96)
        name = "bf16 base, dropout 0, compiled"
        steps[name] = step_function(model, batches, autocast)
        start = time.perf_counter()
        for _ in range(3):  # the first steps compile (dynamic shapes: once, then a recompile at most)
            steps[name]()
        print(f"torch.compile: first 3 steps took {time.perf_counter() - start:.1f} s")
        flops[name] = flops["bf16 base, fp32 LoRA, dropout 0"]
    if args.profile:
        for name in ["bf16-mixed (fp32 base, autocast)", "fp32, LoRA dropout 0.05", "fp32, no dropout (the default)"]:
            profile(name, steps[name])
    peak = benchlib.matmul_peak("bfloat16")
    print(f"\n{benchlib.cpu_name()}, {args.threads} threads (machine shared with other jobs); "
          f"bf16 matmul peak {peak:.0f} GFLOP/s; batch {args.batch_size}, {args.rounds} rounds x {args.steps} steps, interleaved")
    seconds = benchlib.interleaved(steps, args.rounds, args.steps)
    base = seconds["bf16-mixed (fp32 base, autocast)"]
    print(f"{'variant':<36}{'s/step':>8}{'samples/s':>11}{'GFLOP/s':>9}{'of peak':>9}{'speed-up':>10}")
    for name, s in seconds.items():
        gflops = flops[name] * args.batch_size / s / 1e9
        print(f"{name:<36}{s:>8.3f}{args.batch_size / s:>11.2f}{gflops:>9.0f}{gflops / peak:>9.1%}{base / s:>9.2f}x")


if __name__ == "__main__":
    main()
