"""What a pipeline training cell adds to the bare training step, measured side by side.

    python bench/cell_overhead.py [--model-dir resources/models/<config model>] [--steps 12]
                                  [--rounds 2] [--threads 2] [--precision auto]

Times, interleaved round by round on the same prompts (the reference split's train.csv),
  bare step      adaptune.train.step_timing.candidate_step: the loss, backward and AdamW step alone
  cell           adaptune.train.run.train as a pipeline job runs it (Lightning's loop, its
                 deterministic mode, per-step logging, checkpoints, the progress bar), timed by
                 its own TrainTimer (validation and model loading excluded)
  cell, ...      the same with one part switched off, to see what each costs.
Prints samples/s of each and its ratio to the bare step.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import benchlib

# Trainer arguments changed for each variant of the cell.
VARIANTS = {
    "cell (as the pipeline runs it)": {},
    "cell, deterministic off": {"deterministic": False},
    "cell, no progress bar": {"enable_progress_bar": False},
    "cell, logging every 50 steps": {"log_every_n_steps": 50},
}


def run_cell(settings, prompts, val, model_dir, scratch, overrides) -> float:
    import pytorch_lightning as pl

    from adaptune.train import run as training

    original = pl.Trainer.__init__

    def patched(self, *args, **kwargs):
        callbacks = kwargs.get("callbacks", [])
        if overrides.get("enable_progress_bar") is False:
            kwargs["callbacks"] = [
                c for c in callbacks if not isinstance(c, pl.callbacks.TQDMProgressBar)
            ]
        kwargs.update(overrides)
        original(self, *args, **kwargs)

    pl.Trainer.__init__ = patched
    try:
        out = Path(tempfile.mkdtemp(dir=scratch))
        summary = training.train(settings, prompts, val, model_dir, out / "cell")
    finally:
        pl.Trainer.__init__ = original
    return summary["train_samples_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()

    import logging
    from dataclasses import replace

    import torch

    from adaptune.core.io import write_jsonl
    from adaptune.train.step_timing import candidate_step

    logging.disable(logging.WARNING)
    torch.set_num_threads(args.threads)
    model_dir = benchlib.model_dir(args.model_dir)
    precision, source = benchlib.resolve_precision(args.precision, model_dir)
    settings = replace(
        benchlib.lora_all_settings(),
        precision=precision,
        max_steps=args.steps,
        validate_first=False,
        val_checks_per_epoch=1,
        checkpoint_every_n_steps=50,
    )
    rows = benchlib.reference_rows("train", limit=4 * args.steps)
    with tempfile.TemporaryDirectory() as scratch:
        prompts, val = Path(scratch) / "train.jsonl", Path(scratch) / "val.jsonl"
        write_jsonl(prompts, rows)
        write_jsonl(val, rows[:8])
        step = candidate_step(settings, model_dir, rows, precision)
        step()
        rates = {"bare step": [], **{name: [] for name in VARIANTS}}
        for _ in range(args.rounds):
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            rates["bare step"].append(4 * args.steps / (time.perf_counter() - start))
            for name, overrides in VARIANTS.items():
                rates[name].append(run_cell(settings, prompts, val, model_dir, scratch, overrides))
    print(
        f"\n{benchlib.cpu_name()}, {args.threads} threads, torch {torch.__version__}; "
        f"{model_dir.name}, lora_all, batch 4, {precision} ({source}); "
        f"{args.rounds} rounds x {args.steps} steps, interleaved"
    )
    print(f"{'variant':<34}{'samples/s':>10}{'of bare':>9}")
    bare = statistics.median(rates["bare step"])
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"{name:<34}{rate:>10.2f}{rate / bare:>9.0%}")


if __name__ == "__main__":
    main()
