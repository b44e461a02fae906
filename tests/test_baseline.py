import json

import pandas as pd
import pytest

from adaptune.evaluate.baseline import BaselineSettings, predict_frame, run_baseline, train_baseline

LABELS = ["hate", "offensive", "neutral"]
WORDS = {
    "hate": ["vermin", "subhuman", "deport", "scum"],
    "offensive": ["idiot", "clown", "loser", "moron"],
    "neutral": ["weather", "music", "game", "coffee"],
}


def toy_split(n_per_class, offset=0):
    rows = []
    for label, words in WORDS.items():
        for i in range(n_per_class):
            word = words[(i + offset) % len(words)]
            rows.append(
                {
                    "id": f"{label}-{offset}-{i}",
                    "text": f"this is about {word} number {i + offset}",
                    "label": label,
                }
            )
    return pd.DataFrame(rows)


def test_learns_a_separable_toy_set():
    train, test = toy_split(12), toy_split(6, offset=100)
    model = train_baseline(train["text"].tolist(), train["label"].tolist())
    predictions = predict_frame(model, test, LABELS)
    assert (predictions["predicted"] == predictions["gold"]).all()
    assert list(predictions.columns) == [
        "id",
        "text",
        "gold",
        "predicted",
        "prob_hate",
        "prob_offensive",
        "prob_neutral",
    ]
    probabilities = predictions[[f"prob_{label}" for label in LABELS]]
    assert probabilities.sum(axis=1).round(6).eq(1.0).all()


def test_run_baseline_writes_every_split(tmp_path):
    paths = {}
    for name, frame in {
        "train": toy_split(10),
        "test": toy_split(5, 50),
        "val": toy_split(3, 70),
    }.items():
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    outputs = {"test": tmp_path / "eval", "val": tmp_path / "eval" / "val"}
    results = run_baseline(
        paths["train"],
        {"test": paths["test"], "val": paths["val"]},
        outputs,
        LABELS,
        BaselineSettings(bootstrap_samples=100),
        {"evaluation": {"seed": 42}},
    )
    assert results["test"]["accuracy"] == 1.0
    metrics = json.loads((tmp_path / "eval" / "val" / "metrics.json").read_text())
    assert metrics["system"] == {
        "model": "baseline",
        "method": "tfidf",
        "name": "baseline/tfidf",
        "style": None,
        "k": None,
        "quantization": None,
        "seed": None,
    }
    assert metrics["split"] == "val" and metrics["n"] == 9
    assert metrics["provenance"]["seed"] == 42
    assert (tmp_path / "eval" / "predictions.csv").is_file()


def test_bad_split_is_rejected(tmp_path):
    toy_split(3).drop(columns="label").to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(ValueError, match=r"train.csv: missing column\(s\) \['label'\]"):
        run_baseline(tmp_path / "train.csv", {}, {}, LABELS, BaselineSettings(), {})
    with pytest.raises(ValueError, match="at least two classes"):
        train_baseline(["a", "b"], ["hate", "hate"])
