"""Training speed and memory of each approach on the embedded default model (a few steps each).

    python bench/bench_training.py                       # all approaches, config.yaml settings
    python bench/bench_training.py --steps 5 --approaches lora_all --quantization none

Each approach runs in its own process, so the peak memory printed is that approach's alone
(peak resident memory of the process: model load included). The prompts are the first rows of
results/prompts/<style>/train.jsonl when it exists, else synthetic tweets of typical length.
Not a test: numbers vary about +-20% on shared machines.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# As the train rule does: idle OpenMP threads sleep instead of spinning (matters on a shared CPU).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

WORDS = (
    "the people game music love hate stupid day night friends school work team phone "
    "weather happy sad angry lol omg really never always bitch trash ugly nice"
).split()


def config() -> dict:
    """config.yaml with the schema's defaults for every key it leaves out, as a run sees it."""
    import yaml

    from adaptune.core.config import with_defaults

    return with_defaults(yaml.safe_load((ROOT / "config.yaml").read_text()))


def prompts(cfg: dict, style: str, n: int, directory: Path) -> tuple[Path, Path]:
    """train/val prompt files with n and n // 4 rows."""
    from adaptune.core.io import read_jsonl, write_jsonl

    source = ROOT / f"results/prompts/{style}/train.jsonl"
    if source.is_file():
        rows = read_jsonl(source)[: n + n // 4]
    else:
        rng = random.Random(0)
        labels, template = cfg["labels"], cfg["prompts"]["templates"][style]
        rows = []
        for i in range(n + n // 4):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30)))
            label = labels[i % len(labels)]
            prompt = template.replace("{labels}", ", ".join(labels)).replace("{text}", text)
            rows.append(
                {
                    "id": str(i),
                    "text": text,
                    "prompt": prompt,
                    "completion": " " + label,
                    "label": label,
                }
            )
    write_jsonl(directory / "train.jsonl", rows[:n])
    write_jsonl(directory / "val.jsonl", rows[n:])
    return directory / "train.jsonl", directory / "val.jsonl"


def run_one(args) -> None:
    """One approach in this process; prints its numbers as a JSON line."""
    import logging

    from adaptune.train.run import TrainSettings, train

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    cfg = config()
    training = cfg["training"]
    section = dict(training["approaches"][args.one])
    section.pop("enabled", None)
    if args.batch_size:
        section["batch_size"] = args.batch_size
    params = {
        "approach": args.one,
        **section,
        **{
            k: training[k]
            for k in ("seed", "precision", "optimizer", "max_length")
            if k in training
        },
        "quantization": args.quantization or cfg["quantization"],
        "labels": cfg["labels"],
        "style": args.style,
        "epochs": 1,
        "max_steps": args.steps,
        "validate_first": False,
    }
    settings = TrainSettings.from_params(params)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        train_file, val_file = prompts(cfg, args.style, args.steps * settings.batch_size, scratch)
        summary = train(settings, train_file, val_file, args.model_dir, scratch / "out")
    keys = (
        "approach",
        "quantization",
        "trainable_parameters",
        "total_parameters",
        "steps",
        "train_samples_per_second",
        "peak_memory_mb",
    )
    print(
        "BENCH " + json.dumps({k: summary[k] for k in keys} | {"batch_size": settings.batch_size})
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model-dir", default=None, help="prepared model (default resources/models/<config model>)"
    )
    parser.add_argument(
        "--approaches", nargs="+", default=["layernorm", "lora_attention", "lora_all"]
    )
    parser.add_argument("--steps", type=int, default=6, help="training steps per approach")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default: the approach's config value"
    )
    parser.add_argument("--quantization", choices=["8bit", "4bit", "none"], default=None)
    parser.add_argument("--style", default="instruction")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cfg = config()
    args.model_dir = args.model_dir or str(ROOT / "resources/models" / cfg["model"])
    if args.one:
        run_one(args)
        return
    if not Path(args.model_dir).is_dir():
        from adaptune.lm.prepare import prepare_model

        print(f"preparing {cfg['model']} into {args.model_dir} ...", file=sys.stderr)
        prepare_model({"name": cfg["model"], **cfg["models"][cfg["model"]]}, args.model_dir)
    print(
        f"{'approach':<16}{'quant':>6}{'batch':>6}{'steps':>6}{'trainable':>12}{'total':>13}"
        f"{'samples/s':>11}{'peak MB':>9}"
    )
    for approach in args.approaches:
        command = [
            sys.executable,
            __file__,
            "--one",
            approach,
            "--model-dir",
            args.model_dir,
            "--steps",
            str(args.steps),
            "--style",
            args.style,
        ]
        command += ["--batch-size", str(args.batch_size)] if args.batch_size else []
        command += ["--quantization", args.quantization] if args.quantization else []
        done = subprocess.run(command, capture_output=True, text=True)
        lines = [l for l in done.stdout.splitlines() if l.startswith("BENCH ")]
        if done.returncode != 0 or not lines:
            print(f"{approach}: failed\n{done.stderr[-3000:]}", file=sys.stderr)
            continue
        r = json.loads(lines[-1][6:])
        print(
            f"{approach:<16}{r['quantization']:>6}{r['batch_size']:>6}{r['steps']:>6}"
            f"{r['trainable_parameters']:>12,}{r['total_parameters']:>13,}"
            f"{r['train_samples_per_second']:>11.2f}{r['peak_memory_mb']:>9.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
