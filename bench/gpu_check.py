"""One prepared script for a machine with GPUs: the side-by-side table of
bench/compare_training.py for GPT-J-6B in 8-bit, then the multi-GPU features on a tiny GPT-J.

    python bench/gpu_check.py --model-dir /path/to/gpt-j-6b      # or ADAPTUNE_GPTJ_DIR=/path/...
    python bench/gpu_check.py                                     # no weights: a tiny GPT-J
    python bench/gpu_check.py --checks features                   # the features alone

Then the memory of training as configs/gpt-j-6b.yaml does (`--checks memory`): lora_all at its
batch and max_length with 8-bit AdamW, a few steps without and with gradient checkpointing, each
printed with its peak GPU memory (torch.cuda.max_memory_allocated; on a CPU the process's peak).

The features (`--checks features`; all three parts run by default), each printed with what it saw:
  devices       the lock-file allocator with the machine's real GPU count: one job more than
                there are GPUs, run at once; each gets its own device, the last one waits for a
                device that a killed job gives back (on a CPU: 2 pretend devices);
  accumulation  batch 2 x accumulation 2 against batch 4 on the tiny GPT-J (unquantized,
                fp32): the adapters' largest difference;
  ddp           with more than one GPU, two DDP processes with batch 2 each against one
                process with batch 4 (skipped on one GPU or a CPU, with the reason;
                tests/test_multidevice_training.py runs it on the CPU with gloo);
  export        the accumulation adapter merged by `adaptune export`, loaded by transformers
                alone on the device, scored against base + adapter.

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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model-dir",
        default=os.environ.get("ADAPTUNE_GPTJ_DIR", ""),
        help="GPT-J-6B in Hugging Face format (default $ADAPTUNE_GPTJ_DIR); empty: a tiny GPT-J",
    )
    parser.add_argument("--quantization", default="8bit", choices=["8bit", "4bit", "none"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--examples", type=int, default=96, help="training prompts cycled through")
    parser.add_argument(
        "--checks",
        choices=["all", "comparison", "memory", "features"],
        default="all",
        help="the training comparison, GPT-J's training memory, the multi-GPU "
        "features, or all three (default)",
    )
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

            model_dir, what = (
                build_tiny_model(Path(scratch) / "tiny-gptj", "gptj"),
                "tiny GPT-J (random weights)",
            )
        rows = (
            benchlib.reference_rows("train", limit=args.examples)
            if benchlib.reference_available()
            else benchlib.synthetic_rows(args.examples)
        )
        # The pipeline's choice on a GPU (adaptune.hardware.precision): bf16-mixed from compute
        # capability 8.0, 16-mixed below; fp32 on a CPU.
        from adaptune.hardware.precision import resolve

        precision = resolve("auto")
        if args.checks in ("all", "comparison"):
            print(
                f"{device}: {what}, {args.quantization}, {len(rows)} prompts, "
                f"{args.rounds} rounds x {args.steps} steps, interleaved"
            )
            compare_training.compare(
                model_dir,
                args.quantization,
                precision,
                rows,
                cfg["labels"],
                entry["attention_modules"] + entry["mlp_modules"],
                args.rounds,
                args.steps,
                scoring_n=min(32, len(rows)),
            )
        if args.checks in ("all", "memory"):
            check_memory(Path(scratch), model_dir, entry, cfg, args.quantization, rows)
        if args.checks in ("all", "features"):
            features(Path(scratch), entry, cfg)
    print(f"gpu_check done in {time.perf_counter() - started:.0f} s")


# ---------------------------------------------------------------------------- the memory


def check_memory(
    scratch: Path, model_dir: Path, entry: dict, cfg: dict, quantization: str, rows: list[dict]
) -> None:
    """A few steps of training as configs/gpt-j-6b.yaml sets it (lora_all), without and with
    gradient checkpointing, each with the peak memory it reached."""
    import torch
    import yaml

    from adaptune.core.io import write_json, write_jsonl
    from adaptune.hardware.precision import resolve
    from adaptune.train.run import LoraSettings, train

    study = yaml.safe_load((benchlib.ROOT / "configs" / "gpt-j-6b.yaml").read_text())["training"]
    approach = study["approaches"]["lora_all"]
    # The weights as they are, beside the record that training reads (prepare_model writes it).
    view = scratch / "memory-model"
    view.mkdir()
    for item in Path(model_dir).iterdir():
        if item.name != "adaptune_model.json":
            (view / item.name).symlink_to(item.resolve())
    write_json(
        view / "adaptune_model.json",
        {**entry, "name": "gpt-j-6b", "source": "local", "path": str(model_dir)},
    )
    write_jsonl(scratch / "memory-train.jsonl", rows[: 4 * approach["batch_size"]])
    write_jsonl(scratch / "memory-val.jsonl", rows[:8])
    precision = resolve(study["precision"])
    for checkpointing in (False, True):
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        settings = _settings(
            cfg,
            learning_rate=approach["learning_rate"],
            batch_size=approach["batch_size"],
            max_length=study["max_length"],
            quantization=quantization,
            optimizer=study["optimizer"],
            precision=precision,
            max_steps=3,
            gradient_checkpointing=checkpointing,
            lora=LoraSettings(**approach["lora"]),
        )
        summary = train(
            settings,
            scratch / "memory-train.jsonl",
            scratch / "memory-val.jsonl",
            view,
            scratch / f"memory-{int(checkpointing)}",
        )
        what = (
            f"memory: lora_all, batch {settings.batch_size}, {settings.max_length} tokens, "
            f"{quantization}, {precision}, "
            f"gradient checkpointing {'on' if checkpointing else 'off'}"
        )
        gpu = summary["peak_gpu_memory_mb"]
        print(
            f"{what}: peak GPU memory {gpu:.0f} MB (torch.cuda.max_memory_allocated)"
            if gpu is not None
            else f"{what}: no GPU; peak memory of the process {summary['peak_memory_mb']:.0f} MB"
        )


# ---------------------------------------------------------------------------- the features

JOB = """
import sys
from adaptune.hardware.devices import claim_devices
ids = claim_devices(1, wait_s=120, poll_s=0.2)
print(",".join(ids), flush=True)
sys.stdin.read()
"""

DDP_SCRIPT = """
import json, sys
from adaptune.train.run import LoraSettings, TrainSettings, train
values = json.loads(open(sys.argv[1]).read())
values["lora"] = LoraSettings(**values["lora"])
values["labels"] = tuple(values["labels"])
train(TrainSettings(**values), *sys.argv[2:])
"""


def features(scratch: Path, entry: dict, cfg: dict) -> None:
    """The allocator, accumulation, DDP and export on a tiny GPT-J, each printed as seen."""
    import torch

    from adaptune.hardware.devices import visible_devices

    sys.path.insert(0, str(benchlib.ROOT / "tests"))
    from tiny_model import build_tiny_model

    gpus = len(visible_devices())
    print(
        f"\nfeatures: {gpus} GPU(s) visible "
        f"({torch.cuda.get_device_name(0) if gpus else 'none: CPU'})"
    )
    check_devices(scratch, gpus)
    model_dir = build_tiny_model(scratch / "features-gptj", "gptj")
    from adaptune.core.io import write_json, write_jsonl

    write_json(
        model_dir / "adaptune_model.json",
        {**entry, "name": "gpt-j-6b", "source": "local", "path": str(model_dir)},
    )
    rows = benchlib.synthetic_rows(32)
    write_jsonl(scratch / "train.jsonl", rows[:24])
    write_jsonl(scratch / "val.jsonl", rows[24:])
    single, accumulated = check_accumulation(scratch, model_dir, cfg)
    check_ddp(scratch, model_dir, cfg, gpus, single)
    check_export(scratch, model_dir, accumulated, cfg)


def check_devices(scratch: Path, gpus: int) -> None:
    import signal
    import subprocess

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID", "LOCAL_RANK")
    }
    env.update(PYTHONPATH=str(benchlib.ROOT / "src"), ADAPTUNE_GPU_LOCKS=str(scratch / "locks"))
    pool = gpus or 2
    if not gpus:
        env["ADAPTUNE_GPUS"] = str(pool)
        print(f"devices: no GPU here; the allocator runs against {pool} pretend devices")
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", JOB],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(pool)
    ]
    got = [job.stdout.readline().strip() for job in jobs]
    print(
        f"devices: {pool} concurrent jobs got CUDA_VISIBLE_DEVICES {got} "
        f"({'distinct' if len(set(got)) == pool else 'NOT DISTINCT'})"
    )
    late = subprocess.Popen(
        [sys.executable, "-c", JOB],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(2)
    print(f"devices: one job more waits: {'yes' if late.poll() is None else 'NO, it ended'}")
    jobs[0].send_signal(signal.SIGKILL)
    jobs[0].wait()
    print(
        f"devices: after SIGKILL of the job on {got[0]}, "
        f"the waiting job got {late.stdout.readline().strip()}"
    )
    for job in jobs[1:] + [late]:
        job.stdin.close()
        job.wait()


def _settings(cfg: dict, **overrides):
    from adaptune.train.run import LoraSettings, TrainSettings

    values = dict(
        approach="lora_all",
        learning_rate=2e-2,
        epochs=1,
        batch_size=4,
        seed=0,
        quantization="none",
        precision="32-true",
        lora=LoraSettings(r=4, alpha=8, dropout=0.0),
        labels=tuple(cfg["labels"]),
        template=cfg["prompts"]["templates"]["instruction"],
        max_length=64,
        validate_first=False,
        val_checks_per_epoch=1,
    )
    return TrainSettings(**{**values, **overrides})


def _adapter(out: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(out / "adapter" / "adapter_model.safetensors")


def _largest_difference(a: dict, b: dict) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def check_accumulation(scratch: Path, model_dir: Path, cfg: dict) -> tuple[Path, Path]:
    from adaptune.train.run import train

    single, accumulated = scratch / "batch4", scratch / "batch2x2"
    data = (scratch / "train.jsonl", scratch / "val.jsonl", model_dir)
    started = time.perf_counter()
    train(_settings(cfg), *data, single)
    summary = train(_settings(cfg, batch_size=2, accumulate_grad_batches=2), *data, accumulated)
    print(
        f"accumulation: batch 2 x 2 (effective {summary['effective_batch_size']}, "
        f"{summary['steps']} steps) against batch 4: largest adapter difference "
        f"{_largest_difference(_adapter(single), _adapter(accumulated)):.2e} "
        f"({time.perf_counter() - started:.0f} s)"
    )
    return single, accumulated


def check_ddp(scratch: Path, model_dir: Path, cfg: dict, gpus: int, single: Path) -> None:
    import json
    import subprocess
    from dataclasses import asdict

    if gpus < 2:
        print(
            f"ddp: skipped, {gpus} GPU(s) here: DDP on GPUs needs two "
            "(tests/test_multidevice_training.py runs it on the CPU with gloo)"
        )
        return
    script, values, out = scratch / "ddp_train.py", scratch / "ddp.json", scratch / "ddp"
    script.write_text(DDP_SCRIPT)
    values.write_text(json.dumps(asdict(_settings(cfg, batch_size=2, devices=2, strategy="ddp"))))
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            str(values),
            str(scratch / "train.jsonl"),
            str(scratch / "val.jsonl"),
            str(model_dir),
            str(out),
        ],
        env={**os.environ, "PYTHONPATH": str(benchlib.ROOT / "src")},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        print(f"ddp: FAILED ({done.returncode}):\n{done.stderr[-3000:]}")
        return
    summary = json.loads((out / "summary.json").read_text())
    print(
        f"ddp: 2 processes x batch 2 on {summary['devices']} GPUs ({summary['steps']} steps) "
        "against 1 x batch 4: "
        f"largest adapter difference {_largest_difference(_adapter(single), _adapter(out)):.2e} "
        f"({time.perf_counter() - started:.0f} s)"
    )


def check_export(scratch: Path, model_dir: Path, trained: Path, cfg: dict) -> None:
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adaptune.approaches.adapters import load_trained
    from adaptune.train.export import export_model
    from adaptune.data.prompts import render
    from adaptune.lm.scoring import ScoringSettings, score_labels

    device = "cuda:0" if torch.cuda.is_available() else "cpu"
    labels = list(cfg["labels"])
    template = cfg["prompts"]["templates"]["instruction"]
    prompts = [render(template, row["text"], labels) for row in benchlib.synthetic_rows(16, seed=1)]
    scoring = ScoringSettings(batch_size=8, max_length=64, precision="32-true")
    model, tokenizer, _ = load_trained(trained / "adapter", quantization="none", device=device)
    with_adapter = score_labels(model, tokenizer, prompts, labels, scoring)
    for dtype in ("float32", "bfloat16"):
        folder = export_model(trained / "adapter", scratch / f"exported-{dtype}", dtype=dtype)
        merged = (
            AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype))
            .to(device)
            .eval()
        )
        scores = score_labels(
            merged, AutoTokenizer.from_pretrained(folder), prompts, labels, scoring
        )
        same = (scores.argmax(1) == with_adapter.argmax(1)).mean()
        print(
            f"export ({dtype}) on {device}: largest score difference from base + adapter "
            f"{np.abs(scores - with_adapter).max():.2e}, "
            f"same label for {same:.0%} of {len(prompts)} prompts"
        )


if __name__ == "__main__":
    main()
