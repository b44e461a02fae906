"""Evaluate one OpenAI system (a fine-tuned model, or a chat model with k demonstrations) on
the evaluation splits, writing predictions.csv and metrics.json as every other system does.

Requests use temperature 0 and ask for the top 5 log-probabilities of the first answer token.
The label is read from the most probable first token, stripped of whitespace and compared case
sensitively: the label itself, or the start of exactly one label (a label the tokenizer splits).
Where no log-probabilities come back (some compatible endpoints), or the top token is no label
(a lone space, say), the first word of the answer, stripped of punctuation, is matched exactly
against the labels. An answer that gives no label ("Sorry, ...") is a wrong prediction and
counts in metrics.json `invalid`, even when a label is among the less likely tokens.

Scores in predictions.csv (score_<label>) are probabilities: the summed probability of the top
tokens that stand for each label (0 for a label not among them); they are empty where the
endpoint returned no log-probabilities.

Every response is cached on disk under its request's hash (the endpoint, the model and the
whole request body), so a rerun pays for nothing it already asked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import string
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from adaptune.io import write_json
from adaptune.openai_client import (
    OpenAISettings,
    chat_messages,
    completion_prompt,
    make_client,
)
from adaptune.prompts import read_prompts
from adaptune.provenance import Stopwatch, provenance

log = logging.getLogger(__name__)

TOP_LOGPROBS = 5
MAX_ANSWER_TOKENS = 5


@dataclass(frozen=True)
class System:
    """One evaluated OpenAI system; `name` is its directory under results/eval/openai/."""

    name: str
    model: str  # the model id requests name (a fine-tuned model's ft:... id)
    method: str  # openai_finetune | openai_chat
    k: int = 0
    base_model: str = ""  # the configured model (the base of a fine-tuned one), for the report

    def __post_init__(self) -> None:
        if self.method not in ("openai_finetune", "openai_chat"):
            raise ValueError(f"system {self.name}: method {self.method!r}; expected openai_finetune or openai_chat")
        if self.k < 0:
            raise ValueError(f"system {self.name}: k = {self.k}; expected k >= 0")


@dataclass(frozen=True)
class EvaluationSettings:
    """The part of config `evaluation` that metrics use."""

    bootstrap_samples: int = 1000
    seed: int = 42


def evaluate(
    system: System,
    splits: dict[str, str | Path],
    train: str | Path,
    directory: str | Path,
    labels: Sequence[str],
    settings: OpenAISettings,
    evaluation: EvaluationSettings,
    cache_dir: str | Path,
    client=None,
) -> dict[str, dict]:
    """Ask `system` about every prompt of each split; write predictions.csv and metrics.json
    (test at the top of `directory`, other splits below it). Returns the metrics by split."""
    from adaptune.metrics import classification_metrics, write_evaluation

    kind = settings.kind(system.model)
    demos = demonstrations(read_prompts(train, labels), system.k, labels, settings.seed)
    client = client or make_client(settings)
    results = {}
    for split, path in splits.items():
        stopwatch = Stopwatch()
        cache = ResponseCache(cache_dir, settings.base_url)
        records = read_prompts(path, labels)
        requests = [build_request(system.model, kind, r["prompt"], demos, labels) for r in records]

        def ask(request, record):
            try:
                return cache.get_or_call(client, *request)
            except Exception as error:
                raise RuntimeError(f"{system.name}: {split} example id {record['id']}: request failed: {error}") from error

        with ThreadPoolExecutor(max_workers=settings.max_concurrency) as pool:
            responses = list(pool.map(ask, requests, records))
        answers = [parse_answer(response, kind, labels) for response in responses]

        predictions = _predictions_frame(records, answers, labels)
        predicted = [label for label, _, _ in answers]
        metrics = {
            "system": {"model": "openai", "method": system.method, "name": f"openai/{system.name}",
                       "style": settings.style, "k": system.k if system.method == "openai_chat" else None,
                       "quantization": None, "openai_model": system.base_model},
            "split": split,
            "n": len(records),
            "labels": list(labels),
            **classification_metrics([r["label"] for r in records], predicted, labels,
                                     bootstrap_samples=evaluation.bootstrap_samples, seed=evaluation.seed),
            "examples_per_second": round(len(records) / max(stopwatch.seconds, 1e-9), 3),
            "provenance": provenance(
                {"system": system.name, "model": system.model, "kind": kind, "k": system.k,
                 "style": settings.style, "base_url": settings.base_url,
                 "demonstrations": [d["id"] for d in demos]},
                settings.seed, stopwatch),
        }
        invalid = [(r["id"], text) for r, (label, _, text) in zip(records, answers) if label is None]
        for example_id, text in invalid[:5]:
            log.info("%s %s: id %s answered %r, which is no label", system.name, split, example_id, text)
        log.info("%s %s: accuracy %.3f, %d invalid answers of %d (%s)", system.name, split,
                 metrics["accuracy"], len(invalid), len(records), cache.summary())
        write_evaluation(Path(directory) if split == "test" else Path(directory) / split, predictions, metrics)
        results[split] = metrics
    return results


def demonstrations(train: list[dict], k: int, labels: Sequence[str], seed: int) -> list[dict]:
    """k training examples, the labels taking turns (balanced), chosen and ordered by seed; the
    same for every query, as the local few-shot prompts."""
    if k == 0:
        return []
    rng = random.Random(seed)
    pools = {label: [r for r in train if r["label"] == label] for label in labels}
    for pool in pools.values():
        rng.shuffle(pool)
    chosen = []
    while len(chosen) < k:
        before = len(chosen)
        for label in labels:
            if pools[label] and len(chosen) < k:
                chosen.append(pools[label].pop())
        if len(chosen) == before:
            raise ValueError(f"k = {k} demonstrations asked, but the training split has only {len(train)} examples")
    rng.shuffle(chosen)
    return chosen


def build_request(model: str, kind: str, prompt: str, demos: Sequence[dict], labels: Sequence[str]):
    """(endpoint, body) of one request."""
    if kind == "completion":
        return "completions", {
            "model": model, "prompt": completion_prompt(prompt, demos), "temperature": 0,
            "max_tokens": MAX_ANSWER_TOKENS, "logprobs": TOP_LOGPROBS, "stop": ["\n"],
        }
    return "chat.completions", {
        "model": model, "messages": chat_messages(prompt, labels, demos), "temperature": 0,
        "max_completion_tokens": MAX_ANSWER_TOKENS, "logprobs": True, "top_logprobs": TOP_LOGPROBS,
    }


class ResponseCache:
    """Responses as JSON files named by the hash of (base_url, endpoint, body)."""

    def __init__(self, directory: str | Path, base_url: str) -> None:
        self.directory, self.base_url = Path(directory), base_url
        self.hits = self.calls = 0

    def path(self, endpoint: str, body: dict) -> Path:
        key = json.dumps({"base_url": self.base_url, "endpoint": endpoint, "body": body},
                         sort_keys=True, ensure_ascii=False)
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.directory / digest[:2] / f"{digest}.json"

    def get_or_call(self, client, endpoint: str, body: dict) -> dict:
        path = self.path(endpoint, body)
        if path.exists():
            self.hits += 1
            return json.loads(path.read_text(encoding="utf-8"))
        api = client.completions if endpoint == "completions" else client.chat.completions
        response = api.create(**body).model_dump(mode="json")
        self.calls += 1
        write_json(path, response)
        return response

    def summary(self) -> str:
        return f"{self.calls} requests sent, {self.hits} answered from the cache"


def parse_answer(response: dict, kind: str, labels: Sequence[str]):
    """(label or None, {label: probability} or None, answer text) of one response."""
    choice = response["choices"][0]
    logprobs = choice.get("logprobs") or {}
    if kind == "completion":
        text = choice.get("text") or ""
        tops = logprobs.get("top_logprobs") or []
        top = tops[0] if tops else None
    else:
        text = (choice.get("message") or {}).get("content") or ""
        content = logprobs.get("content") or []
        top = {t["token"]: t["logprob"] for t in content[0].get("top_logprobs") or []} if content else None
        if content and not top:  # the generated token alone, without alternatives
            top = {content[0]["token"]: content[0]["logprob"]}
    scores = None
    if top:
        scores = {label: 0.0 for label in labels}
        for token, logprob in top.items():
            label = token_label(token, labels)
            if label is not None:
                scores[label] += math.exp(logprob)
        label = token_label(max(top, key=top.get), labels)
        if label is not None:
            return label, scores, text
    return word_label(text, labels), scores, text


def token_label(token: str, labels: Sequence[str]) -> str | None:
    """The label a first answer token stands for: the label itself, or the start of only one."""
    stripped = token.strip()
    if not stripped:
        return None
    if stripped in labels:
        return stripped
    starts = [label for label in labels if label.startswith(stripped)]
    return starts[0] if len(starts) == 1 else None


def word_label(text: str, labels: Sequence[str]) -> str | None:
    """The first word of an answer, stripped of punctuation, if it is exactly a label."""
    words = text.split()
    if not words:
        return None
    word = words[0].strip(string.punctuation)
    return word if word in labels else None


def _predictions_frame(records: list[dict], answers: list, labels: Sequence[str]):
    import pandas as pd

    rows = []
    for record, (label, scores, _) in zip(records, answers):
        row = {"id": record["id"], "text": record.get("text", ""), "gold": record["label"],
               "predicted": label or ""}
        for name in labels:
            row[f"score_{name}"] = scores[name] if scores else float("nan")
        rows.append(row)
    return pd.DataFrame(rows, columns=["id", "text", "gold", "predicted", *[f"score_{n}" for n in labels]])
