"""adaptune's training and scoring against what a user would do instead, side by side, one command.

    python bench/compare_training.py [--model-dir resources/models/<config model>]
        [--quantization none] [--precision auto|32-true|bf16-base|bf16-mixed]
        [--rounds 3] [--steps 2] [--threads 2]

The same model (default: the pipeline's prepared one), prompts (the reference split's train.csv,
data/reference_train.csv where the pipeline puts it, instruction template) and approach
(LoRA on all linear layers, r/alpha/dropout of config.yaml's lora_all: r=8, no dropout, which is
also PEFT's default dropout and the reference study's) trained three ways, their steps
interleaved round by round:
  adaptune   its training step as adaptune.train.run's LightningModule computes it: batch 4,
             length-grouped left-padded batches, loss and LM head on the completion tokens only
             (logits_to_keep), AdamW, at the pipeline's precision (--precision auto: the decision
             file results/hardware/precision.json, or measured now where the pipeline has not run)
  reference  the reference study's loop: every batch padded to the 99th-percentile length,
             batch 2, loss over the whole vocabulary at every position, fp32 AdamW
  trainer    Hugging Face Trainer + PEFT at their defaults (batch 8, dynamic padding, loss at
             every position)
and scoring: adaptune's batched scorer against one prompt at a time (batch 1), at the same
precision.
Prints samples/s, peak memory of the process, GFLOP/s (torch's FLOP counter) and the fraction of
the matmul peak measured by the same run, and the ratios. Timings on a shared machine are noisy:
read the ratios, which the interleaving keeps fair.
"""

from __future__ import annotations

import argparse
import itertools
import time

import benchlib

_LORA_ALL = benchlib.config()["training"]["approaches"]["lora_all"]["lora"]
LORA = dict(
    r=_LORA_ALL["r"],
    lora_alpha=_LORA_ALL["alpha"],
    lora_dropout=_LORA_ALL["dropout"],
    bias="none",
    task_type="CAUSAL_LM",
)


