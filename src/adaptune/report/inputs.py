"""Reading and checking the report's inputs: each system's metrics.json and predictions.csv,
each training run's summary.json and curves.csv, and the split files.

Every check happens before anything is written; each error names the file and the key, column
or row that is wrong. A metrics.json with "status": "not_run" is a system that was configured
but could not run: it carries a reason and no metric keys.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from adaptune.core.names import APPROACHES, LOGLIK, PROB, score_column, split_dir
from adaptune.core.systems import System

METRICS_KEYS = (
    "system",
    "split",
    "n",
    "labels",
    "accuracy",
    "accuracy_ci",
    "macro_f1",
    "macro_f1_ci",
    "per_class",
    "confusion_matrix",
    "examples_per_second",
)
NOT_RUN_KEYS = ("system", "split", "status", "reason", "labels")
SUMMARY_KEYS = (
    "model",
    "approach",
    "style",
    "trainable_parameters",
    "wall_time_s",
    "peak_memory_mb",
)
CURVE_COLUMNS = ("step", "train_loss", "val_accuracy")
PREDICTION_COLUMNS = ("id", "gold", "predicted")


class ReportInputError(ValueError):
    """A metrics, predictions, summary or curves file that is missing or not in the contract's
    format."""


@dataclass
class Training:
    """One training run: its summary.json and its curves.csv (which sits beside it)."""

    path: Path
    summary: dict
    curves: pd.DataFrame = field(repr=False)


@dataclass
class Run:
    """One system on one split: its metrics and predictions; `reason` is set when it did not run."""

    system: System
    split: str
    metrics: dict | None = None
    predictions: pd.DataFrame | None = field(default=None, repr=False)
    training: Training | None = None
    reason: str | None = None

    @property
    def ran(self) -> bool:
        return self.reason is None


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise ReportInputError(f"{path}: file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ReportInputError(
            f"{path}: not valid JSON ({error.msg}, line {error.lineno})"
        ) from None
    if not isinstance(data, dict):
        raise ReportInputError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _number(path: Path, key: str, value, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ReportInputError(f"{path}: key {key!r} must be a number, got {value!r}")
    return value


def _interval(path: Path, key: str, value) -> list[float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ReportInputError(f"{path}: key {key!r} must be a [low, high] pair, got {value!r}")
    low, high = (_number(path, key, v) for v in value)
    if low > high:
        raise ReportInputError(f"{path}: key {key!r} has low {low} above high {high}")
    return [low, high]


def load_metrics(path: str | os.PathLike, labels: Sequence[str], name: str | None = None) -> dict:
    """Read one metrics.json and check every key the report uses against the contract; `name`,
    when given, is the system name it must carry."""
    path = Path(path)
    data = read_json(path)
    not_run = data.get("status") == "not_run"
    required = NOT_RUN_KEYS if not_run else METRICS_KEYS
    missing = [key for key in required if key not in data]
    if missing:
        raise ReportInputError(
            f"{path}: missing key(s) {missing}; a metrics.json needs {list(required)}"
        )
    system = data["system"]
    if not isinstance(system, dict) or "name" not in system:
        raise ReportInputError(
            f"{path}: key 'system' must be an object with a 'name', got {system!r}"
        )
    if name is not None and system["name"] != name:
        raise ReportInputError(
            f"{path}: system.name is {system['name']!r}; expected {name!r} "
            "(the system whose directory this is)"
        )
    if list(data["labels"]) != list(labels):
        raise ReportInputError(
            f"{path}: labels {data['labels']} differ from the configured labels {list(labels)}"
        )
    data["path"] = str(path)
    if not_run:
        return data
    for key in ("n", "accuracy", "macro_f1", "examples_per_second"):
        _number(path, key, data[key])
    data["accuracy_ci"] = _interval(path, "accuracy_ci", data["accuracy_ci"])
    data["macro_f1_ci"] = _interval(path, "macro_f1_ci", data["macro_f1_ci"])
    per_class = data["per_class"]
    for label in labels:
        if (
            not isinstance(per_class, dict)
            or not isinstance(per_class.get(label), dict)
            or "f1" not in per_class[label]
        ):
            raise ReportInputError(f"{path}: per_class.{label}.f1 is missing")
        _number(path, f"per_class.{label}.f1", per_class[label]["f1"])
    matrix = data["confusion_matrix"]
    size = len(labels)
    if (
        not isinstance(matrix, list)
        or len(matrix) != size
        or any(
            not isinstance(row, list)
            or len(row) != size
            or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in row)
            for row in matrix
        )
    ):
        raise ReportInputError(
            f"{path}: confusion_matrix must be {size}x{size} counts (rows gold, columns predicted)"
        )
    return data


def load_predictions(
    path: str | os.PathLike, labels: Sequence[str], n: int | None = None
) -> pd.DataFrame:
    """Read one predictions.csv: id, gold, predicted and the loglik_<label> or prob_<label>
    columns when present."""
    path = Path(path)
    if not path.is_file():
        raise ReportInputError(f"{path}: file not found")
    try:
        frame = pd.read_csv(
            path, dtype={"id": str, "gold": str, "predicted": str}, keep_default_na=False
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ReportInputError(f"{path}: not a readable CSV ({error})") from None
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise ReportInputError(f"{path}: missing column(s) {missing}; found {list(frame.columns)}")
    unknown = frame.index[~frame["gold"].isin(labels)]
    if len(unknown):
        row = int(unknown[0])
        raise ReportInputError(
            f"{path}: row {row + 2}: gold label {frame['gold'].iloc[row]!r} is not "
            f"one of {list(labels)}"
        )
    if frame["id"].duplicated().any():
        raise ReportInputError(
            f"{path}: id {frame['id'][frame['id'].duplicated()].iloc[0]!r} appears twice"
        )
    if n is not None and len(frame) != n:
        raise ReportInputError(f"{path}: {len(frame)} rows, but its metrics.json says n = {n}")
    for label in labels:
        for column in (score_column(LOGLIK, label), score_column(PROB, label)):
            if column in frame.columns:
                frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def load_training(summary_path: str | os.PathLike) -> Training:
    """Read a training summary.json and the curves.csv beside it."""
    path = Path(summary_path)
    summary = read_json(path)
    missing = [key for key in SUMMARY_KEYS if key not in summary]
    if missing:
        raise ReportInputError(
            f"{path}: missing key(s) {missing}; a summary.json needs {list(SUMMARY_KEYS)}"
        )
    if summary["approach"] not in APPROACHES:
        raise ReportInputError(
            f"{path}: approach {summary['approach']!r} is not one of {list(APPROACHES)}"
        )
    for key in ("trainable_parameters", "wall_time_s", "peak_memory_mb"):
        _number(path, key, summary[key], allow_none=key == "peak_memory_mb")
    curves_path = path.with_name("curves.csv")
    curves = _read_table(curves_path, CURVE_COLUMNS, f"training curves belong beside {path.name}")
    for column in ("step", "epoch", "train_loss", "val_loss", "val_accuracy"):
        if column in curves.columns:
            values = pd.to_numeric(curves[column], errors="coerce")
            bad = curves[column].notna() & values.isna()
            if bad.any():
                row = int(bad.idxmax()) + 2  # 1-based, after the header line
                raise ReportInputError(
                    f"{curves_path}: row {row}: column {column!r} is not a number "
                    f"({curves[column][bad].iloc[0]!r})"
                )
            curves[column] = values
    return Training(path, summary, curves)


def load_split_counts(paths: Sequence[str | os.PathLike], labels: Sequence[str]) -> pd.DataFrame:
    """Examples per label in each split CSV (columns id,text,label): rows split, label, count."""
    rows = []
    for path in map(Path, paths):
        if not path.is_file():
            raise ReportInputError(f"{path}: file not found")
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "label" not in frame.columns:
            raise ReportInputError(f"{path}: missing column 'label'; found {list(frame.columns)}")
        unknown = sorted(set(frame["label"]) - set(labels))
        if unknown:
            raise ReportInputError(
                f"{path}: labels {unknown} are not among the configured {list(labels)}"
            )
        counts = frame["label"].value_counts()
        rows += [
            {"split": path.stem, "label": label, "count": int(counts.get(label, 0))}
            for label in labels
        ]
    return pd.DataFrame(rows, columns=["split", "label", "count"])


SWEEP_COLUMNS = ("approach", "learning_rate", "epochs", "seed", "val_macro_f1", "chosen")


def load_sweep_points(path: str | os.PathLike) -> pd.DataFrame:
    """The sweep's summary.csv: one row per run x epoch count, its val macro-F1 and whether that
    setting was chosen."""
    return _read_table(Path(path), SWEEP_COLUMNS, "the sweep's summary writes it")


def _read_table(path: Path, columns, written_by: str) -> pd.DataFrame:
    """A CSV that must exist, parse and hold `columns`; each failure names the file."""
    if not path.is_file():
        raise ReportInputError(f"{path}: file not found ({written_by})")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ReportInputError(f"{path}: not a readable CSV ({error})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ReportInputError(f"{path}: missing column(s) {missing}; found {list(table.columns)}")
    return table


def split_directory(system: System, split: str, root: str | os.PathLike = ".") -> Path:
    """Where a system's evaluation of `split` lies: test at the top of its directory."""
    return split_dir(Path(root) / system.eval_dir, split)


def load_runs(
    systems: Sequence[System],
    split: str,
    labels: Sequence[str],
    root: str | os.PathLike = ".",
    with_training: bool = True,
) -> list[Run]:
    """Every system's run on `split`: systems the config turned off become not-run runs with the
    config's reason, and a metrics.json with status not_run gives its own reason."""
    runs = []
    for system in systems:
        if not system.ran:
            runs.append(Run(system, split, reason=system.reason))
            continue
        directory = split_directory(system, split, root)
        metrics = load_metrics(directory / "metrics.json", labels, system.name)
        if metrics["split"] != split:
            raise ReportInputError(
                f"{metrics['path']}: split is {metrics['split']!r}; expected {split!r}"
            )
        if metrics.get("status") == "not_run":
            runs.append(Run(system, split, metrics, reason=str(metrics["reason"])))
            continue
        predictions = load_predictions(directory / "predictions.csv", labels, int(metrics["n"]))
        training = None
        if with_training and system.finetuned:
            training = load_training(Path(root) / system.train_dir / "summary.json")
        runs.append(Run(system, split, metrics, predictions, training))
    return runs
