"""The classification head approach on a tiny GPT-J held in 8-bit on the CPU: the head and LoRA
train (loss falls), evaluation writes its log-softmax into the loglik_ columns, `adaptune
predict` reads the adapter, `adaptune export` writes a transformers sequence classifier that
scores the same, and a real Snakemake run trains and evaluates a head cell."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from adaptune.train import run as training
from adaptune.approaches.adapters import load_trained
from adaptune.approaches.adapters import prompt_scorer
from adaptune.cli import main
from adaptune.evaluate.run import EvaluationSettings, evaluate_adapter
from adaptune.train.export import export_model
from adaptune.core.names import LOGLIK, PROB, score_column
from adaptune.lm.scoring import ScoringSettings
from adaptune.train.run import LoraSettings, TrainSettings
from training_helpers import ENTRY, LABELS, TEMPLATE, TEXTS


@pytest.fixture(scope="module")
def trained(workspace) -> dict:
    """A head trained for 4 epochs on 48 prompts (12 for validation)."""
    root, tiny_gptj = workspace["root"], workspace["model"]
    settings = TrainSettings(
        approach="head",
        learning_rate=3e-3,
        epochs=4,
        batch_size=8,
        seed=0,
        quantization="8bit",
        lora=LoraSettings(r=4, alpha=8, dropout=0.0),
        labels=LABELS,
        template=TEMPLATE,
        precision="32-true",
        val_checks_per_epoch=1,
        log_every_n_steps=1,
    )
    out = root / "head-out"
    summary = training.train(settings, workspace["train"], workspace["val"], tiny_gptj, out)
    return {"root": root, "model": tiny_gptj, "out": out, "summary": summary}


def test_the_head_and_lora_train_with_cross_entropy_on_the_label(trained):
    curves = pd.read_csv(trained["out"] / "curves.csv")
    val = curves.dropna(subset=["val_loss"])
    assert val["val_loss"].iloc[-1] < val["val_loss"].iloc[0] - 0.05
    assert val["val_accuracy"].iloc[-1] > val["val_accuracy"].iloc[0]
    config = json.loads((trained["out"] / "adapter" / "adapter_config.json").read_text())
    assert config["task_type"] == "SEQ_CLS" and "score" in config["modules_to_save"]
    assert set(config["target_modules"]) == set(ENTRY["attention_modules"] + ENTRY["mlp_modules"])
    summary = trained["summary"]
    assert (
        summary["approach"] == "head"
        and 0 < summary["trainable_parameters"] < summary["base_parameters"]
    )
    # The base's Linear layers stay int8; the head is no int8 layer, and trained.
    model, _, _ = load_trained(trained["out"] / "adapter")
    kinds = {name: type(module).__name__ for name, module in model.named_modules()}
    assert any(kind == "Linear8bitLt" for kind in kinds.values())
    assert not any(
        kind == "Linear8bitLt" for name, kind in kinds.items() if name.split(".")[-1] == "score"
    )
    # The final validation pass's scores are the head's log-softmax: each row's exp sums to 1.
    scores = pd.read_csv(trained["out"] / "val_scores.csv")
    columns = [score_column(LOGLIK, label) for label in LABELS]
    assert np.allclose(np.exp(scores[columns].to_numpy()).sum(axis=1), 1.0)


def test_evaluation_writes_log_softmax_scores_and_metrics(trained, tmp_path):
    root, out = trained["root"], trained["out"]
    outputs = {"test": tmp_path / "eval", "val": tmp_path / "eval" / "val"}
    results = evaluate_adapter(
        trained["model"],
        out / "adapter",
        {"test": root / "val.jsonl", "val": root / "val.jsonl"},
        outputs,
        EvaluationSettings.from_config({"bootstrap_samples": 50}),
        "head-cell",
        {},
        val_scores=out / "val_scores.csv",
    )
    predictions = pd.read_csv(outputs["test"] / "predictions.csv")
    columns = [score_column(LOGLIK, label) for label in LABELS]
    assert np.allclose(np.exp(predictions[columns].to_numpy()).sum(axis=1), 1.0)
    assert (
        predictions["predicted"] == predictions[columns].idxmax(axis=1).str.removeprefix("loglik_")
    ).all()
    metrics = json.loads((outputs["test"] / "metrics.json").read_text())
    assert metrics["system"]["method"] == "head" and metrics["n"] == 12
    assert results["test"]["accuracy"] == pytest.approx(
        (predictions["predicted"] == predictions["gold"]).mean()
    )
    # The val split reuses training's final pass: the same scores as the test split's, scored anew.
    reused = pd.read_csv(outputs["val"] / "predictions.csv")
    assert np.allclose(reused[columns].to_numpy(), predictions[columns].to_numpy(), atol=1e-5)


def test_predict_and_export_give_the_same_scores(trained, tmp_path, capsys):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    adapter = trained["out"] / "adapter"
    texts = [TEXTS[label][0] for label in LABELS]
    prompts = [TEMPLATE.format(labels=", ".join(LABELS), text=text) for text in texts]
    model, tokenizer, meta = load_trained(adapter)
    settings = ScoringSettings(batch_size=3, max_length=int(meta["max_length"]))
    scores, _ = prompt_scorer("head")(model, tokenizer, prompts, list(LABELS), settings)

    assert (
        main(["predict", "--adapter", str(adapter), "--output", str(tmp_path / "p.csv"), *texts])
        == 0
    )
    predicted = pd.read_csv(tmp_path / "p.csv")
    probabilities = predicted[[score_column(PROB, label) for label in LABELS]].to_numpy()
    assert np.allclose(probabilities, np.exp(scores), atol=1e-5)

    folder = export_model(adapter, tmp_path / "exported")
    exported = AutoModelForSequenceClassification.from_pretrained(folder)
    assert exported.config.id2label == dict(enumerate(LABELS))
    plain = AutoTokenizer.from_pretrained(folder)
    with __import__("torch").no_grad():
        logits = np.stack(
            [exported(**plain(p, return_tensors="pt")).logits[0].double().numpy() for p in prompts]
        )
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    # The int8 base against the merged float32 one: the same ranking, close scores.
    assert (log_softmax.argmax(axis=1) == scores.argmax(axis=1)).all()
    assert np.allclose(log_softmax, scores, atol=0.05)
    assert main(["predict", "--adapter", str(folder), "--format", "jsonl", *texts]) == 0
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    assert [line["label"] for line in lines] == [LABELS[i] for i in log_softmax.argmax(axis=1)]
