"""The whole chain, run once by the real snakemake on a tiny 8-bit GPT-J (`finished_pipeline` in
conftest.py): every stage and output, numbers that are the scorer's and the metrics code's own on
the same prompts and predictions, the report, a rerun that does nothing, and a rerun of one
approach after its config changed."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from conftest import LABELS

pytestmark = pytest.mark.slow

APPROACHES = ("layernorm", "lora_attention", "lora_all")
STYLES = ("instruction", "raw")
CELL = "tiny-gptj/{approach}/{style}/8bit/seed42"
SYSTEMS = [CELL.format(approach=a, style=s) for a in APPROACHES for s in STYLES] + [
    "tiny-gptj/fewshot-k0", "tiny-gptj/fewshot-k1", "baseline/tfidf"]


def evaluation(pipeline, system: str, split: str) -> tuple[pd.DataFrame, dict]:
    directory = pipeline.path(f"results/eval/{system}" + ("" if split == "test" else f"/{split}"))
    predictions = pd.read_csv(directory / "predictions.csv", dtype={"id": str}, keep_default_na=False)
    return predictions, json.loads((directory / "metrics.json").read_text())


def evaluation_settings(pipeline) -> dict:
    """The run's `evaluation` section as the Snakefile saw it: validated, schema defaults filled."""
    import copy

    from snakemake.utils import validate

    from conftest import REPO

    config = copy.deepcopy(pipeline.config)
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    return config["evaluation"]


def score_columns(predictions: pd.DataFrame) -> pd.DataFrame:
    """The per-label score columns (<what>_<label>), in label order."""
    columns = [next(c for c in predictions.columns if re.fullmatch(rf"[a-z]+_{label}", c)) for label in LABELS]
    return predictions[columns]


def test_every_approach_trains_and_is_evaluated(finished_pipeline):
    for approach in APPROACHES:
        for style in STYLES:
            train = finished_pipeline.path(f"results/train/{CELL.format(approach=approach, style=style)}")
            summary = json.loads((train / "summary.json").read_text())
            assert 0 < summary["trainable_parameters"] < summary["total_parameters"]
            assert summary["approach"] == approach and summary["style"] == style
            assert (train / "curves.csv").exists() and (train / "adapter").is_dir()


@pytest.mark.parametrize("split", ["test", "val"])
def test_every_systems_metrics_are_the_metrics_code_on_its_predictions(finished_pipeline, split):
    """metrics.json holds what adaptune.metrics computes from predictions.csv, and the
    predictions cover the split's tweets with their gold labels."""
    from adaptune.metrics import classification_metrics

    evaluation_config = evaluation_settings(finished_pipeline)
    tweets = pd.read_csv(finished_pipeline.path(f"results/splits/{split}.csv"), dtype={"id": str})
    for system in SYSTEMS:
        predictions, metrics = evaluation(finished_pipeline, system, split)
        assert sorted(predictions["id"]) == sorted(tweets["id"])
        gold = dict(zip(tweets["id"], tweets["label"]))
        assert predictions["gold"].tolist() == [gold[i] for i in predictions["id"]]
        assert set(predictions["predicted"]) <= set(LABELS)
        expected = classification_metrics(predictions["gold"].tolist(), predictions["predicted"].tolist(), LABELS,
                                          evaluation_config["bootstrap_samples"], evaluation_config["seed"])
        assert metrics["split"] == split and metrics["n"] == len(tweets) == 12
        assert {key: metrics[key] for key in expected} == expected, system
        # the predicted label is the best-scored one
        scores = score_columns(predictions).to_numpy()
        assert predictions["predicted"].tolist() == [LABELS[j] for j in scores.argmax(axis=1)]


def test_a_fine_tuned_systems_predictions_are_the_scorers(finished_pipeline, one_thread):
    """The test prompts scored again in process, with the adapter the pipeline saved, give the
    scores and labels of its predictions.csv."""
    from adaptune.adapters import load_trained
    from adaptune.prompts import read_prompts
    from adaptune.scoring import ScoringSettings, score_labels

    cell = CELL.format(approach="lora_all", style="instruction")
    model, tokenizer, record = load_trained(finished_pipeline.path(f"results/train/{cell}/adapter"),
                                            finished_pipeline.path("resources/models/tiny-gptj"))
    records = read_prompts(finished_pipeline.path("results/prompts/instruction/test.jsonl"), LABELS)
    trained = record.get("settings", {})
    scores = score_labels(model, tokenizer, [r["prompt"] for r in records], LABELS,
                          ScoringSettings(max_length=int(record["max_length"]),
                                          truncation_side=trained.get("truncation_side"),
                                          precision=trained.get("precision", "32-true")))
    predictions, _ = evaluation(finished_pipeline, cell, "test")
    by_id = predictions.set_index("id")
    ids = [r["id"] for r in records]
    np.testing.assert_allclose(score_columns(by_id.loc[ids]).to_numpy(), scores, rtol=1e-4, atol=1e-4)
    assert by_id.loc[ids, "predicted"].tolist() == [LABELS[j] for j in scores.argmax(axis=1)]


