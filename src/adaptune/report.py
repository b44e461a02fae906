"""Aggregate every system's metrics.json and every training run's summary.json + curves.csv into
the comparison tables (summary.csv, summary.md, summary.html, and the same for the val split) and
the figures of results/report/.

No torch or transformers here: the report step reads JSON and CSV only. Inputs are checked
before anything is written, and each error names the file and the key that is wrong.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from adaptune.io import write_csv, write_text

# The reference study (GPT-J-6B in 8-bit, PyTorch Lightning, 1,000 balanced training tweets):
# its published accuracies on its own 200-tweet validation split, as published (strings, so
# "0.50" stays "0.50"). Shown apart from our rows, never ranked with them: a different model,
# a different split, accuracy only.
REFERENCE_SOURCE = "github.com/vetka925/gpt-j-8bit-lightning-finetune"
REFERENCE_RESULTS = (
    {"system": "LoRA, all linear layers", "model": "GPT-J-6B (8-bit)", "accuracy": "0.84"},
    {"system": "3-shot prompting", "model": "GPT-J-6B (8-bit)", "accuracy": "0.415"},
    {"system": "ChatGPT, zero-shot", "model": "ChatGPT (OpenAI)", "accuracy": "0.50"},
)
REFERENCE_SPLIT = "its 200-tweet validation split"

APPROACH_LABELS = {
    "layernorm": "Normalization layers only",
    "lora_attention": "LoRA, attention layers",
    "lora_all": "LoRA, all linear layers",
}
FINETUNED = tuple(APPROACH_LABELS)
# Order of methods wherever systems are listed by kind (legends, colours).
METHOD_ORDER = ("lora_all", "lora_attention", "layernorm", "fewshot", "tfidf",
                "openai_finetune", "openai_chat")
QUANTIZATION_LABELS = {"8bit": "8-bit", "4bit": "4-bit NF4", "none": "full precision"}

# Files written into the output folder; the report rule lists the same names.
TABLE_FILES = ("summary.csv", "summary.md", "summary.html",
               "summary_val.csv", "summary_val.md", "summary_val.html")
FIGURE_STEMS = ("macro_f1", "confusion_matrices", "training_curves", "quality_vs_cost",
                "class_balance")
OUTPUT_FILES = TABLE_FILES + tuple(
    f"figures/{stem}.{ext}" for stem in FIGURE_STEMS for ext in ("png", "svg")
)

METRICS_KEYS = ("system", "split", "n", "labels", "accuracy", "accuracy_ci", "macro_f1",
                "macro_f1_ci", "per_class", "confusion_matrix", "examples_per_second")
SYSTEM_KEYS = ("model", "method", "name")
SUMMARY_KEYS = ("model", "approach", "style", "trainable_parameters", "wall_time_s",
                "peak_memory_mb")
CURVE_COLUMNS = ("step", "train_loss", "val_accuracy")


class ReportInputError(ValueError):
    """A metrics, summary or curves file that is missing or not in the contract's format."""


@dataclass(frozen=True)
class NotRun:
    """A system the config describes but this run did not produce (e.g. OpenAI disabled)."""

    name: str
    method: str
    reason: str
    model: str = ""
    k: int | None = None
    style: str | None = None
    openai_model: str | None = None

    def __post_init__(self) -> None:
        if self.method not in METHOD_ORDER:
            raise ValueError(f"not-run system {self.name!r}: unknown method {self.method!r}; "
                             f"expected one of {list(METHOD_ORDER)}")

    def system(self) -> dict:
        return {"model": self.model, "method": self.method, "name": self.name,
                "style": self.style, "k": self.k, "quantization": None,
                "openai_model": self.openai_model}


@dataclass(frozen=True)
class ReportSettings:
    labels: tuple[str, ...]
    not_run: tuple[NotRun, ...] = ()
    dpi: int = 170

    def __post_init__(self) -> None:
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels must be at least two distinct names, got {list(self.labels)}")
        if not 72 <= self.dpi <= 600:
            raise ValueError(f"dpi must be between 72 and 600, got {self.dpi}")

    @classmethod
    def from_params(cls, labels: Sequence[str], not_run: Iterable[dict] = (), dpi: int = 170):
        return cls(tuple(labels), tuple(NotRun(**entry) for entry in not_run), int(dpi))


