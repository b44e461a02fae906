"""Compiled against eager training steps, per precision, and whether compiling pays in a study.

    python bench/bench_compile.py [--model-dir resources/models/<config model>]
        [--precisions 32-true bf16-base bf16-mixed] [--rounds 5] [--steps 3] [--threads 2]
        [--study-steps 2000] [--cache resources/compile-cache]

For each precision, builds the pipeline's training step
(adaptune.train.step_timing.candidate_step: config.yaml's lora_all, the LightningModule's loss,
AdamW) eager and compiled by inductor with batches padded to the length buckets of
adaptune.hardware.compilation, on the reference split's prompts. The compiled step's first pass
over every bucket is timed as its compile time (with the inductor caches in --cache: a second
run of this script shows a warm cache's cost). Then the steps are timed interleaved, and the
script prints s/step, samples/s, compiled/eager speed-up, and the break-even: steps after which the
compile time is paid back, against --study-steps (the steps a study trains). Not a test: timings
depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import time

import benchlib


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model-dir", default=None, help="default: resources/models/<config model>"
    )
    parser.add_argument("--precisions", nargs="+", default=["32-true", "bf16-base", "bf16-mixed"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--study-steps", type=int, default=2000, help="training steps of a study")
    parser.add_argument(
        "--quick", action="store_true", help="the matmul peak from one small matmul (tests)"
    )
    parser.add_argument("--cache", default=str(benchlib.ROOT / "resources/compile-cache"))
    args = parser.parse_args()

    import torch

    from adaptune.hardware.compilation import BUCKETS, use_cache
    from adaptune.train.step_timing import candidate_step

    torch.set_num_threads(args.threads)
    folder = use_cache(args.cache)
    model_dir = benchlib.model_dir(args.model_dir)
    settings = benchlib.lora_all_settings(batch_size=args.batch_size)
    rows = benchlib.reference_rows("train", limit=40 * args.batch_size)
    steps, compile_s = {}, {}
    for precision in args.precisions:
        for compiled in (False, True):
            name = f"{precision}, {'compiled' if compiled else 'eager'}"
            steps[name] = candidate_step(settings, model_dir, rows, precision, compiled=compiled)
            start = time.perf_counter()
            for _ in range(len(BUCKETS) * 2):  # enough batches to meet every bucket they fill
                steps[name]()
            compile_s[name] = time.perf_counter() - start
    shapes = {"shapes": ((256, 576, 1536),), "repeats": 2} if args.quick else {}
    peaks = {dtype: benchlib.matmul_peak(dtype, **shapes) for dtype in ("float32", "bfloat16")}
    print(
        f"\n{benchlib.cpu_name()}, {args.threads} threads, torch {torch.__version__}; "
        f"matmul peak fp32 {peaks['float32']:.0f}, bf16 {peaks['bfloat16']:.0f} GFLOP/s; "
        f"{model_dir.name}, lora_all, batch {args.batch_size}, {args.rounds} rounds x "
        f"{args.steps} steps, interleaved; cache {folder}"
    )
    seconds = benchlib.interleaved(steps, args.rounds, args.steps)
    base = seconds[f"{args.precisions[0]}, eager"]
    print(
        f"{'variant':<24}{'s/step':>8}{'samples/s':>11}{'vs first':>9}{'vs eager':>9}"
        f"{'warm-up s':>10}{'break-even':>11}{'pays':>6}"
    )
    for name, s in seconds.items():
        eager = seconds[name.replace("compiled", "eager")]
        extra = compile_s[name] - compile_s[name.replace("compiled", "eager")]
        gain = eager - s
        even = extra / gain if "compiled" in name and gain > 0 else float("inf")
        pays = "" if "eager" in name else ("yes" if even < args.study_steps else "no")
        print(
            f"{name:<24}{s:>8.4f}{args.batch_size / s:>11.2f}{base / s:>8.2f}x{eager / s:>8.2f}x"
            f"{compile_s[name]:>10.1f}{even if 'compiled' in name else 0:>11.0f}{pays:>6}"
        )


if __name__ == "__main__":
    main()
