"""What each quantization of the frozen base costs and gives on this machine: speed, peak memory
and the validation loss after a few LoRA steps (an accuracy proxy), side by side.

    python bench/quantization.py [--model-dir /work/models/smollm2-135m] [--tiny-gptj]
        [--steps 8] [--threads 2]

Levels: none at fp32, none at bf16 (adaptune.hardware.precision's preparation), bitsandbytes 8-bit
(int8) and 4-bit (NF4). Each level runs in its own process (so its peak resident memory is its
own), twice, in the order A B C D D C B A, and the median seconds per step of both runs is shown:
a burst of load from the other jobs on a shared machine then hits every level alike. Every level
trains the same LoRA (r=8, all linear layers) from the same seed on the same batches of the
reference split, then reports the loss on 64 validation prompts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib

LEVELS = {
    "fp32": ("none", "fp32"),
    "bf16": ("none", "bf16"),
    "int8": ("8bit", "fp32"),
    "nf4": ("4bit", "fp32"),
}


def run_level(args) -> None:
    """One level in this process; prints a JSON line."""
    import logging

    import torch

    import compare_training

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    quantization, precision = LEVELS[args.level]
    cfg = benchlib.config()
    entry = cfg["models"][args.model]
    real = benchlib.reference_available()
    train_rows = (
        benchlib.reference_rows("train", limit=4 * args.steps)
        if real
        else benchlib.synthetic_rows(4 * args.steps)
    )
    val_rows = (
        benchlib.reference_rows("val", limit=64) if real else benchlib.synthetic_rows(64, seed=1)
    )
    model, tokenizer = compare_training.lora_model(
        args.model_dir,
        quantization,
        precision,
        entry["attention_modules"] + entry["mlp_modules"],
        dropout=0.0,
    )
    step, _ = compare_training.adaptune_step(model, tokenizer, train_rows, cfg["labels"])
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    model.eval()
    losses = []
    with torch.inference_mode():
        for batch in benchlib.adaptune_batches(tokenizer, val_rows, cfg["labels"], 16, 96):
            batch = compare_training.on_device(batch, model.device)
            width = int(batch["completion_length"])
            logits = model(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                position_ids=batch["position_ids"],
                logits_to_keep=width + 1,
                use_cache=False,
            ).logits
            losses.append(
                torch.nn.functional.cross_entropy(
                    logits[:, :-1].float().reshape(-1, logits.size(-1)),
                    batch["labels"][:, -width:].reshape(-1),
                    ignore_index=-100,
                ).item()
            )
    print(
        "LEVEL "
        + json.dumps(
            {
                "level": args.level,
                "seconds": statistics.median(times[1:] or times),
                "peak_mb": benchlib.peak_rss_mb(),
                "val_loss": statistics.mean(losses),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", default="/work/models/smollm2-135m")
    parser.add_argument(
        "--model", default="smollm2-135m", help="its config.yaml entry (for the LoRA targets)"
    )
    parser.add_argument(
        "--tiny-gptj", action="store_true", help="a tiny GPT-J built on the spot instead"
    )
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--level", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.level:
        run_level(args)
        return
    with tempfile.TemporaryDirectory() as scratch:
        if args.tiny_gptj:
            sys.path.insert(0, str(benchlib.ROOT / "tests"))
            from tiny_model import build_tiny_model

            args.model_dir, args.model = (
                str(build_tiny_model(Path(scratch) / "tiny-gptj", "gptj")),
                "gpt-j-6b",
            )
        results = {level: [] for level in LEVELS}
        order = list(LEVELS) + list(reversed(LEVELS))
        for level in order:
            command = [
                sys.executable,
                __file__,
                "--level",
                level,
                "--model-dir",
                args.model_dir,
                "--model",
                args.model,
                "--steps",
                str(args.steps),
                "--threads",
                str(args.threads),
            ]
            done = subprocess.run(command, capture_output=True, text=True)
            lines = [line for line in done.stdout.splitlines() if line.startswith("LEVEL ")]
            if done.returncode != 0 or not lines:
                print(f"{level}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
                continue
            results[level].append(json.loads(lines[-1][6:]))
    what = "tiny GPT-J" if args.tiny_gptj else args.model
    print(
        f"{benchlib.cpu_name()}, {args.threads} threads, machine shared with other jobs; "
        f"{what}, LoRA all, "
        f"batch 4, {args.steps} steps per run, runs in the order {' '.join(order)}"
    )
    print(f"{'base':<6}{'ms/step':>9}{'vs fp32':>9}{'peak MB':>9}{'val loss':>10}")
    base = statistics.median(r["seconds"] for r in results["fp32"]) if results["fp32"] else None
    for level, runs in results.items():
        if not runs:
            continue
        seconds = statistics.median(r["seconds"] for r in runs)
        print(
            f"{level:<6}{seconds * 1000:>9.0f}{(base / seconds if base else float('nan')):>8.2f}x"
            f"{max(r['peak_mb'] for r in runs):>9.0f}"
            f"{statistics.mean(r['val_loss'] for r in runs):>10.4f}"
        )


if __name__ == "__main__":
    main()
