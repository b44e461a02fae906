"""What the OpenAI tests share: the key, prompts written to disk, the fake server with that key
in the environment, and settings that poll fast."""

from __future__ import annotations

import os
from pathlib import Path

from fake_openai import FakeOpenAI

from adaptune.core.io import write_jsonl
from adaptune.openai.settings import OpenAISettings

LABELS = ["hate", "offensive", "neutral"]
KEY = "sk-test-" + os.urandom(12).hex()
TEMPLATE = "Classify the tweet as one of: hate, offensive, neutral.\n\nTweet: {text}\nCategory:"
TWEETS = {
    "hate": "those people are hate vermin",
    "offensive": "you offensive idiot",
    "neutral": "lovely weather today",
}


def prompt_records(n_per_label: int, prefix: str) -> list[dict]:
    records = []
    for number in range(n_per_label):
        for label in LABELS:
            text = f"{TWEETS[label]} #{prefix}{number}"
            records.append(
                {
                    "id": f"{prefix}{number}-{label}",
                    "text": text,
                    "prompt": TEMPLATE.format(text=text),
                    "completion": " " + label,
                    "label": label,
                }
            )
    return records


def write_prompts(
    directory: Path, sizes=(("train", 4), ("val", 2), ("test", 3))
) -> dict[str, Path]:
    """Prompt files of n examples per label for each split."""
    paths = {}
    for split, n in sizes:
        paths[split] = directory / "prompts" / f"{split}.jsonl"
        write_jsonl(paths[split], prompt_records(n, split))
    return paths


def fake_server(monkeypatch):
    """The fake API checking KEY, with KEY in the environment (a generator for a fixture)."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with FakeOpenAI(key=KEY) as fake:
        yield fake


def settings_for(server, **overrides) -> OpenAISettings:
    values = dict(
        base_url=server.base_url,
        poll_interval_s=0.01,
        max_poll_interval_s=0.02,
        max_retries=2,
        timeout_s=10,
        epochs=3,
    )
    return OpenAISettings(**{**values, **overrides})