@dataclass
class Training:
    """One training run: its summary.json and its curves.csv (which sits beside it)."""

    path: Path
    summary: dict
    curves: pd.DataFrame = field(repr=False)

    @property
    def key(self) -> tuple:
        return (self.summary["model"], self.summary["approach"], self.summary["style"])


# ---------------------------------------------------------------- reading and checking inputs

def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ReportInputError(f"{path}: file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ReportInputError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None
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


def load_metrics(path: str | os.PathLike, labels: Sequence[str]) -> dict:
    """Read one metrics.json and check every key the report uses against the contract."""
    path = Path(path)
    data = _read_json(path)
    missing = [key for key in METRICS_KEYS if key not in data]
    if missing:
        raise ReportInputError(f"{path}: missing key(s) {missing}; a metrics.json needs {list(METRICS_KEYS)}")
    system = data["system"]
    if not isinstance(system, dict) or any(key not in system for key in SYSTEM_KEYS):
        raise ReportInputError(f"{path}: key 'system' must be an object with {list(SYSTEM_KEYS)}, got {system!r}")
    if system["method"] not in METHOD_ORDER:
        raise ReportInputError(f"{path}: system.method {system['method']!r} is not one of {list(METHOD_ORDER)}")
    if list(data["labels"]) != list(labels):
        raise ReportInputError(f"{path}: labels {data['labels']} differ from the configured labels {list(labels)}")
    for key in ("n", "accuracy", "macro_f1", "examples_per_second"):
        _number(path, key, data[key])
    data["accuracy_ci"] = _interval(path, "accuracy_ci", data["accuracy_ci"])
    data["macro_f1_ci"] = _interval(path, "macro_f1_ci", data["macro_f1_ci"])
    per_class = data["per_class"]
    for label in labels:
        if not isinstance(per_class, dict) or not isinstance(per_class.get(label), dict) \
                or "f1" not in per_class[label]:
            raise ReportInputError(f"{path}: per_class.{label}.f1 is missing")
        _number(path, f"per_class.{label}.f1", per_class[label]["f1"])
    matrix = data["confusion_matrix"]
    size = len(labels)
    if not isinstance(matrix, list) or len(matrix) != size or any(
        not isinstance(row, list) or len(row) != size
        or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in row)
        for row in matrix
    ):
        raise ReportInputError(f"{path}: confusion_matrix must be {size}x{size} counts "
                               "(rows gold, columns predicted)")
    data["path"] = str(path)
    return data


