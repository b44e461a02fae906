"""Prompts: split rows as prompt/completion pairs under a template from the config, and few-shot
prompts built from them.

Few-shot prompts: k solved demonstrations from the train split in front of each query.

Each query gets its own draw (seeded by the seed and the query's id, so it does not depend on
the order of the split), balanced across labels: k // n_labels of every label, and the
remaining k % n_labels from distinct labels picked at random; the order is shuffled. Drawing
per query averages over the choice of demonstrations instead of betting on one fixed set.

Demonstrations never come from the evaluated split: the pool must share no id with it (else
ValueError), and a pool row whose text equals the query's text is skipped (the dataset holds
duplicate tweets).

A prompt is the instruction (written once; empty by default), the demonstrations, each
`prompt + completion + separator` (separator "\n\n" by default), then the query's prompt. The
reference study's 3-shot prompt is its instruction once and demonstrations separated by its
literal "/n/n###/n/n" on a line of its own (configs/reference.yaml)."""

from __future__ import annotations

import os
import random
import string
from collections.abc import Sequence

import pandas as pd

from adaptune.core.io import read_jsonl, write_jsonl

FIELDS = {"text", "labels"}
RECORD_KEYS = ("id", "text", "prompt", "completion", "label")


class TemplateError(ValueError):
    pass


def check_template(template: str, style: str = "template") -> None:
    """A template may use {text} (required) and {labels}; braces elsewhere must be doubled."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as error:
        raise TemplateError(f"prompts.templates.{style}: {error}") from None
    unknown = names - FIELDS
    if unknown:
        raise TemplateError(
            f"prompts.templates.{style}: unknown field(s) "
            f"{', '.join('{%s}' % n for n in sorted(unknown))}; "
            f"a template may use {{text}} and {{labels}}"
        )
    if "text" not in names:
        raise TemplateError(f"prompts.templates.{style}: the template must contain {{text}}")


def render(template: str, text: str, labels: list[str]) -> str:
    """The prompt for one message; it ends where the completion (" <label>") begins."""
    return template.format(text=text, labels=", ".join(labels))


def completion(label: str) -> str:
    # The leading space makes the label word one clean token for BPE tokenizers.
    return " " + label


def format_split(
    split_csv: str | os.PathLike, template: str, labels: list[str], style: str = "template"
) -> list[dict]:
    """One record per row of a split: id, text, prompt, completion, label."""
    check_template(template, style)
    frame = pd.read_csv(split_csv, dtype=str, keep_default_na=False)
    missing = [c for c in ("id", "text", "label") if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{split_csv}: missing column(s) {', '.join(missing)}; expected id, text, label"
        )
    records = []
    for row_number, row in enumerate(frame.itertuples(index=False), start=2):
        if row.label not in labels:
            raise ValueError(
                f"{split_csv}: row {row_number}: label {row.label!r} "
                f"is not one of {', '.join(labels)}"
            )
        records.append(
            {
                "id": row.id,
                "text": row.text,
                "prompt": render(template, row.text, labels),
                "completion": completion(row.label),
                "label": row.label,
            }
        )
    return records


def format_prompts(
    split_csv: str | os.PathLike,
    template: str,
    labels: list[str],
    output: str | os.PathLike,
    style: str = "template",
) -> int:
    records = format_split(split_csv, template, labels, style)
    write_jsonl(output, records)
    return len(records)


def read_prompts(path: str | os.PathLike, labels: list[str]) -> list[dict]:
    """Records of a prompts jsonl as `format_prompts` writes them, checked: every key a string,
    a known label, a completion that is not empty."""
    records = read_jsonl(path)
    if not records:
        raise ValueError(f"{path}: no examples; expected one JSON object per line")
    for number, record in enumerate(records, start=1):
        missing = [key for key in RECORD_KEYS if not isinstance(record.get(key), str)]
        if missing:
            raise ValueError(
                f"{path}: line {number}: missing or non-string key(s) {missing}; "
                f"expected {list(RECORD_KEYS)}"
            )
        if record["label"] not in labels:
            raise ValueError(
                f"{path}: line {number}: label {record['label']!r} is not one of {list(labels)}"
            )
        if not record["completion"]:
            raise ValueError(f"{path}: line {number}: empty completion")
    return records


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
