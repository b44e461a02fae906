"""TF-IDF, 0-shot and k-shot accuracy on the reference study's train/val split, through the
pipeline's own code (adaptune.evaluate.baseline, adaptune.evaluate.run.evaluate_fewshot).

    python bench/reference_split.py --split-dir DIR
        (a folder with the reference train.csv and val.csv)
        [--model-dir resources/models/smollm2-135m] [--quantization 8bit] [--k 0 3] [--out DIR]

The split's CSVs have columns label,text; texts are HTML-unescaped as sample_splits does.
Results go to DIR/{baseline,fewshot-k*}/ (default a temporary folder) and a table is printed.
"""

from __future__ import annotations

import argparse
import html
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from adaptune.evaluate.baseline import BaselineSettings, run_baseline  # noqa: E402
from adaptune.evaluate.run import EvaluationSettings, evaluate_fewshot  # noqa: E402
from adaptune.core.io import write_csv, write_jsonl  # noqa: E402
from adaptune.core.names import QUANTIZATIONS  # noqa: E402
from adaptune.data.prompts import format_split  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split-dir", required=True, type=Path)
    parser.add_argument("--model-dir", default=REPO / "resources/models/smollm2-135m", type=Path)
    parser.add_argument("--quantization", default="8bit", choices=QUANTIZATIONS)
    parser.add_argument("--k", type=int, nargs="*", default=[0, 3])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from adaptune.core.config import with_defaults

    config = with_defaults(yaml.safe_load((REPO / "config.yaml").read_text()))
    labels, style = config["labels"], config["evaluation"]["fewshot"]["style"]
    template = config["prompts"]["templates"][style]
    out = args.out or Path(tempfile.mkdtemp(prefix="adaptune-reference-"))
    rows = {}
    for split in ("train", "val"):
        frame = pd.read_csv(args.split_dir / f"{split}.csv", dtype=str, keep_default_na=False)
        frame = pd.DataFrame(
            {
                "id": [f"{split}-{i}" for i in range(len(frame))],
                "text": frame["text"].map(html.unescape),
                "label": frame["label"],
            }
        )
        write_csv(out / f"{split}.csv", frame)
        write_jsonl(
            out / f"{split}.jsonl", format_split(out / f"{split}.csv", template, labels, style)
        )
        rows[split] = len(frame)
    results = {}
    baseline = run_baseline(
        out / "train.csv",
        {"val": out / "val.csv"},
        {"val": out / "baseline"},
        labels,
        BaselineSettings(),
        {"reference_split": str(args.split_dir)},
    )
    results["tfidf"] = baseline["val"]
    settings = EvaluationSettings.from_config(config["evaluation"])
    for k in args.k:
        metrics = evaluate_fewshot(
            args.model_dir,
            args.quantization,
            out / "train.jsonl",
            {"val": out / "val.jsonl"},
            {"val": out / f"fewshot-k{k}"},
            k,
            labels,
            style,
            settings,
            f"{args.model_dir.name}/fewshot-k{k}",
            {"k": k},
        )
        results[f"{k}-shot"] = metrics["val"]
    print(f"reference split: {rows['train']} train, {rows['val']} val; results in {out}")
    for name, m in results.items():
        print(
            f"{name:8s} accuracy {m['accuracy']:.3f} "
            f"[{m['accuracy_ci'][0]:.3f}, {m['accuracy_ci'][1]:.3f}]  "
            f"macro-F1 {m['macro_f1']:.3f}  "
            f"predicted counts {[sum(col) for col in zip(*m['confusion_matrix'])]}  "
            f"{m['examples_per_second']:.1f} examples/s"
        )


if __name__ == "__main__":
    main()
