"""The report built from hand-made metrics, summaries and curves: the tables carry the inputs'
numbers, rank by macro-F1, list what was not run, keep the reference study apart, the figures
are real images, and bad inputs fail with the file's name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adaptune.report import (
    OUTPUT_FILES, REFERENCE_RESULTS, ReportInputError, ReportSettings, build_report, load_metrics,
    system_label,
)

LABELS = ["hate", "offensive", "neutral"]
MODEL = "smollm2-135m"

# name -> (system block, confusion matrix on 600 test tweets, examples per second)
SYSTEMS = {
    f"{MODEL}/lora_all/instruction": (
        {"model": MODEL, "method": "lora_all", "style": "instruction", "k": None, "quantization": "8bit"},
        [[150, 32, 18], [22, 165, 13], [10, 9, 181]], 41.5),
    f"{MODEL}/lora_attention/instruction": (
        {"model": MODEL, "method": "lora_attention", "style": "instruction", "k": None, "quantization": "8bit"},
        [[140, 38, 22], [28, 155, 17], [14, 12, 174]], 42.0),
    f"{MODEL}/layernorm/instruction": (
        {"model": MODEL, "method": "layernorm", "style": "instruction", "k": None, "quantization": "8bit"},
        [[128, 45, 27], [30, 150, 20], [16, 15, 169]], 43.1),
    f"{MODEL}/fewshot-k0": (
        {"model": MODEL, "method": "fewshot", "style": "instruction", "k": 0, "quantization": "8bit"},
        [[10, 5, 185], [8, 12, 180], [4, 2, 194]], 55.0),
    f"{MODEL}/fewshot-k3": (
        {"model": MODEL, "method": "fewshot", "style": "instruction", "k": 3, "quantization": "8bit"},
        [[60, 70, 70], [50, 90, 60], [40, 40, 120]], 12.3),
    "baseline/tfidf": (
        {"model": "baseline", "method": "tfidf", "style": None, "k": None, "quantization": None},
        [[135, 40, 25], [35, 150, 15], [15, 20, 165]], 9000.0),
}
# approach -> (trainable parameters, wall seconds, peak MB, final val accuracy)
TRAINING = {
    "lora_all": (2_442_240, 890.0, 2210.5, 0.78),
    "lora_attention": (1_105_920, 640.0, 2050.0, 0.74),
    "layernorm": (35_136, 420.0, 1900.0, 0.70),
}
NOT_RUN = [
    {"name": "openai/ft-babbage-002", "method": "openai_finetune", "model": "openai",
     "reason": "openai.enabled is false"},
    {"name": "openai/ft-davinci-002", "method": "openai_finetune", "model": "openai",
     "reason": "openai.enabled is false"},
    {"name": "openai/gpt-4o-mini-k0", "method": "openai_chat", "model": "openai", "k": 0,
     "style": "instruction", "reason": "openai.enabled is false"},
    {"name": "openai/gpt-4o-mini-k3", "method": "openai_chat", "model": "openai", "k": 3,
     "style": "instruction", "reason": "openai.enabled is false"},
]


def metrics_record(name: str, system: dict, matrix, speed: float, split: str = "test") -> dict:
    """A metrics.json computed by hand from a confusion matrix (rows gold, columns predicted)."""
    cm = np.asarray(matrix, dtype=float)
    per_class = {}
    for i, label in enumerate(LABELS):
        tp, predicted, support = cm[i, i], cm[:, i].sum(), cm[i].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / support
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1, "support": int(support)}
    accuracy = float(np.trace(cm) / cm.sum())
    macro_f1 = float(np.mean([c["f1"] for c in per_class.values()]))
    return {
        "system": {**system, "name": name}, "split": split, "n": int(cm.sum()), "labels": LABELS,
        "accuracy": accuracy, "accuracy_ci": [accuracy - 0.035, accuracy + 0.034],
        "macro_f1": macro_f1, "macro_f1_ci": [macro_f1 - 0.037, macro_f1 + 0.036],
        "per_class": per_class, "confusion_matrix": cm.astype(int).tolist(), "invalid": 0,
        "examples_per_second": speed,
        "provenance": {"config": {}, "seed": 42, "peak_memory_mb": 1234.5, "wall_time_s": 60.0},
    }


def curves_frame(final_accuracy: float, steps_per_epoch: int = 125, epochs: int = 2) -> pd.DataFrame:
    """Lightning CSVLogger-shaped rows: a noisy falling training loss every 5 steps, validation
    metrics at each epoch's end on rows of their own."""
    rng = np.random.default_rng(round(final_accuracy * 100))
    rows = []
    for step in range(4, steps_per_epoch * epochs, 5):
        loss = 0.55 + 0.6 * np.exp(-step / 60) + rng.normal(0, 0.08)
        rows.append({"step": step, "epoch": step // steps_per_epoch, "train_loss": loss})
    for epoch in range(epochs):
        accuracy = final_accuracy - 0.07 * (epochs - 1 - epoch)
        rows.append({"step": (epoch + 1) * steps_per_epoch - 1, "epoch": epoch,
                     "val_loss": 1.5 - final_accuracy - 0.15 * epoch, "val_accuracy": accuracy})
    return pd.DataFrame(rows, columns=["step", "epoch", "train_loss", "val_loss", "val_accuracy"])


def make_inputs(root: Path) -> dict:
    """Hand-made results/ with test and val metrics, training runs and splits."""
    metrics, val_metrics, summaries = [], [], []
    for name, (system, matrix, speed) in SYSTEMS.items():
        directory = root / "results/eval" / name
        directory.joinpath("val").mkdir(parents=True)
        test = metrics_record(name, system, matrix, speed)
        (directory / "metrics.json").write_text(json.dumps(test))
        val_matrix = (np.asarray(matrix) // 3).tolist()
        (directory / "val/metrics.json").write_text(json.dumps(
            metrics_record(name, system, val_matrix, speed, split="val")))
        metrics.append(directory / "metrics.json")
        val_metrics.append(directory / "val/metrics.json")
    for approach, (trainable, seconds, memory, accuracy) in TRAINING.items():
        directory = root / "results/train" / MODEL / approach / "instruction"
        directory.mkdir(parents=True)
        (directory / "summary.json").write_text(json.dumps({
            "model": MODEL, "approach": approach, "style": "instruction", "quantization": "8bit",
            "trainable_parameters": trainable, "total_parameters": 134_515_008 + trainable,
            "epochs": 2, "steps": 250, "wall_time_s": seconds, "train_samples_per_second": 2.3,
            "peak_memory_mb": memory, "final_train_loss": 0.6, "final_val_loss": 0.75,
            "final_val_accuracy": accuracy, "provenance": {}}))
        curves_frame(accuracy).to_csv(directory / "curves.csv", index=False)
        summaries.append(directory / "summary.json")
    splits = []
    for split, size in (("train", 1000), ("val", 200), ("test", 600)):
        path = root / "results/splits" / f"{split}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        labels = [LABELS[i % 3] for i in range(size - (size % 3))]
        pd.DataFrame({"id": [str(i) for i in range(len(labels))], "text": "a tweet",
                      "label": labels}).to_csv(path, index=False)
        splits.append(path)
    return {"metrics": metrics, "val": val_metrics, "summaries": summaries, "splits": splits}


def run_report(root: Path, inputs: dict, not_run=NOT_RUN) -> Path:
    out = root / "results/report"
    build_report(inputs["metrics"], inputs["summaries"], out,
                 ReportSettings.from_params(LABELS, not_run), inputs["val"], inputs["splits"])
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    inputs = make_inputs(root)
    return root, inputs, run_report(root, inputs)


def test_table_numbers_equal_the_inputs(built):
    root, inputs, out = built
    table = pd.read_csv(out / "summary.csv")
    ran = table[table["status"] == "ran"].set_index("name")
    assert set(ran.index) == set(SYSTEMS)
    for path in inputs["metrics"]:
        m = json.loads(path.read_text())
        row = ran.loc[m["system"]["name"]]
        assert row["accuracy"] == pytest.approx(m["accuracy"], abs=1e-12)
        assert row["macro_f1"] == pytest.approx(m["macro_f1"], abs=1e-12)
        assert [row["accuracy_ci_low"], row["accuracy_ci_high"]] == pytest.approx(m["accuracy_ci"])
        assert [row["macro_f1_ci_low"], row["macro_f1_ci_high"]] == pytest.approx(m["macro_f1_ci"])
        assert row["f1_hate"] == pytest.approx(m["per_class"]["hate"]["f1"])
        assert row["examples_per_second"] == pytest.approx(m["examples_per_second"])
        assert row["n"] == 600
    for approach, (trainable, seconds, memory, _) in TRAINING.items():
        row = ran.loc[f"{MODEL}/{approach}/instruction"]
        assert row["trainable_parameters"] == trainable
        assert row["training_minutes"] == pytest.approx(seconds / 60)
        assert row["train_peak_memory_mb"] == pytest.approx(memory)
    assert ran.loc[f"{MODEL}/fewshot-k3", "trainable_parameters"] == 0
    assert pd.isna(ran.loc["baseline/tfidf", "trainable_parameters"])


def test_rows_are_ranked_by_macro_f1_with_readable_names(built):
    _, _, out = built
    table = pd.read_csv(out / "summary.csv")
    ran = table[table["status"] == "ran"]
    assert list(ran["macro_f1"]) == sorted(ran["macro_f1"], reverse=True)
    assert list(ran["rank"]) == list(range(1, len(ran) + 1))
    assert ran.iloc[0]["system"] == "LoRA, all linear layers"
    assert {"3-shot prompting", "Zero-shot prompting", "TF-IDF + logistic regression",
            "LoRA, attention layers"} <= set(ran["system"])
    markdown = (out / "summary.md").read_text()
    lines = [line for line in markdown.splitlines() if line.startswith("| 1 |")]
    assert len(lines) == 1 and "LoRA, all linear layers" in lines[0]
    best = ran.iloc[0]
    assert f"{best['macro_f1']:.3f} [{best['macro_f1_ci_low']:.3f}, {best['macro_f1_ci_high']:.3f}]" in lines[0]


def test_systems_not_run_are_listed_as_such(built):
    _, _, out = built
    table = pd.read_csv(out / "summary.csv")
    missing = table[table["status"] != "ran"]
    assert set(missing["name"]) == {n["name"] for n in NOT_RUN}
    assert missing["status"].str.startswith("not run").all()
    assert missing["macro_f1"].isna().all() and missing["rank"].isna().all()
    # after every system that ran
    assert (table.index[table["status"] != "ran"] > table.index[table["status"] == "ran"].max()).all()
    markdown = (out / "summary.md").read_text()
    for label in ("OpenAI fine-tuned davinci-002", "OpenAI gpt-4o-mini, 3-shot"):
        row = next(line for line in markdown.splitlines() if label in line)
        assert "not run" in row and "openai.enabled is false" in row
        assert row.startswith("|  | ") and "nan" not in row


def test_reference_block_is_separate_from_our_rows(built):
    _, _, out = built
    table = pd.read_csv(out / "summary.csv")
    assert not table["model"].str.contains("GPT-J").any()
    assert 0.84 not in set(table["accuracy"].dropna().round(3))
    assert {r["accuracy"] for r in REFERENCE_RESULTS} == {"0.84", "0.415", "0.50"}
    for name in ("summary.md", "summary_val.md"):
        text = (out / name).read_text()
        ours, _, reference = text.partition("## Reference study")
        assert reference, f"{name} has no reference block"
        assert "GPT-J" not in ours
        for entry in REFERENCE_RESULTS:
            assert f"| {entry['system']} | {entry['model']} |" in reference
            assert f"| {entry['accuracy']} |" in reference
    html = (out / "summary.html").read_text()
    assert html.index("<h2>Reference study") > html.index("LoRA, all linear layers")


def test_val_table_reads_the_val_metrics(built):
    _, inputs, out = built
    val = pd.read_csv(out / "summary_val.csv").set_index("name")
    for path in inputs["val"]:
        m = json.loads(path.read_text())
        assert val.loc[m["system"]["name"], "macro_f1"] == pytest.approx(m["macro_f1"])
        assert val.loc[m["system"]["name"], "split"] == "val"


def test_every_output_is_written_and_figures_are_real_images(built):
    import matplotlib.image as mpimg

    _, _, out = built
    for name in OUTPUT_FILES:
        assert (out / name).is_file(), name
    for png in sorted((out / "figures").glob("*.png")):
        image = mpimg.imread(png)
        height, width = image.shape[:2]
        assert png.stat().st_size > 20_000, png
        assert height > 300 and width > 600, (png, image.shape)
        assert image[..., :3].std() > 0.05, f"{png} is nearly blank"
        assert image[..., :3].mean() > 0.5, f"{png} should be dark marks on white"
    for svg in (out / "figures").glob("*.svg"):
        assert svg.read_text().lstrip().startswith("<?xml") and svg.stat().st_size > 10_000


def test_colours_are_the_same_system_in_every_figure(built):
    from adaptune.figures import system_colors
    from adaptune.report import display_labels

    systems = [{**s, "name": n} for n, (s, _, _) in SYSTEMS.items()]
    shown = display_labels(systems)
    colours = system_colors(systems, shown)
    assert len(set(colours.values())) == len(systems)
    assert colours == system_colors(list(reversed(systems)), shown)


def test_columns_for_no_class_answers_and_gpu_memory_appear_only_when_needed(tmp_path):
    inputs = make_inputs(tmp_path)
    out = run_report(tmp_path, inputs)
    header = next(line for line in (out / "summary.md").read_text().splitlines() if line.startswith("| #"))
    assert "naming no class" not in header and "GPU" not in header
    path = inputs["metrics"][3]
    record = json.loads(path.read_text())
    record["invalid"] = 7
    record["provenance"]["peak_gpu_memory_mb"] = 5120.0
    path.write_text(json.dumps(record))
    out = run_report(tmp_path, inputs)
    lines = (out / "summary.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| #")).split(" | ")
    row = next(line for line in lines if "| Zero-shot prompting |" in line)
    cells = row.split(" | ")
    assert cells[header.index("Answers naming no class")] == "7"
    assert cells[header.index("Peak GPU memory MB (train / eval)")] == "— / 5120"


def test_labels_are_written_out():
    assert system_label({"method": "openai_finetune", "name": "openai/ft-davinci-002"}) \
        == "OpenAI fine-tuned davinci-002"
    assert system_label({"method": "openai_chat", "name": "openai/gpt-4o-mini-k0", "k": 0}) \
        == "OpenAI gpt-4o-mini, zero-shot"
    assert system_label({"method": "fewshot", "name": "m/fewshot-k3", "k": 3}) == "3-shot prompting"


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_text("{not json"), "not valid JSON"),
    (lambda p: p.write_text(json.dumps({k: v for k, v in json.loads(p.read_text()).items()
                                        if k != "macro_f1"})), "'macro_f1'"),
    (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "accuracy": "high"})), "'accuracy'"),
    (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "confusion_matrix": [[1, 2]]})),
     "confusion_matrix"),
    (lambda p: p.unlink(), "file not found"),
])
def test_bad_metrics_file_is_a_clear_error_naming_it(tmp_path, damage, message):
    inputs = make_inputs(tmp_path)
    broken = inputs["metrics"][2]
    damage(broken)
    with pytest.raises(ReportInputError) as error:
        run_report(tmp_path, inputs)
    assert str(broken) in str(error.value) and message in str(error.value)
    assert not (tmp_path / "results/report/summary.csv").exists()