def lora_model(
    model_dir, quantization: str, precision: str, targets: list[str], dropout: float | None = None
):
    # precision: "32-true" or "bf16-base" (the weights); bf16-mixed is the step's autocast.
    """The base with LoRA on `targets`, prepared for `precision` as adaptune prepares it."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    from adaptune.hardware.precision import prepare_for_training
    from adaptune.lm.models import load_model

    model, tokenizer = load_model(model_dir, quantization)
    if quantization != "none":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    for param in model.parameters():
        param.requires_grad = False
    settings = LORA if dropout is None else {**LORA, "lora_dropout": dropout}
    model = get_peft_model(model, LoraConfig(target_modules=targets, **settings))
    prepare_for_training(model, precision)
    model.train()
    return model, tokenizer


def on_device(batch: dict, device) -> dict:
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}


def adaptune_step(model, tokenizer, rows, labels, precision: str, batch_size=4):
    """adaptune's step: completion-only loss from the last positions' logits, under `precision`
    (the very step adaptune.train.step_timing times for its decision)."""
    from adaptune.train.step_timing import training_step_function

    batches = benchlib.adaptune_batches(tokenizer, rows, labels, batch_size, 96)
    step = training_step_function(model, batches, precision)
    return (lambda: step().item()), batch_size


def reference_step(model, tokenizer, rows, batch_size=2):
    """The reference study's loop: fixed 99th-percentile padding, full-vocabulary loss
    everywhere."""
    import numpy as np
    import torch

    texts = [r["prompt"] + r["completion"] for r in rows]
    lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    width = int(np.percentile(lengths, 99))
    tokenizer = _right_padding(tokenizer)
    width = min(width, tokenizer.model_max_length)
    encoded = tokenizer(
        texts, padding="max_length", truncation=True, max_length=width, return_tensors="pt"
    )
    device = model.device
    batches = []
    for start in range(0, len(texts) - batch_size + 1, batch_size):
        ids = encoded["input_ids"][start : start + batch_size]
        mask = encoded["attention_mask"][start : start + batch_size]
        batches.append(
            {
                "input_ids": ids.to(device),
                "attention_mask": mask.to(device),
                "labels": ids.masked_fill(mask == 0, -100).to(device),
            }
        )
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    cycle = itertools.cycle(batches)

    def step():
        loss = model(**next(cycle)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return step, batch_size


def _right_padding(tokenizer):
    import copy

    tokenizer = copy.copy(tokenizer)
    tokenizer.padding_side = "right"
    tokenizer.truncation_side = "right"
    return tokenizer


def trainer_step(model, tokenizer, rows, steps_per_call: int, output_dir: str):
    """Hugging Face Trainer + PEFT at their defaults; one call trains `steps_per_call` steps.
    Returns (step, batch size) where step() runs one call and reports seconds per step spent
    inside the training steps (Trainer's setup excluded)."""
    from transformers import (
        DataCollatorForLanguageModeling,
        PrinterCallback,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    tokenizer = _right_padding(tokenizer)
    texts = [r["prompt"] + r["completion"] for r in rows]
    encoded = tokenizer(texts, truncation=True, max_length=min(tokenizer.model_max_length, 1024))
    dataset = [
        {"input_ids": ids, "attention_mask": mask}
        for ids, mask in zip(encoded["input_ids"], encoded["attention_mask"])
    ]
    args = TrainingArguments(
        output_dir=output_dir,
        max_steps=steps_per_call,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=model.device.type == "cpu",
    )

    class StepClock(TrainerCallback):
        seconds = 0.0
        _start = 0.0

        def on_step_begin(self, *_, **__):
            StepClock._start = time.perf_counter()

        def on_step_end(self, *_, **__):
            StepClock.seconds += time.perf_counter() - StepClock._start

    def step():
        StepClock.seconds = 0.0
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=dataset,
            callbacks=[StepClock()],
            data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        )
        trainer.remove_callback(PrinterCallback)  # it prints a metrics line per run
        trainer.train()
        return StepClock.seconds / steps_per_call

    return step, args.per_device_train_batch_size


def time_interleaved(runs: dict, rounds: int, steps: int) -> dict[str, float]:
    """Median seconds per step of each run; the trainer run times itself (its setup excluded)."""
    import statistics

    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, (step, _batch, self_timed) in runs.items():
            if self_timed:
                times[name].append(step())
                continue
            start = time.perf_counter()
            for _ in range(steps):
                step()
            benchlib.sync(benchlib_device[0])
            times[name].append((time.perf_counter() - start) / steps)
    return {name: statistics.median(t) for name, t in times.items()}


benchlib_device = ["cpu"]


def scoring(
    model_dir, quantization, precision, rows, labels, n: int, rounds: int
) -> dict[str, float]:
    """Prompts/s of the batched scorer and of one prompt at a time (same code, batch 1)."""
    import statistics

    from adaptune.hardware.precision import prepare_for_inference
    from adaptune.lm.models import load_model
    from adaptune.lm.scoring import ScoringSettings, score_labels

    model, tokenizer = load_model(model_dir, quantization)
    prepare_for_inference(model, precision)
    prompts = [r["prompt"] for r in rows[:n]]
    settings = {
        "batched (16)": ScoringSettings(batch_size=16, precision=precision),
        "one at a time": ScoringSettings(batch_size=1, precision=precision),
    }
    times = {name: [] for name in settings}
    import torch

    with torch.inference_mode():
        score_labels(model, tokenizer, prompts[:2], labels, settings["batched (16)"])
        for _ in range(rounds):
            for name, s in settings.items():
                start = time.perf_counter()
                score_labels(model, tokenizer, prompts, labels, s)
                times[name].append(len(prompts) / (time.perf_counter() - start))
    return {name: statistics.median(t) for name, t in times.items()}


def compare(
    model_dir,
    quantization: str,
    precision: str,
    rows,
    labels,
    targets,
    rounds: int,
    steps: int,
    scoring_n: int = 48,
    device_peak=None,
) -> None:
    import tempfile

    import torch

    benchlib_device[0] = "cuda" if torch.cuda.is_available() else "cpu"
    runs, flops = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in ("adaptune", "reference", "trainer"):
            # adaptune runs at the chosen precision; the others as their users run them (fp32).
            model, tokenizer = lora_model(
                model_dir, quantization, precision if name == "adaptune" else "32-true", targets
            )
            if name == "adaptune":
                step, batch = adaptune_step(model, tokenizer, rows, labels, precision)
            elif name == "reference":
                step, batch = reference_step(model, tokenizer, rows)
            else:
                step, batch = trainer_step(model, tokenizer, rows, steps, scratch)
            step()  # warm-up
            if name == "trainer":  # one call is `steps` steps
                flops[name] = benchlib.count_flops(step, calls=1) / steps / batch
            else:
                flops[name] = benchlib.count_flops(step) / batch
            runs[name] = (step, batch, name == "trainer")
        device = benchlib_device[0]
        peaks = device_peak or {
            d: benchlib.matmul_peak(d, device=device) for d in ("float32", "bfloat16")
        }
        seconds = time_interleaved(runs, rounds, steps)
    peak_mem = (
        torch.cuda.max_memory_allocated() / 2**20
        if device.startswith("cuda")
        else benchlib.peak_rss_mb()
    )
    peak = peaks["float32"] if precision == "32-true" else peaks["bfloat16"]
    print(
        f"\nmatmul peak on this device: fp32 {peaks['float32']:.0f} GFLOP/s, "
        f"bf16 {peaks['bfloat16']:.0f} GFLOP/s; adaptune at {precision}, the others at fp32; "
        f"peak memory of the whole process {peak_mem:.0f} MB"
    )
    print(
        f"{'training (lora_all)':<22}{'batch':>6}{'ms/step':>9}"
        f"{'samples/s':>11}{'GFLOP/sample':>14}"
        f"{'GFLOP/s':>9}{'of peak':>9}{'adaptune is':>13}"
    )
    rates = {name: runs[name][1] / s for name, s in seconds.items()}
    for name, s in seconds.items():
        batch = runs[name][1]
        gflops = flops[name] * batch / s / 1e9
        this_peak = peak if name == "adaptune" else peaks["float32"]
        print(
            f"{name:<22}{batch:>6}{s * 1000:>9.1f}{rates[name]:>11.2f}"
            f"{flops[name] / 1e9:>14.3g}{gflops:>9.1f}"
            f"{gflops / this_peak:>9.1%}{rates['adaptune'] / rates[name]:>12.2f}x"
        )
    rates = scoring(model_dir, quantization, precision, rows, labels, scoring_n, rounds)
    print(f"{'scoring':<22}{'prompts/s':>12}{'batched is':>12}")
    for name, rate in rates.items():
        print(f"{name:<22}{rate:>12.1f}{rates['batched (16)'] / rate:>11.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model-dir", default=None, help="default: resources/models/<config model>"
    )
    parser.add_argument(
        "--model",
        default=None,
        help="its config.yaml entry, for the LoRA targets (default: the config's model)",
    )
    parser.add_argument("--quantization", default="none", choices=["none", "8bit", "4bit"])
    parser.add_argument(
        "--precision", default="auto", choices=["auto", "32-true", "bf16-base", "bf16-mixed"]
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import logging

    import torch

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = benchlib.config()
    model_dir = benchlib.model_dir(args.model_dir)
    entry = cfg["models"][args.model or cfg["model"]]
    rows = benchlib.reference_rows("train", limit=400)
    precision, source = benchlib.resolve_precision(args.precision, model_dir, args.quantization)
    print(
        f"{benchlib.cpu_name()}, {args.threads} threads; {model_dir.name} ({args.quantization}), "
        f"{args.rounds} rounds x {args.steps} steps, interleaved; "
        f"adaptune at {precision} ({source})"
    )
    compare(
        model_dir,
        args.quantization,
        precision,
        rows,
        cfg["labels"],
        entry["attention_modules"] + entry["mlp_modules"],
        args.rounds,
        args.steps,
    )


if __name__ == "__main__":
    main()
