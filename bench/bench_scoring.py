"""How much faster the batched scorer is than the reference study's scoring loop.

The reference study (fewshot.ipynb of vetka925/gpt-j-8bit-lightning-finetune) scored one prompt
at a time: tokenize it, run the model (no torch.no_grad) with logits at every position, and take
the label with the highest logit at the last one. This script times that loop against
adaptune.lm.scoring.score_labels on the same model and prompts, checks the two pick the same labels,
and prints the ratio.

    python bench/bench_scoring.py [--model-dir resources/models/smollm2-135m] [--n 64]
        [--quantization 8bit|4bit|none] [--batch-size 16] [--threads 2]
        [--batch-sizes 4 8 16 32 64]

--batch-sizes also times the batched scorer at each of those batch sizes (interleaved, best of
three) and prints prompts/s and the ratio to --batch-size: the evaluation's batch size is the
fastest of these on the machine.

The default model is prepared with adaptune.lm.prepare.prepare_model when it is missing. Not a test:
timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from adaptune.core.names import QUANTIZATIONS  # noqa: E402
from adaptune.data.prompts import render  # noqa: E402

DEFAULT_TEXTS = REPO / "results/splits/val.csv"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=str(REPO / "resources/models/smollm2-135m"))
    parser.add_argument("--texts", default=str(DEFAULT_TEXTS), help="CSV with a text column")
    parser.add_argument("--n", type=int, default=64, help="prompts to score")
    parser.add_argument("--quantization", default="8bit", choices=QUANTIZATIONS)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=[])
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from adaptune.lm.models import load_model
    from adaptune.lm.prepare import prepare_model
    from adaptune.lm.scoring import ScoringSettings, completion_ids, predicted_labels, score_labels

    torch.set_num_threads(args.threads)
    from adaptune.core.config import with_defaults

    config = with_defaults(yaml.safe_load((REPO / "config.yaml").read_text()))
    labels = config["labels"]
    template = config["prompts"]["templates"]["instruction"]
    model_dir = Path(args.model_dir)
    if not (model_dir / "config.json").is_file():
        name = model_dir.name
        print(f"preparing {name} into {model_dir}", flush=True)
        prepare_model({"name": name, **config["models"][name]}, model_dir)
    texts = pd.read_csv(args.texts, dtype=str, keep_default_na=False)["text"].tolist()[: args.n]
    prompts = [render(template, t, labels) for t in texts]
    model, tokenizer = load_model(model_dir, args.quantization)
    model.eval()
    label_tokens = [ids[0] for ids in completion_ids(tokenizer, labels)]
    settings = ScoringSettings(batch_size=args.batch_size, max_length=args.max_length)

    # Warm up both code paths once so neither pays first-call costs inside the timing.
    score_labels(model, tokenizer, prompts[:2], labels, settings)

    # The reference loop as the study wrote it: no batching, logits at every position, and no
    # torch.no_grad() (the study's loop had none).
    start = time.perf_counter()
    reference = []
    for prompt in prompts:
        sample = tokenizer(prompt, return_tensors="pt", truncation=True, max_length=args.max_length)
        out = model(**sample)
        reference.append(labels[int(torch.argmax(out.logits[:, -1].flatten()[label_tokens]))])
        del out, sample
    reference_s = time.perf_counter() - start

    start = time.perf_counter()
    scores = score_labels(model, tokenizer, prompts, labels, settings)
    batched_s = time.perf_counter() - start
    ours = predicted_labels(scores, labels)

    agree = float(np.mean([a == b for a, b in zip(reference, ours)]))
    print(
        f"model {model_dir.name} ({args.quantization}), {len(prompts)} prompts, "
        f"{args.threads} threads, batch {args.batch_size}"
    )
    print(
        f"reference loop (one prompt at a time, full logits): {reference_s:.2f} s "
        f"({len(prompts) / reference_s:.1f} prompts/s)"
    )
    print(
        f"batched scorer:                                     {batched_s:.2f} s "
        f"({len(prompts) / batched_s:.1f} prompts/s)"
    )
    print(
        f"speed-up: {reference_s / batched_s:.1f}x; same predicted label on {agree:.0%} of prompts"
    )
    if args.batch_sizes:
        best = {size: float("inf") for size in args.batch_sizes}
        for _ in range(3):  # rounds, the sizes interleaved: a burst of load hits all alike
            for size in args.batch_sizes:
                start = time.perf_counter()
                these = ScoringSettings(size, args.max_length)
                score_labels(model, tokenizer, prompts, labels, these)
                best[size] = min(best[size], time.perf_counter() - start)
        for size, seconds in best.items():
            print(
                f"batch {size:>4}: {len(prompts) / seconds:.1f} prompts/s, "
                f"{batched_s / seconds:.2f}x batch {args.batch_size}"
            )


if __name__ == "__main__":
    main()