def test_the_baselines_predictions_are_the_baselines(finished_pipeline):
    from adaptune.baseline import BaselineSettings, predict_frame, read_split, train_baseline

    splits = {name: read_split(finished_pipeline.path(f"results/splits/{name}.csv"), LABELS)
              for name in ("train", "test")}
    model = train_baseline(splits["train"]["text"].tolist(), splits["train"]["label"].tolist(),
                           BaselineSettings(seed=evaluation_settings(finished_pipeline)["seed"]))
    expected = predict_frame(model, splits["test"], LABELS)
    predictions, _ = evaluation(finished_pipeline, "baseline/tfidf", "test")
    assert predictions["predicted"].tolist() == expected["predicted"].tolist()
    np.testing.assert_allclose(score_columns(predictions).to_numpy(), score_columns(expected).to_numpy(),
                               rtol=1e-9, atol=1e-12)


def test_report_has_a_row_per_system_paired_tests_and_openai_not_run(finished_pipeline):
    summary = finished_pipeline.path("results/report/summary.md").read_text()
    for name in ("LoRA, all linear layers", "LoRA, attention", "ormalization", "TF-IDF", "shot"):
        assert name in summary, f"{name!r} missing from summary.md"
    assert "not run: openai.enabled is false" in summary
    paired = pd.read_csv(finished_pipeline.path("results/report/paired_differences.csv"))
    assert {"approach", "best fine-tuning vs TF-IDF", "best fine-tuning vs few-shot"} <= set(paired["comparison"])
    answer = summary.split("##")[0]
    assert answer.count("- ") >= 5  # one line per macro-F1 comparison and the note on intervals
    groups = pd.read_csv(finished_pipeline.path("results/report/groups.csv"))
    assert groups.loc[groups["status"] == "ran", "ece"].notna().sum() == 6  # the fine-tuned ones
    # The report's numbers are the systems' metrics.json
    runs = pd.read_csv(finished_pipeline.path("results/report/summary.csv")).set_index("name")
    for system in SYSTEMS:
        _, metrics = evaluation(finished_pipeline, system, "test")
        assert runs.loc[system, "accuracy"] == pytest.approx(metrics["accuracy"])
        assert runs.loc[system, "macro_f1"] == pytest.approx(metrics["macro_f1"])


def test_a_published_study_and_the_readme_section_come_from_the_run_outputs(finished_pipeline, tmp_path):
    """`adaptune publish` copies the report's tables with the run's commit, config, machine and
    time; `adaptune readme` writes the README section from those files alone, so that a number
    changed in a file no longer matches the README."""
    import shutil

    from adaptune.cli import main
    from adaptune.publish import current_section, published_studies, section

    report = finished_pipeline.path("results/report")
    folder = tmp_path / "docs/results/tiny"
    assert main(["publish", str(report), str(folder), "--root", str(finished_pipeline.workdir)]) == 0
    for name in ("summary.md", "summary.csv", "groups.csv", "paired_differences.csv"):
        assert (folder / name).read_bytes() == (report / name).read_bytes(), name
    run = json.loads((folder / "run.json").read_text())
    assert len(run["commit"]) >= 40 and "core" in run["machine"]
    assert run["run_time"]["jobs"] >= 10 and run["run_time"]["wall_time_s"] > 0
    import yaml
    assert yaml.safe_load((folder / "config.yaml").read_text())["splits"]["test"] == 12
    assert published_studies(tmp_path) == ["docs/results/tiny"]

    readme = tmp_path / "README.md"
    readme.write_text("# adaptune\n\n<!-- results:begin -->\ntyped by hand: 0.99\n<!-- results:end -->\n\nMore.\n")
    assert main(["readme", "docs/results/tiny", "--readme", str(readme)]) == 0
    current, source = current_section(readme)
    assert source == "docs/results/tiny" and "typed by hand" not in current
    assert readme.read_text().startswith("# adaptune\n\n") and readme.read_text().endswith("\n\nMore.\n")
    groups = pd.read_csv(folder / "groups.csv")
    for _, row in groups[groups["status"] == "ran"].iterrows():
        assert f"{row['macro_f1_mean']:.3f}" in current
    paired = pd.read_csv(folder / "paired_differences.csv")
    assert current.count(" beats ") == paired["resolved"].sum()
    assert f"Holm correction over the {len(paired)} planned comparisons" in current
    assert current == section(source, tmp_path)
    # A number changed in the published files: the README no longer matches them.
    edited = groups.copy()
    edited.loc[edited["status"] == "ran", "macro_f1_mean"] += 0.01
    edited.to_csv(folder / "groups.csv", index=False)
    assert current != section(source, tmp_path)
    shutil.rmtree(folder)


def test_html_report_embeds_every_figure(finished_pipeline):
    finished_pipeline.run("--report", "report.html")
    html = finished_pipeline.path("report.html").read_text()
    figures = list(finished_pipeline.path("results/report").rglob("*.png"))
    assert figures
    for figure in figures:
        assert figure.name in html


def test_nothing_to_do_on_rerun_and_one_change_reruns_one_approach(finished_pipeline):
    result = finished_pipeline.run("-n")
    assert "Nothing to be done" in result.stdout + result.stderr
    from test_workflow import planned_rules

    learning_rate = finished_pipeline.config["training"]["approaches"]["lora_all"]["learning_rate"]
    plan = planned_rules(finished_pipeline.run("-n", "--quiet", "rules", config={
        "training": {"approaches": {"lora_all": {"learning_rate": 2 * learning_rate}}}}))
    assert "train_lora_all" in plan
    assert "train_layernorm" not in plan and "train_lora_attention" not in plan
