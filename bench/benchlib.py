"""Shared parts of the benchmarks: the reference split as token batches, FLOP counting, the
matmul peak, peak memory and interleaved timing.

Timing on a shared machine is noisy, so every benchmark runs its variants interleaved (A, B, A, B,
...) over several rounds and reports the median per variant: a burst of load from elsewhere then
hits all variants alike and the ratios stay meaningful.
"""

from __future__ import annotations

import html
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# A folder with train.csv and val.csv to use instead of the reference split the config names.
REFERENCE_SPLIT = os.environ.get("ADAPTUNE_REFERENCE_SPLIT")
# The pipeline's precision decision (ADAPTUNE_PRECISION_FILE names another).
DECISION_FILE = Path(
    os.environ.get("ADAPTUNE_PRECISION_FILE", ROOT / "results/hardware/precision.json")
)


def config() -> dict:
    """config.yaml with the schema's defaults for every key it leaves out, as a run sees it."""
    import yaml

    from adaptune.core.config import with_defaults

    return with_defaults(yaml.safe_load((ROOT / "config.yaml").read_text()))


def model_dir(given: str | None = None) -> Path:
    """The prepared model: `given`, else where the pipeline puts the config's model."""
    path = Path(given) if given else ROOT / "resources/models" / config()["model"]
    if not (path / "config.json").is_file():
        sys.exit(
            f"{path}: no prepared model (config.json); run the pipeline first "
            "(`snakemake --cores 2`, or just its prepare_model rule) or pass --model-dir"
        )
    return path


def reference_path(split: str) -> Path:
    """The reference split's `split` CSV: where the config puts it (data/reference_*.csv), or in
    the folder ADAPTUNE_REFERENCE_SPLIT names."""
    if REFERENCE_SPLIT:
        return Path(REFERENCE_SPLIT) / f"{split}.csv"
    return ROOT / config()["splits"]["reference"][split]


def reference_available() -> bool:
    return reference_path("train").is_file() and reference_path("val").is_file()


def reference_rows(
    split: str = "train", style: str = "instruction", limit: int | None = None
) -> list[dict]:
    """Prompt records (id, text, prompt, completion, label) of the reference split's `split`,
    texts HTML-unescaped as the pipeline's splits are."""
    import pandas as pd

    from adaptune.data.prompts import completion, render

    cfg = config()
    labels, template = cfg["labels"], cfg["prompts"]["templates"][style]
    path = reference_path(split)
    if not path.is_file():
        sys.exit(
            f"{path}: missing; the pipeline downloads the reference split there "
            "(`snakemake --cores 2`), or set ADAPTUNE_REFERENCE_SPLIT to a folder with "
            "train.csv, val.csv"
        )
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("label", "text") if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected label, text")
    rows = []
    for i, (label, text) in enumerate(zip(frame["label"], frame["text"])):
        if label not in labels:
            raise ValueError(f"{path}: row {i + 2}: label {label!r} is not one of {labels}")
        text = html.unescape(text)
        rows.append(
            {
                "id": f"{split}-{i}",
                "text": text,
                "prompt": render(template, text, labels),
                "completion": completion(label),
                "label": label,
            }
        )
    return rows[:limit] if limit else rows


def synthetic_rows(n: int, style: str = "instruction", seed: int = 0) -> list[dict]:
    """Tweets of typical length made of common words: for machines without the reference split."""
    import random

    from adaptune.data.prompts import completion, render

    words = (
        "the people game music love hate stupid day night friends school work team phone "
        "weather happy sad angry lol omg really never always trash ugly nice"
    ).split()
    cfg = config()
    labels, template = cfg["labels"], cfg["prompts"]["templates"][style]
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(8, 30)))
        label = labels[i % len(labels)]
        rows.append(
            {
                "id": f"s-{i}",
                "text": text,
                "prompt": render(template, text, labels),
                "completion": completion(label),
                "label": label,
            }
        )
    return rows


def adaptune_batches(
    tokenizer, rows: list[dict], labels, batch_size: int, max_length: int, seed: int = 42
):
    """Batches exactly as adaptune's training loader makes them (left padded, length grouped)."""
    from adaptune.train.data import Collator, encode_rows, length_grouped_batches

    examples = encode_rows(tokenizer, rows, labels, max_length)
    lengths = [len(e.prompt_ids) + len(e.completion_ids) for e in examples]
    collate = Collator(tokenizer.pad_token_id)
    return [
        collate([examples[i] for i in batch])
        for batch in length_grouped_batches(lengths, batch_size, seed)
        if len(batch) == batch_size
    ]