def test_bad_training_files_are_clear_errors(tmp_path):
    inputs = make_inputs(tmp_path)
    summary = inputs["summaries"][0]
    summary.with_name("curves.csv").write_text("step,epoch,train_loss,val_loss,val_accuracy\n1,0,abc,,\n")
    with pytest.raises(ReportInputError, match="curves.csv: row 2: column 'train_loss'"):
        run_report(tmp_path, inputs)
    summary.write_text(json.dumps({"model": MODEL, "approach": "lora_all"}))
    with pytest.raises(ReportInputError) as error:
        run_report(tmp_path, inputs)
    assert str(summary) in str(error.value) and "trainable_parameters" in str(error.value)


def test_labels_that_differ_from_the_config_are_an_error(tmp_path):
    inputs = make_inputs(tmp_path)
    with pytest.raises(ReportInputError, match="differ from the configured labels"):
        load_metrics(inputs["metrics"][0], ["hate", "offensive", "neither"])


def test_report_without_training_or_val(tmp_path):
    """Only prompting and the baseline ran: the report still writes every file."""
    inputs = make_inputs(tmp_path)
    inputs = {"metrics": [p for p in inputs["metrics"] if "fewshot" in str(p) or "tfidf" in str(p)],
              "summaries": [], "val": [], "splits": []}
    out = run_report(tmp_path, inputs, not_run=[])
    for name in OUTPUT_FILES:
        assert (out / name).is_file(), name
    assert len(pd.read_csv(out / "summary.csv")) == 3
    assert "No system was evaluated on the validation split" in (out / "summary_val.md").read_text()