def load_training(summary_path: str | os.PathLike) -> Training:
    """Read a training summary.json and the curves.csv beside it."""
    path = Path(summary_path)
    summary = _read_json(path)
    missing = [key for key in SUMMARY_KEYS if key not in summary]
    if missing:
        raise ReportInputError(f"{path}: missing key(s) {missing}; a summary.json needs {list(SUMMARY_KEYS)}")
    if summary["approach"] not in FINETUNED:
        raise ReportInputError(f"{path}: approach {summary['approach']!r} is not one of {list(FINETUNED)}")
    for key in ("trainable_parameters", "wall_time_s", "peak_memory_mb"):
        _number(path, key, summary[key], allow_none=key == "peak_memory_mb")
    curves_path = path.with_name("curves.csv")
    if not curves_path.is_file():
        raise ReportInputError(f"{curves_path}: file not found (training curves belong beside {path.name})")
    try:
        curves = pd.read_csv(curves_path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ReportInputError(f"{curves_path}: not a readable CSV ({error})") from None
    missing = [c for c in CURVE_COLUMNS if c not in curves.columns]
    if missing:
        raise ReportInputError(f"{curves_path}: missing column(s) {missing}; found {list(curves.columns)}")
    for column in ("step", "epoch", "train_loss", "val_loss", "val_accuracy"):
        if column in curves.columns:
            values = pd.to_numeric(curves[column], errors="coerce")
            bad = curves[column].notna() & values.isna()
            if bad.any():
                row = int(bad.idxmax()) + 2  # 1-based, after the header line
                raise ReportInputError(f"{curves_path}: row {row}: column {column!r} is not a number "
                                       f"({curves[column][bad].iloc[0]!r})")
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
            raise ReportInputError(f"{path}: labels {unknown} are not among the configured {list(labels)}")
        counts = frame["label"].value_counts()
        split = path.stem
        rows += [{"split": split, "label": label, "count": int(counts.get(label, 0))} for label in labels]
    return pd.DataFrame(rows, columns=["split", "label", "count"])


# ---------------------------------------------------------------- naming systems for people

def openai_model_name(system: dict) -> str:
    """The OpenAI model of an OpenAI system: its own key, else read from its directory name
    (openai/ft-{model} or openai/{model}-k{k})."""
    if system.get("openai_model"):
        return str(system["openai_model"])
    base = str(system["name"]).rstrip("/").split("/")[-1]
    if system["method"] == "openai_finetune":
        return base.removeprefix("ft-")
    return re.sub(r"-k[0-9]+$", "", base)


def _shots(k) -> str:
    return "zero-shot" if not k else f"{k}-shot"


def system_label(system: dict) -> str:
    """A system's name written out for people: 'LoRA, all linear layers', '3-shot prompting'."""
    method = system["method"]
    if method in APPROACH_LABELS:
        return APPROACH_LABELS[method]
    if method == "fewshot":
        return f"{_shots(system.get('k')).capitalize()} prompting"
    if method == "tfidf":
        return "TF-IDF + logistic regression"
    if method == "openai_finetune":
        return f"OpenAI fine-tuned {openai_model_name(system)}"
    if method == "openai_chat":
        return f"OpenAI {openai_model_name(system)}, {_shots(system.get('k'))}"
    raise ValueError(f"unknown method {method!r}")


def model_label(system: dict) -> str:
    method = system["method"]
    if method == "tfidf":
        return "no language model"
    if method.startswith("openai"):
        return openai_model_name(system)
    quantization = system.get("quantization")
    suffix = f" ({QUANTIZATION_LABELS.get(quantization, quantization)})" if quantization else ""
    return f"{system['model']}{suffix}"


def approach_label(system: dict) -> str:
    method = system["method"]
    if method in FINETUNED:
        return "fine-tuning"
    return {"fewshot": f"prompting, {_shots(system.get('k'))}", "tfidf": "classic baseline",
            "openai_finetune": "OpenAI fine-tuning",
            "openai_chat": f"OpenAI prompting, {_shots(system.get('k'))}"}[method]


def display_labels(systems: Sequence[dict]) -> dict[str, str]:
    """A unique display label per system name; the prompt style, then the model, is added only
    where two systems would otherwise read the same."""
    labels = {s["name"]: system_label(s) for s in systems}
    for extra in (lambda s: f"{s.get('style')} prompt", lambda s: str(s.get("model")),
                  lambda s: s["name"]):
        counts = pd.Series(list(labels.values())).value_counts()
        clashing = [s for s in systems if counts[labels[s["name"]]] > 1]
        for s in clashing:
            labels[s["name"]] = f"{labels[s['name']]} ({extra(s)})"
    return labels


def method_rank(system: dict) -> tuple:
    return (METHOD_ORDER.index(system["method"]), system.get("k") or 0, str(system.get("style")),
            str(system.get("model")), system["name"])


# ---------------------------------------------------------------- the tables

def summary_table(metrics: Sequence[dict], trainings: Sequence[Training], labels: Sequence[str],
                  not_run: Sequence[NotRun] = (), shown: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per system: the numbers of its metrics.json and training summary, best macro-F1
    first, then the systems that were configured but not run. `shown` maps system names to
    display labels (default: display_labels of the systems in this table)."""
    names = [m["system"]["name"] for m in metrics]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        files = [m["path"] for m in metrics if m["system"]["name"] in duplicates]
        raise ReportInputError(f"two metrics files describe the same system {duplicates}: {files}")
    by_key = {t.key: t for t in trainings}
    ran_names = set(names)
    skipped = [n for n in not_run if n.name not in ran_names]
    if shown is None:
        shown = display_labels([m["system"] for m in metrics] + [n.system() for n in skipped])
    rows = []
    for m in metrics:
        system = m["system"]
        row = {
            "system": shown[system["name"]], "name": system["name"], "model": model_label(system),
            "approach": approach_label(system), "method": system["method"],
            "style": system.get("style"), "k": system.get("k"),
            "quantization": system.get("quantization"), "status": "ran", "split": m["split"],
            "n": m["n"], "accuracy": m["accuracy"], "accuracy_ci_low": m["accuracy_ci"][0],
            "accuracy_ci_high": m["accuracy_ci"][1], "macro_f1": m["macro_f1"],
            "macro_f1_ci_low": m["macro_f1_ci"][0], "macro_f1_ci_high": m["macro_f1_ci"][1],
        }
        row.update({f"f1_{label}": m["per_class"][label]["f1"] for label in labels})
        row["invalid"] = m.get("invalid")
        row.update(_cost_columns(system, by_key))
        provenance = m.get("provenance") or {}
        row["eval_peak_memory_mb"] = provenance.get("peak_memory_mb")
        row["eval_peak_gpu_memory_mb"] = provenance.get("peak_gpu_memory_mb")
        row["examples_per_second"] = m["examples_per_second"]
        row["metrics_file"] = m["path"]
        rows.append(row)
    table = pd.DataFrame(rows)
    if not table.empty:
        table = table.sort_values(["macro_f1", "accuracy", "name"], ascending=[False, False, True],
                                  kind="stable")
    missing = pd.DataFrame([
        {"system": shown[n.name], "name": n.name, "model": model_label(n.system()),
         "approach": approach_label(n.system()), "method": n.method, "style": n.style, "k": n.k,
         "status": f"not run: {n.reason}"}
        for n in sorted(skipped, key=lambda n: method_rank(n.system()))
    ])
    table = pd.concat([t for t in (table, missing) if not t.empty], ignore_index=True)
    columns = _table_columns(labels)
    table = table.reindex(columns=columns)
    table.insert(0, "rank", [i + 1 if status == "ran" else None
                             for i, status in enumerate(table["status"])])
    table["rank"] = table["rank"].astype("Int64")
    for column in ("n", "k", "invalid", "trainable_parameters", "total_parameters"):
        table[column] = pd.to_numeric(table[column]).astype("Int64")
    return table


def _table_columns(labels: Sequence[str]) -> list[str]:
    return ["system", "name", "model", "approach", "method", "style", "k", "quantization",
            "status", "split", "n", "accuracy", "accuracy_ci_low", "accuracy_ci_high", "macro_f1",
            "macro_f1_ci_low", "macro_f1_ci_high", *(f"f1_{label}" for label in labels),
            "invalid", "trainable_parameters", "total_parameters", "training_minutes",
            "train_peak_memory_mb", "eval_peak_memory_mb", "train_peak_gpu_memory_mb",
            "eval_peak_gpu_memory_mb", "examples_per_second", "metrics_file"]


def _cost_columns(system: dict, trainings: dict) -> dict:
    """Trainable parameters, training minutes and training peak memory: from the training
    summary for a fine-tuned system; zero for prompting (nothing is trained); unknown otherwise."""
    if system["method"] in FINETUNED:
        training = trainings.get((system["model"], system["method"], system.get("style")))
        if training is None:
            return {}
        s = training.summary
        return {"trainable_parameters": s["trainable_parameters"],
                "total_parameters": s.get("total_parameters"),
                "training_minutes": s["wall_time_s"] / 60,
                "train_peak_memory_mb": s["peak_memory_mb"],
                "train_peak_gpu_memory_mb": (s.get("provenance") or {}).get("peak_gpu_memory_mb")}
    if system["method"] in ("fewshot", "openai_chat"):
        return {"trainable_parameters": 0, "training_minutes": 0.0}
    return {}


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "—"
    return f"{value:.{digits}f}"


def _fmt_count(value) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "—"
    value = int(value)
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return str(value)


def _minutes(value) -> str:
    return "0" if value == 0 else _fmt(value, 1)


def display_table(table: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """The summary table as people read it: rounded numbers, intervals in brackets. Columns for
    GPU memory and for answers that named no label appear only when some system has them."""
    focus = labels[0]
    ran_rows = table[table["status"] == "ran"]
    show_gpu = ran_rows[["train_peak_gpu_memory_mb", "eval_peak_gpu_memory_mb"]].notna().any().any()
    show_invalid = (pd.to_numeric(ran_rows["invalid"], errors="coerce").fillna(0) > 0).any()
    rows = []
    for _, r in table.iterrows():
        ran = r["status"] == "ran"

        def pair(train: str, evaluation: str) -> str:
            return f"{_fmt(r[train], 0)} / {_fmt(r[evaluation], 0)}" if ran else "—"

        row = {
            "#": "" if pd.isna(r["rank"]) else str(int(r["rank"])),
            "System": r["system"],
            "Model": r["model"],
            "Prompt style": r["style"] if isinstance(r["style"], str) else "—",
            "Accuracy [95% CI]": (f"{_fmt(r['accuracy'])} [{_fmt(r['accuracy_ci_low'])}, "
                                  f"{_fmt(r['accuracy_ci_high'])}]") if ran else "not run",
            "Macro-F1 [95% CI]": (f"{_fmt(r['macro_f1'])} [{_fmt(r['macro_f1_ci_low'])}, "
                                  f"{_fmt(r['macro_f1_ci_high'])}]") if ran else r["status"].removeprefix("not run: "),
            f"F1 ({focus})": _fmt(r[f"f1_{focus}"]) if ran else "—",
        }
        if show_invalid:
            row["Answers naming no class"] = _fmt_count(r["invalid"]) if ran else "—"
        row.update({
            "Trainable parameters": _fmt_count(r["trainable_parameters"]) if ran else "—",
            "Training minutes": _minutes(r["training_minutes"]) if ran else "—",
            "Peak memory MB (train / eval)": pair("train_peak_memory_mb", "eval_peak_memory_mb"),
        })
        if show_gpu:
            row["Peak GPU memory MB (train / eval)"] = pair("train_peak_gpu_memory_mb",
                                                            "eval_peak_gpu_memory_mb")
        row["Examples per second"] = _fmt(r["examples_per_second"], 1) if ran else "—"
        rows.append(row)
    return pd.DataFrame(rows)


def reference_table() -> pd.DataFrame:
    return pd.DataFrame([{"System": r["system"], "Model": r["model"], "Split": REFERENCE_SPLIT,
                          "Accuracy": r["accuracy"]} for r in REFERENCE_RESULTS])


def markdown_table(frame: pd.DataFrame) -> str:
    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(cell(c) for c in frame.columns) + " |",
             "| " + " | ".join("---" for _ in frame.columns) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def findings(table: pd.DataFrame, split_name: str) -> list[str]:
    """The answer in a few sentences, read off the table."""
    ran = table[table["status"] == "ran"]
    if ran.empty:
        return [f"No system was evaluated on the {split_name} split."]

    def describe(row) -> str:
        return (f"{row['system']} (macro-F1 {row['macro_f1']:.3f}, 95% CI "
                f"{row['macro_f1_ci_low']:.3f}–{row['macro_f1_ci_high']:.3f})")

    best = ran.iloc[0]
    sentences = [f"Best on the {split_name} split ({int(best['n'])} tweets): {describe(best)}."]
    groups = (("the best fine-tuning approach", ran["method"].isin(FINETUNED)),
              ("the best prompting of the base model", ran["method"] == "fewshot"),
              ("the best OpenAI system", ran["method"].str.startswith("openai")),
              ("the classic baseline", ran["method"] == "tfidf"))
    parts = []
    for name, mask in groups:
        if mask.any() and ran[mask].iloc[0]["name"] != best["name"]:
            row = ran[mask].iloc[0]
            overlap = row["macro_f1_ci_high"] >= best["macro_f1_ci_low"]
            parts.append(f"{name}, {describe(row)}, "
                         + ("overlaps the winner's interval" if overlap
                            else "lies wholly below the winner's interval"))
    if parts:
        sentences.append("For comparison, " + "; ".join(parts) + ".")
    return sentences


def _reference_markdown() -> list[str]:
    return [
        "## Reference study (published figures, not reproduced here)",
        "",
        f"From {REFERENCE_SOURCE}: GPT-J-6B held in 8-bit, fine-tuned with PyTorch Lightning on "
        f"1,000 balanced tweets, accuracy on {REFERENCE_SPLIT}. A different model and split "
        "from the rows above, so these numbers are context, not part of the ranking.",
        "",
        markdown_table(reference_table()),
    ]


def write_tables(table: pd.DataFrame, out_dir: Path, stem: str, split_name: str,
                 labels: Sequence[str], note: str | None = None) -> None:
    """`stem`.csv (every number, unrounded), `stem`.md and `stem`.html (for people)."""
    write_csv(out_dir / f"{stem}.csv", table)
    shown = display_table(table, labels) if not table.empty else pd.DataFrame()
    sentences = [note] if note else findings(table, split_name)
    title = f"adaptune: every system on the {split_name} split, best macro-F1 first"
    legend = (f"Intervals are 95% bootstrap intervals. F1 ({labels[0]}) is the F1 score of the "
              f"'{labels[0]}' class. 'Normalization layers only' trains just the LayerNorm or "
              "RMSNorm weights (the reference study's LayerNorm approach). Trainable parameters and training minutes are 0 for prompting "
              "and '—' where this pipeline does not measure them. Peak memory is the peak resident "
              "memory of the training job and of the evaluation job.")
    md = [f"# {title}", "", *sentences, ""]
    if not shown.empty:
        md += [markdown_table(shown), "", legend, ""]
    md += _reference_markdown()
    write_text(out_dir / f"{stem}.md", "\n".join(md) + "\n")
    write_text(out_dir / f"{stem}.html", _html_page(title, sentences, shown, legend))


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0 1.2em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.35em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
tbody tr:nth-child(even) { background: #fafafa; }
.reference { border-left: 4px solid #999; padding: 0.2em 1em; background: #f7f7f7; }
.ci { color: #666; font-size: 0.88em; white-space: nowrap; }
.note { color: #555; font-size: 0.9em; max-width: 60em; }
"""


def _html_page(title: str, sentences: list[str], shown: pd.DataFrame, legend: str) -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    body += [f"<p>{html.escape(s)}</p>" for s in sentences]
    if not shown.empty:
        table = shown.to_html(index=False, escape=True, border=0)
        # Each interval on its own line under its value: narrower columns, easier to scan.
        table = re.sub(r"(\d\.\d{3}) (\[\d\.\d{3}, \d\.\d{3}\])", r'\1<br><span class="ci">\2</span>', table)
        body.append(table)
        body.append(f'<p class="note">{html.escape(legend)}</p>')
    body.append('<div class="reference">')
    body.append("<h2>Reference study (published figures, not reproduced here)</h2>")
    body.append(f"<p>From {html.escape(REFERENCE_SOURCE)}: GPT-J-6B held in 8-bit, fine-tuned with "
                f"PyTorch Lightning on 1,000 balanced tweets, accuracy on {REFERENCE_SPLIT}. A "
                "different model and split from the rows above, so these numbers are context, "
                "not part of the ranking.</p>")
    body.append(reference_table().to_html(index=False, escape=True, border=0))
    body.append("</div>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


# ---------------------------------------------------------------- the whole report

def build_report(
    metrics_paths: Sequence[str | os.PathLike],
    summary_paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    settings: ReportSettings,
    val_metrics_paths: Sequence[str | os.PathLike] = (),
    split_paths: Sequence[str | os.PathLike] = (),
) -> dict[str, Path]:
    """Read and check every input, then write the tables and figures (OUTPUT_FILES) into
    `out_dir`. Returns the written paths by file name."""
    from adaptune import figures  # matplotlib only once the inputs have passed their checks

    labels = list(settings.labels)
    # A system that was configured but could not run (an OpenAI model refused, say) writes a
    # metrics.json with "status": "not_run" and its reason: listed as not run, never scored.
    not_run = list(settings.not_run) + [n for n in map(_not_run_entry, metrics_paths) if n]
    metrics = [load_metrics(p, labels) for p in metrics_paths if not _not_run_entry(p)]
    val_metrics = [load_metrics(p, labels) for p in val_metrics_paths if not _not_run_entry(p)]
    for m in metrics:
        if m["split"] != "test":
            raise ReportInputError(f"{m['path']}: split is {m['split']!r}; the headline table expects 'test'")
    for m in val_metrics:
        if m["split"] != "val":
            raise ReportInputError(f"{m['path']}: split is {m['split']!r}; expected 'val'")
    trainings = [load_training(p) for p in summary_paths]
    split_counts = load_split_counts(split_paths, labels) if split_paths else None

    # One display label and one colour per system, shared by every table and figure.
    systems = [m["system"] for m in metrics + val_metrics] + [n.system() for n in not_run]
    systems += [_training_system(t) for t in trainings]
    unique = list({s["name"]: s for s in systems}.values())
    shown = display_labels(unique)
    palette = figures.system_colors(unique, shown)

    out = Path(out_dir)
    table = summary_table(metrics, trainings, labels, not_run, shown)
    write_tables(table, out, "summary", "test", labels)
    if val_metrics:
        write_tables(summary_table(val_metrics, trainings, labels, (), shown), out, "summary_val",
                     "validation", labels)
    else:
        write_tables(pd.DataFrame(columns=["rank", *_table_columns(labels)]), out, "summary_val",
                     "validation", labels,
                     note="No system was evaluated on the validation split "
                          "(evaluation.splits does not list val).")

    ran = table[table["status"] == "ran"]
    figure_dir = out / "figures"
    figures.save(figures.macro_f1_figure(ran, palette, len(labels)), figure_dir / "macro_f1", settings.dpi)
    figures.save(figures.confusion_figure(metrics, shown, labels), figure_dir / "confusion_matrices",
                 settings.dpi)
    ordered = sorted(trainings, key=lambda t: method_rank(_training_system(t)))
    curves = {shown[_training_system(t)["name"]]: t.curves for t in ordered}
    figures.save(figures.training_figure(curves, palette), figure_dir / "training_curves", settings.dpi)
    figures.save(figures.cost_figure(ran, palette), figure_dir / "quality_vs_cost", settings.dpi)
    figures.save(figures.class_balance_figure(split_counts, labels), figure_dir / "class_balance",
                 settings.dpi)
    return {name: out / name for name in OUTPUT_FILES}


def _not_run_entry(path: str | os.PathLike) -> NotRun | None:
    """The NotRun of a metrics.json that says "status": "not_run", else None."""
    data = _read_json(Path(path))
    if data.get("status") != "not_run":
        return None
    system = data.get("system")
    if not isinstance(system, dict) or any(key not in system for key in SYSTEM_KEYS) \
            or not isinstance(data.get("reason"), str):
        raise ReportInputError(f"{path}: a not-run metrics.json needs 'system' with {list(SYSTEM_KEYS)} "
                               "and a 'reason' string")
    fields = ("model", "k", "style", "openai_model")
    return NotRun(name=system["name"], method=system["method"], reason=data["reason"],
                  **{key: system.get(key) for key in fields if system.get(key) is not None})


def _training_system(training: Training) -> dict:
    """The system a training run produces, named as its evaluation directory names it."""
    s = training.summary
    return {"model": s["model"], "method": s["approach"], "name": f"{s['model']}/{s['approach']}/{s['style']}",
            "style": s["style"], "k": None, "quantization": s.get("quantization")}
