"""Evaluate one OpenAI system (a fine-tuned model, or a chat model with k demonstrations) on the
evaluation splits, writing predictions.csv and metrics.json as every other system does.

Before any request, the endpoint is asked whether it still serves the model; a model it does not
serve, or a request it refuses (400/403/404), makes the system "not run" (adaptune.openai.outcome)
instead of failing the study. Requests use temperature 0 and ask for the top 5 log-probabilities
of the first answer token; adaptune.openai.answers reads the label. metrics.json records the
endpoint and the model snapshots that answered (each response's `model`).

Every response is cached on disk under its request's hash (the endpoint, the model and the whole
request body), so a rerun pays for nothing it already asked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from adaptune.core.config import schema_fields
from adaptune.core.io import write_json
from adaptune.core.names import PROB, score_column, split_dir
from adaptune.core.provenance import Stopwatch, provenance
from adaptune.data.prompts import read_prompts
from adaptune.openai.answers import parse_answer
from adaptune.openai.client import endpoint, make_client
from adaptune.openai.formats import chat_messages, completion_prompt
from adaptune.openai.models import Refused, refusal_reason, unavailable
from adaptune.openai.outcome import write_not_run
from adaptune.openai.settings import OpenAISettings

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
            raise ValueError(
                f"system {self.name}: method {self.method!r}; "
                "expected openai_finetune or openai_chat"
            )
        if self.k < 0:
            raise ValueError(f"system {self.name}: k = {self.k}; expected k >= 0")

    def block(self, settings: OpenAISettings) -> dict:
        """The `system` block of its metrics.json."""
        return {
            "name": f"openai/{self.name}",
            "model": "openai",
            "method": self.method,
            "style": settings.style,
            "k": self.k if self.method == "openai_chat" else None,
            # No training seed: OpenAI's job seed and the demonstrations' seed are in the
            # provenance.
            "quantization": None,
            "seed": None,
            "openai_model": self.base_model or self.model,
        }


@dataclass(frozen=True)
@schema_fields("evaluation")  # the defaults
class MetricSettings:
    """The part of config `evaluation` that the metrics of an OpenAI system use."""

    bootstrap_samples: int
    seed: int


def evaluate(
    system: System,
    splits: dict[str, str | Path],
    train: str | Path,
    directory: str | Path,
    labels: Sequence[str],
    settings: OpenAISettings,
    metric_settings: MetricSettings,
    cache_dir: str | Path,
    client=None,
    not_run_reason: str | None = None,
) -> dict[str, dict]:
    """Ask `system` about every prompt of each split; write predictions.csv and metrics.json
    (test at the top of `directory`, other splits below it). Returns the metrics by split.
    With `not_run_reason` (its fine-tuning was refused, say), or when the endpoint does not serve
    the model or refuses a request, every split gets the not-run outputs instead."""
    from adaptune.evaluate.metrics import classification_metrics, write_evaluation

    stopwatch = Stopwatch()
    kind = settings.kind(system.model)
    url = endpoint(settings)
    demos = demonstrations(read_prompts(train, labels), system.k, labels, settings.seed)
    config = {
        "system": system.name,
        "model": system.model,
        "kind": kind,
        "k": system.k,
        "style": settings.style,
        "endpoint": url,
        "demonstrations": [d["id"] for d in demos],
    }
    if not_run_reason is None:
        client = client or make_client(settings)
        not_run_reason = unavailable(client, system.model)
    answered: dict[str, tuple] = {}
    if not_run_reason is None:
        cache = ResponseCache(cache_dir, url)
        try:
            for split, path in splits.items():
                started = time.perf_counter()
                records = read_prompts(path, labels)
                responses = _ask_all(
                    client, cache, system, split, records, kind, demos, labels, settings
                )
                answered[split] = (records, responses, time.perf_counter() - started)
        except Refused as refused:
            not_run_reason = str(refused)
        log.info("%s: %s", system.name, cache.summary())

    results = {}
    for split in splits:
        out = split_dir(directory, split)
        if not_run_reason is not None:
            results[split] = write_not_run(
                out,
                system.block(settings),
                split,
                labels,
                not_run_reason,
                provenance(config, settings.seed, stopwatch),
            )
            continue
        records, responses, seconds = answered[split]
        answers = [parse_answer(response, kind, labels) for response in responses]
        predicted = [label for label, _, _ in answers]
        metrics = {
            "system": system.block(settings),
            "split": split,
            "status": "ran",
            "n": len(records),
            "labels": list(labels),
            **classification_metrics(
                [r["label"] for r in records],
                predicted,
                labels,
                bootstrap_samples=metric_settings.bootstrap_samples,
                seed=metric_settings.seed,
            ),
            "examples_per_second": round(len(records) / max(seconds, 1e-9), 3),
            "answering_models": sorted({str(r.get("model")) for r in responses}),
            "provenance": provenance(config, settings.seed, stopwatch),
        }
        invalid = [
            (r["id"], text) for r, (label, _, text) in zip(records, answers) if label is None
        ]
        for example_id, text in invalid[:5]:
            log.info(
                "%s %s: id %s answered %r, which is no label", system.name, split, example_id, text
            )
        log.info(
            "%s %s: accuracy %.3f, %d invalid answers of %d; answered by %s",
            system.name,
            split,
            metrics["accuracy"],
            len(invalid),
            len(records),
            ", ".join(metrics["answering_models"]),
        )
        write_evaluation(out, _predictions_frame(records, answers, labels), metrics)
        results[split] = metrics
    return results


def _ask_all(
    client,
    cache,
    system: System,
    split: str,
    records: list[dict],
    kind: str,
    demos: Sequence[dict],
    labels: Sequence[str],
    settings: OpenAISettings,
) -> list[dict]:
    requests = [build_request(system.model, kind, r["prompt"], demos, labels) for r in records]

    def ask(request, record):
        try:
            return cache.get_or_call(client, *request)
        except Exception as error:
            reason = refusal_reason(error)
            if reason is not None:
                raise Refused(f"{split} example id {record['id']} refused: {reason}") from None
            raise RuntimeError(
                f"{system.name}: {split} example id {record['id']}: request failed: {error}"
            ) from error

    with ThreadPoolExecutor(max_workers=settings.max_concurrency) as pool:
        return list(pool.map(ask, requests, records))


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
            raise ValueError(
                f"k = {k} demonstrations asked, "
                f"but the training split has only {len(train)} examples"
            )
    rng.shuffle(chosen)
    return chosen


def build_request(model: str, kind: str, prompt: str, demos: Sequence[dict], labels: Sequence[str]):
    """(endpoint, body) of one request."""
    if kind == "completion":
        return "completions", {
            "model": model,
            "prompt": completion_prompt(prompt, demos),
            "temperature": 0,
            "max_tokens": MAX_ANSWER_TOKENS,
            "logprobs": TOP_LOGPROBS,
            "stop": ["\n"],
        }
    return "chat.completions", {
        "model": model,
        "messages": chat_messages(prompt, labels, demos),
        "temperature": 0,
        "max_completion_tokens": MAX_ANSWER_TOKENS,
        "logprobs": True,
        "top_logprobs": TOP_LOGPROBS,
    }


class ResponseCache:
    """Responses as JSON files named by the hash of (endpoint, API, body)."""

    def __init__(self, directory: str | Path, url: str) -> None:
        self.directory, self.url = Path(directory), url
        self.hits = self.calls = 0

    def path(self, api: str, body: dict) -> Path:
        key = json.dumps(
            {"base_url": self.url, "endpoint": api, "body": body},
            sort_keys=True,
            ensure_ascii=False,
        )
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.directory / digest[:2] / f"{digest}.json"

    def get_or_call(self, client, api: str, body: dict) -> dict:
        path = self.path(api, body)
        if path.exists():
            self.hits += 1
            return json.loads(path.read_text(encoding="utf-8"))
        resource = client.completions if api == "completions" else client.chat.completions
        response = resource.create(**body).model_dump(mode="json")
        self.calls += 1
        write_json(path, response)
        return response

    def summary(self) -> str:
        return f"{self.calls} requests sent, {self.hits} answered from the cache"


def _predictions_frame(records: list[dict], answers: list, labels: Sequence[str]):
    import pandas as pd

    rows = []
    for record, (label, scores, _) in zip(records, answers):
        row = {
            "id": record["id"],
            "text": record.get("text", ""),
            "gold": record["label"],
            "predicted": label or "",
        }
        for name in labels:
            row[score_column(PROB, name)] = scores[name] if scores else float("nan")
        rows.append(row)
    return pd.DataFrame(
        rows, columns=["id", "text", "gold", "predicted", *[score_column(PROB, n) for n in labels]]
    )
