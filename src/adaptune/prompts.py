"""Turn split rows into prompt/completion pairs with a template from config."""

from __future__ import annotations

import os
import string

import pandas as pd

from adaptune.io import read_jsonl, write_jsonl

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
