"""Where a LoRA training step's time goes, per precision, measured side by side.

    python bench/profile_step.py [--model-dir resources/models/<config model>] [--precision auto]
                                 [--rounds 5] [--steps 3] [--threads 2] [--profile]

Builds one model per variant (the config's model, no quantization, config.yaml's lora_all: LoRA
on all linear layers) and times the training step the pipeline runs (adaptune.train.step_timing's
candidate_step: the LightningModule's loss on the completion tokens, logits_to_keep, AdamW) on
the same batches of the reference split (data/reference_train.csv, where the pipeline puts it),
the variants interleaved round by round. Variants: the three precision candidates, and fp32
with LoRA dropout 0.05 (PEFT's usual setting; the config has none). Prints the median seconds
per step, samples/s, achieved GFLOP/s, its fraction of the matmul peak of the variant's dtype
(measured by the same run), and the speed-up over fp32. --precision auto (the default) marks the
pipeline's choice: results/hardware/precision.json, or measured now where the pipeline has not
run. --profile prints torch.profiler's top operators for each precision.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import benchlib

CANDIDATE_DTYPE = {"32-true": "float32", "bf16-base": "bfloat16", "bf16-mixed": "bfloat16"}


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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model-dir", default=None, help="default: resources/models/<config model>"
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=["auto", *CANDIDATE_DTYPE],
        help="the precision to mark as the pipeline's (auto: its decision)",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--emulated-too",
        action="store_true",
        help="time the bf16 variants even where bf16 is emulated (slow)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="the matmul peak from one small matmul (tests)"
    )
    args = parser.parse_args()

    import torch

    from adaptune.train.step_timing import EMULATED, candidate_step

    torch.set_num_threads(args.threads)
    model_dir = benchlib.model_dir(args.model_dir)
    chosen, source = benchlib.resolve_precision(args.precision, model_dir)
    settings = benchlib.lora_all_settings(batch_size=args.batch_size)
    rows = benchlib.reference_rows("train", limit=40 * args.batch_size)
    shapes = {"shapes": ((256, 576, 1536),), "repeats": 2} if args.quick else {}
    peaks = {dtype: benchlib.matmul_peak(dtype, **shapes) for dtype in ("float32", "bfloat16")}
    # As the hardware rule does: bf16 emulated in software (an AVX2 CPU) is not worth timing.
    emulated = peaks["bfloat16"] < EMULATED * peaks["float32"] and not args.emulated_too
    variants = {
        name: (settings, name, dtype)
        for name, dtype in CANDIDATE_DTYPE.items()
        if not (emulated and dtype == "bfloat16")
    }
    variants["32-true, LoRA dropout 0.05"] = (
        replace(settings, lora=replace(settings.lora, dropout=0.05)),
        "32-true",
        "float32",
    )
    steps, flops = {}, {}
    for name, (these, precision, _) in variants.items():
        steps[name] = candidate_step(these, model_dir, rows, precision)
        steps[name]()  # warm-up
        flops[name] = benchlib.count_flops(steps[name]) / args.batch_size
    if args.profile:
        for name in CANDIDATE_DTYPE:
            if name in steps:
                profile(name, steps[name])
    print(
        f"\n{benchlib.cpu_name()}, {args.threads} threads, torch {torch.__version__}; "
        f"matmul peak fp32 {peaks['float32']:.0f}, bf16 {peaks['bfloat16']:.0f} GFLOP/s; "
        f"{model_dir.name}, lora_all, batch "
        f"{args.batch_size}, {args.rounds} rounds x {args.steps} steps, interleaved"
    )
    print(f"pipeline's precision: {chosen} ({source})")
    if emulated:
        print(f"bf16 variants left out: bf16 matmul below {EMULATED:.0%} of fp32's (emulated)")
    seconds = benchlib.interleaved(steps, args.rounds, args.steps)
    base = seconds["32-true"]
    print(
        f"{'variant':<30}{'s/step':>8}{'samples/s':>11}{'GFLOP/s':>9}{'of peak':>9}{'vs fp32':>9}"
    )
    for name, s in seconds.items():
        gflops = flops[name] * args.batch_size / s / 1e9
        mark = "  <- pipeline" if name == chosen else ""
        print(
            f"{name:<30}{s:>8.4f}{args.batch_size / s:>11.2f}{gflops:>9.0f}"
            f"{gflops / peaks[variants[name][2]]:>9.1%}{base / s:>8.2f}x{mark}"
        )


if __name__ == "__main__":
    main()
