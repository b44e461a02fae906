"""The classic baseline: TF-IDF of word 1-2-grams and character 2-5-grams (within word
boundaries) side by side, then a logistic regression. Trained on the train split, scored like
every other system (predictions.csv with per-label probabilities, metrics.json)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from adaptune.core.config import schema_fields
from adaptune.core.names import PROB, headline_last, score_column
from adaptune.core.provenance import Stopwatch, provenance
from adaptune.evaluate.metrics import evaluation_record, system_info, write_evaluation

SPLIT_COLUMNS = ("id", "text", "label")


@dataclass(frozen=True)
@schema_fields("evaluation")  # the defaults of seed and bootstrap_samples
class BaselineSettings:
    seed: int
    bootstrap_samples: int
    # Chosen by 5-fold cross-validation on the reference train split (never on val or test):
    # C=1 with sublinear tf scored best (0.78).
    C: float = 1.0  # inverse regularisation of the logistic regression
    max_iter: int = 2000

    def __post_init__(self) -> None:
        if self.C <= 0:
            raise ValueError(f"C must be positive, got {self.C}")
        if self.bootstrap_samples < 1:
            raise ValueError(f"bootstrap_samples must be at least 1, got {self.bootstrap_samples}")

    @classmethod
    def from_config(cls, evaluation: dict) -> "BaselineSettings":
        """From config `evaluation` (seed, bootstrap_samples)."""
        return cls(
            seed=int(evaluation.get("seed", cls.seed)),
            bootstrap_samples=int(evaluation.get("bootstrap_samples", cls.bootstrap_samples)),
        )


def build_pipeline(settings: BaselineSettings = BaselineSettings()):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    features = FeatureUnion(
        [
            (
                "word",
                TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, min_df=1),
            ),
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1
                ),
            ),
        ]
    )
    classifier = LogisticRegression(
        C=settings.C, max_iter=settings.max_iter, random_state=settings.seed
    )
    return Pipeline([("features", features), ("classifier", classifier)])


def train_baseline(
    texts: list[str], labels: list[str], settings: BaselineSettings = BaselineSettings()
):
    """Fit the pipeline on (text, label) pairs; the labels must cover at least two classes."""
    if len(set(labels)) < 2:
        raise ValueError(
            f"the baseline needs at least two classes in its training labels, got {set(labels)}"
        )
    return build_pipeline(settings).fit(list(texts), list(labels))


def predict_frame(pipeline, frame: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """predictions.csv rows: id, text, gold, predicted, prob_<label> (probabilities)."""
    probabilities = pipeline.predict_proba(frame["text"].tolist())
    classes = list(pipeline.classes_)
    out = pd.DataFrame({"id": frame["id"], "text": frame["text"], "gold": frame["label"]})
    columns = {}
    for label in labels:
        # A label absent from train gets probability 0 and is never predicted.
        columns[score_column(PROB, label)] = (
            probabilities[:, classes.index(label)] if label in classes else 0.0
        )
    scores = pd.DataFrame(columns, index=frame.index)
    out["predicted"] = [labels[i] for i in scores.to_numpy().argmax(axis=1)]
    return pd.concat([out, scores], axis=1)


def read_split(path: str | os.PathLike, labels: list[str]) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in SPLIT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {list(SPLIT_COLUMNS)}")
    if frame.empty:
        raise ValueError(f"{path}: no rows")
    bad = ~frame["label"].isin(labels)
    if bad.any():
        row = int(bad.idxmax())
        raise ValueError(
            f"{path}: row {row + 2}: label {frame.loc[row, 'label']!r} is not one of {labels}"
        )
    return frame


def run_baseline(
    train_csv: str | os.PathLike,
    splits: dict[str, str | os.PathLike],
    outputs: dict[str, str | os.PathLike],
    labels: list[str],
    settings: BaselineSettings,
    config_section: dict,
) -> dict[str, dict]:
    """Train on `train_csv`, then score each split (name -> CSV) into its output directory
    (name -> directory). Returns the metrics by split."""
    if set(splits) != set(outputs):
        raise ValueError(f"splits {sorted(splits)} and outputs {sorted(outputs)} differ")
    stopwatch = Stopwatch()
    train = read_split(train_csv, labels)
    pipeline = train_baseline(train["text"].tolist(), train["label"].tolist(), settings)
    results = {}
    for split in headline_last(splits):
        path = splits[split]
        frame = read_split(path, labels)
        clock = Stopwatch()
        predictions = predict_frame(pipeline, frame, labels)
        speed = len(frame) / max(clock.seconds, 1e-9)
        record = evaluation_record(
            system_info("baseline", "tfidf", "baseline/tfidf"),
            split,
            predictions["gold"].tolist(),
            predictions["predicted"].tolist(),
            labels,
            examples_per_second=speed,
            provenance=provenance(config_section, settings.seed, stopwatch),
            bootstrap_samples=settings.bootstrap_samples,
            seed=settings.seed,
        )
        write_evaluation(Path(outputs[split]), predictions, record)
        results[split] = record
    return results
