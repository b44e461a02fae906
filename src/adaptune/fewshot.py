"""Few-shot prompts: k solved demonstrations from the train split in front of each query.

Each query gets its own draw (seeded by the seed and the query's id, so it does not depend on
the order of the split), balanced across labels: k // n_labels of every label, and the
remaining k % n_labels from distinct labels picked at random; the order is shuffled. Drawing
per query averages over the choice of demonstrations instead of betting on one fixed set.

Demonstrations never come from the evaluated split: the pool must share no id with it (else
ValueError), and a pool row whose text equals the query's text is skipped (the dataset holds
duplicate tweets).

A prompt is the instruction (written once; empty by default), the demonstrations, each
`prompt + completion + separator` (separator "\\n\\n" by default), then the query's prompt. The
reference study's 3-shot prompt is its instruction once and demonstrations separated by its
literal "/n/n###/n/n" on a line of its own (configs/reference.yaml).
"""

from __future__ import annotations

import random
from collections.abc import Sequence


def check_disjoint(
    pool: Sequence[dict], queries: Sequence[dict], split: str = "the evaluated split"
) -> None:
    shared = {r["id"] for r in pool} & {q["id"] for q in queries}
    if shared:
        example = sorted(shared)[:5]
        raise ValueError(
            f"the demonstration pool shares {len(shared)} id(s) with {split} (e.g. {example}); "
            "demonstrations must come from the train split only"
        )


def draw_demonstrations(
    pool: Sequence[dict],
    labels: Sequence[str],
    k: int,
    rng: random.Random,
    exclude_text: str | None = None,
) -> list[dict]:
    """k pool records balanced across `labels`, in random order."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if k == 0:
        return []
    by_label = {
        label: [r for r in pool if r["label"] == label and r["text"] != exclude_text]
        for label in labels
    }
    per_label = {label: k // len(labels) for label in labels}
    for label in rng.sample(list(labels), k % len(labels)):
        per_label[label] += 1
    chosen = []
    for label in labels:
        if per_label[label] > len(by_label[label]):
            raise ValueError(
                f"the demonstration pool has {len(by_label[label])} example(s) of {label!r}; "
                f"k={k} needs {per_label[label]}"
            )
        chosen += rng.sample(by_label[label], per_label[label])
    rng.shuffle(chosen)
    return chosen


def fewshot_prompt(
    demonstrations: Sequence[dict],
    query_prompt: str,
    instruction: str = "",
    separator: str = "\n\n",
) -> str:
    shots = "".join(d["prompt"] + d["completion"] + separator for d in demonstrations)
    return instruction + shots + query_prompt


def build_fewshot_prompts(
    queries: Sequence[dict],
    pool: Sequence[dict],
    labels: Sequence[str],
    k: int,
    seed: int,
    split: str = "the evaluated split",
    fixed: Sequence[dict] | None = None,
    instruction: str = "",
    separator: str = "\n\n",
) -> tuple[list[str], list[list[str]]]:
    """The prompt of each query and the ids of its demonstrations. With `fixed` (records with
    prompt, completion and id), every query gets those demonstrations, in that order, when k > 0.
    `instruction` and `separator`: see the module's docstring."""
    check_disjoint(pool, queries, split)
    prompts, demo_ids = [], []
    if fixed is not None and k > 0:
        if k != len(fixed):
            raise ValueError(f"k={k} but {len(fixed)} fixed demonstrations are given")
        return (
            [fewshot_prompt(fixed, q["prompt"], instruction, separator) for q in queries],
            [[d["id"] for d in fixed] for _ in queries],
        )
    for query in queries:
        rng = random.Random(f"{seed}:{query['id']}")
        demos = draw_demonstrations(pool, labels, k, rng, exclude_text=query["text"])
        prompts.append(fewshot_prompt(demos, query["prompt"], instruction, separator))
        demo_ids.append([d["id"] for d in demos])
    return prompts, demo_ids
