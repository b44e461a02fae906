"""The tiny GPT-J training task the training tests share: its labels, template and rows, a
workspace with the model and prompt files, and the settings its runs start from."""

from __future__ import annotations

import pytest

from tiny_model import build_tiny_model

from adaptune.core.io import write_json, write_jsonl
from adaptune.train.run import LoraSettings, TrainSettings

LABELS = ("hate", "offensive", "neutral")
TEMPLATE = "Classify the tweet as one of: {labels}.\n\nTweet: {text}\nCategory:"
ENTRY = {
    "name": "tiny-gptj",
    "source": "local",
    "path": "",
    "attention_modules": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "mlp_modules": ["fc_in", "fc_out"],
}
# A learnable toy task: each label has its own words.
TEXTS = {
    "hate": ["those people should all go away", "I hate those people forever"],
    "offensive": ["you are a stupid idiot", "stupid bad awful idiot"],
    "neutral": ["I love sunny days at the beach", "nice weather and good music"],
}


def make_rows(n: int, template: str = TEMPLATE) -> list[dict]:
    rows = []
    for i in range(n):
        label = LABELS[i % 3]
        text = TEXTS[label][(i // 3) % 2]
        prompt = template.format(labels=", ".join(LABELS), text=text)
        rows.append(
            {
                "id": str(i),
                "text": text,
                "prompt": prompt,
                "completion": " " + label,
                "label": label,
            }
        )
    return rows


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("train")
    model_dir = build_tiny_model(root / "model", "gptj")
    write_json(model_dir / "adaptune_model.json", {**ENTRY, "path": str(model_dir)})
    write_jsonl(root / "train.jsonl", make_rows(48))
    write_jsonl(root / "val.jsonl", make_rows(12))
    return {
        "root": root,
        "model": model_dir,
        "train": root / "train.jsonl",
        "val": root / "val.jsonl",
    }


def settings(approach: str, **overrides) -> TrainSettings:
    # fp32 and one validation pass per epoch: the tiny runs stay fast; "auto" is resolved once,
    # in test_nf4_base_with_8bit_adam_trains.
    values = dict(
        approach=approach,
        learning_rate=2e-2,
        epochs=2,
        batch_size=8,
        seed=0,
        quantization="8bit",
        lora=None if approach == "layernorm" else LoraSettings(r=4, alpha=8, dropout=0.0),
        labels=LABELS,
        template=TEMPLATE,
        log_every_n_steps=1,
        precision="32-true",
        val_checks_per_epoch=1,
    )
    if approach == "head":  # a new head learns the toy task at a lower rate, in more epochs
        values.update(learning_rate=3e-3, epochs=4)
    values.update(overrides)
    return TrainSettings(**values)