def lora_all_settings(quantization: str = "none", batch_size: int = 4):
    """adaptune's TrainSettings of config.yaml's lora_all (r, alpha, dropout, max_length)."""
    from adaptune.train.run import LoraSettings, TrainSettings

    cfg = config()
    section = cfg["training"]["approaches"]["lora_all"]
    return TrainSettings(
        approach="lora_all",
        learning_rate=section["learning_rate"],
        epochs=1,
        batch_size=batch_size,
        lora=LoraSettings(**section.get("lora", {})),
        quantization=quantization,
        labels=tuple(cfg["labels"]),
        max_length=cfg["training"]["max_length"],
    )


def resolve_precision(precision: str, model: Path, quantization: str = "none") -> tuple[str, str]:
    """(precision, where it came from) for a benchmark's --precision: an explicit one as given;
    auto: the pipeline's decision file (results/hardware/precision.json) when there is one, else
    the decision measured now as the pipeline's hardware rule would (a minute or two)."""
    import tempfile

    import torch

    from adaptune.core.io import write_jsonl
    from adaptune.hardware.precision import read_decision
    from adaptune.train.step_timing import measure_and_decide

    if precision != "auto":
        return precision, "given"
    if DECISION_FILE.is_file():
        decision = read_decision(DECISION_FILE)
        return decision["choice"], f"{DECISION_FILE}: {decision.get('reason', '')}"
    with tempfile.TemporaryDirectory() as scratch:
        prompts = Path(scratch) / "train.jsonl"
        write_jsonl(
            prompts,
            reference_rows("train", limit=64) if reference_available() else synthetic_rows(64),
        )
        decision = measure_and_decide(
            lora_all_settings(quantization),
            prompts,
            model,
            threads=torch.get_num_threads(),
            rounds=3,
        )
    return decision["choice"], f"measured now: {decision['reason']}"


def adaptune_loss(model):
    """adaptune's training loss on a batch, computed by its LightningModule's own methods
    (completion-only loss from the last positions' logits), so the benchmarks time the real step."""
    from adaptune.train.module import CompletionLM

    module = CompletionLM(model, settings=None, label_ids=[])
    return lambda batch: module.completion_loss(module.completion_logits(batch), batch)


def count_flops(run_step, calls: int = 4) -> float:
    """Mean FLOPs of a call of `run_step()` (forward, backward and optimizer) over `calls` calls
    (batches differ in length), by torch's counter of matmuls, attention and convolutions."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        for _ in range(calls):
            run_step()
    return counter.get_total_flops() / calls


def matmul_peak(
    dtype_name: str,
    shapes=((2048, 2048, 2048), (256, 576, 1536)),
    repeats: int = 5,
    device: str = "cpu",
) -> float:
    """Best GFLOP/s of a plain matmul in `dtype_name` over the shapes (median of `repeats`)."""
    import torch

    dtype = getattr(torch, dtype_name)
    best = 0.0
    # Smallest first: a dtype the CPU only emulates (bf16 without avx512_bf16: about 1 GFLOP/s)
    # shows it there, and a larger shape that would take over a second a product is not tried.
    for m, k, n in sorted(shapes, key=lambda shape: shape[0] * shape[1] * shape[2]):
        if best and 2 * m * k * n / (best * 1e9) > 1.0:
            break
        a = torch.randn(m, k, dtype=dtype, device=device)
        b = torch.randn(k, n, dtype=dtype, device=device)
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        first = time.perf_counter() - start
        inner = max(1, int(2e9 // (2 * m * k * n)))  # about 2 GFLOP per timing
        # A product this slow (an emulated dtype) is timing enough, warm-up included.
        times = [first] if first > 0.1 else []
        for _ in range(repeats if not times else 0):
            sync(device)
            start = time.perf_counter()
            for _ in range(inner):
                a @ b
            sync(device)
            times.append((time.perf_counter() - start) / inner)
        best = max(best, 2 * m * k * n / statistics.median(times) / 1e9)
    return best


def sync(device) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def interleaved(variants: dict, rounds: int, steps: int) -> dict[str, float]:
    """Median seconds per step of each variant's `step()`, run in turn for `steps` steps per
    round."""
    from adaptune.train.step_timing import interleaved_seconds

    times = interleaved_seconds(variants, rounds, steps)
    return {name: statistics.median(t) for name, t in times.items()}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"
