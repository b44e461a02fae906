"""A fine-tuned system's evaluation on a real adapter saved on a tiny model: what its
predictions.csv and metrics.json say."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from adaptune.evaluation import EvaluationSettings, evaluate_adapter
from adaptune.io import write_jsonl
from adaptune.prompts import completion, render
from test_cli import LABELS, TEMPLATE, adapter  # noqa: F401  (the fixture is used by name)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_metrics_carry_the_training_seed_and_predictions_say_their_scores_are_log_likelihoods(adapter, tmp_path):
    folder, model_dir = adapter
    texts = ["you stupid idiot", "lovely weather today", "those people are vermin"]
    write_jsonl(tmp_path / "test.jsonl", [
        {"id": str(i), "text": text, "prompt": render(TEMPLATE, text, list(LABELS)),
         "completion": completion(label), "label": label}
        for i, (text, label) in enumerate(zip(texts, LABELS))])
    name = "tiny-gptj/lora_attention/instruction/none/seed42"
    evaluate_adapter(model_dir, folder, {"test": tmp_path / "test.jsonl"}, {"test": tmp_path / "eval"},
                     EvaluationSettings(batch_size=2, bootstrap_samples=100), name=name, config_section={})
    record = json.loads((folder / "adaptune_adapter.json").read_text())
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["system"]["seed"] == record["settings"]["seed"] == 42
    predictions = pd.read_csv(tmp_path / "eval" / "predictions.csv")
    columns = [f"loglik_{label}" for label in LABELS]
    assert [c for c in predictions.columns if c.startswith(("loglik_", "prob_", "score_"))] == columns
    assert (predictions[columns].to_numpy() < 0).all()  # log-likelihoods of a probability below 1
