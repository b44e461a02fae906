"""The side-by-side table of bench/compare_training.py for GPT-J-6B in 8-bit on a GPU machine.

    python bench/gpu_check.py --model-dir /path/to/gpt-j-6b      # or ADAPTUNE_GPTJ_DIR=/path/...
    python bench/gpu_check.py                                     # no weights: a tiny GPT-J

With GPT-J's weights (a directory in Hugging Face format, e.g. the float16 branch) it loads them
in bitsandbytes 8-bit, the reference study's setting, and runs a few interleaved training steps
of adaptune, the reference loop and Trainer + PEFT (LoRA on all linear layers), then the scorer
batched and one prompt at a time; about 5 minutes on one H100. Without them it builds a tiny
GPT-J on the spot (random weights) and runs the same code in under a minute, on a CPU too: a
check that the script works, not a measurement. Prompts: the reference split when
ADAPTUNE_REFERENCE_SPLIT (or the default folder) has it, else synthetic tweets.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import benchlib
import compare_training


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default=os.environ.get("ADAPTUNE_GPTJ_DIR", ""),
                        help="GPT-J-6B in Hugging Face format (default $ADAPTUNE_GPTJ_DIR); empty: a tiny GPT-J")
    parser.add_argument("--quantization", default="8bit", choices=["8bit", "4bit", "none"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--examples", type=int, default=96, help="training prompts cycled through")
    args = parser.parse_args(argv)

    import logging

    import torch

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    torch.manual_seed(0)
    started = time.perf_counter()
    cfg = benchlib.config()
    entry = cfg["models"]["gpt-j-6b"]
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else benchlib.cpu_name()
    with tempfile.TemporaryDirectory() as scratch:
        if args.model_dir:
            model_dir, what = Path(args.model_dir), "GPT-J-6B"
            if not (model_dir / "config.json").is_file():
                sys.exit(f"{model_dir}: no config.json; expected GPT-J-6B in Hugging Face format")
        else:
            sys.path.insert(0, str(benchlib.ROOT / "tests"))
            from tiny_model import build_tiny_model

            model_dir, what = build_tiny_model(Path(scratch) / "tiny-gptj", "gptj"), "tiny GPT-J (random weights)"
        rows = (benchlib.reference_rows("train", limit=args.examples) if benchlib.reference_available()
                else benchlib.synthetic_rows(args.examples))
        # The pipeline's choice on a GPU (adaptune.precision): bf16-mixed where supported.
        precision = "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32-true"
        print(f"{device}: {what}, {args.quantization}, {len(rows)} prompts, "
              f"{args.rounds} rounds x {args.steps} steps, interleaved")
        compare_training.compare(model_dir, args.quantization, precision, rows, cfg["labels"],
                                 entry["attention_modules"] + entry["mlp_modules"], args.rounds, args.steps,
                                 scoring_n=min(32, len(rows)))
    print(f"gpu_check done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
