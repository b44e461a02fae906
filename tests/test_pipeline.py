"""The whole chain, run by the real snakemake on a tiny 8-bit GPT-J: every stage, every output,
the report, a rerun that does nothing, and a rerun of one approach after its config changed."""

import json

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

APPROACHES = ("layernorm", "lora_attention", "lora_all")


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_gptj):
    from conftest import Pipeline, tiny_pipeline_config, write_raw_csv, write_reference_csvs

    workdir = tmp_path_factory.mktemp("pipeline") / "run"
    write_raw_csv(workdir / "data" / "labeled_data.csv", per_class=40)
    write_reference_csvs(workdir / "data")
    pipeline = Pipeline(workdir, tiny_pipeline_config(tiny_gptj))
    pipeline.run()
    return pipeline


def test_every_approach_trains_and_is_evaluated(finished):
    for approach in APPROACHES:
        train = finished.path(f"results/train/tiny-gptj/{approach}/instruction/8bit/seed42")
        summary = json.loads((train / "summary.json").read_text())
        assert 0 < summary["trainable_parameters"] < summary["total_parameters"]
        assert (train / "curves.csv").exists() and (train / "adapter").is_dir()
        for split_dir in ("", "val/"):
            metrics = json.loads(finished.path(
                f"results/eval/tiny-gptj/{approach}/instruction/8bit/seed42/{split_dir}metrics.json").read_text())
            assert metrics["n"] == 12 and 0 <= metrics["accuracy"] <= 1
            assert metrics["split"] == ("val" if split_dir else "test")


def test_fewshot_and_baseline_are_evaluated(finished):
    for system in ("tiny-gptj/fewshot-k0", "tiny-gptj/fewshot-k1", "baseline/tfidf"):
        predictions = pd.read_csv(finished.path(f"results/eval/{system}/predictions.csv"))
        assert len(predictions) == 12
        assert set(predictions["predicted"]) <= {"hate", "offensive", "neutral"}


def test_report_has_a_row_per_system_paired_tests_and_openai_not_run(finished):
    summary = finished.path("results/report/summary.md").read_text()
    for name in ("LoRA, all linear layers", "LoRA, attention", "ormalization", "TF-IDF", "shot"):
        assert name in summary, f"{name!r} missing from summary.md"
    assert "not run: openai.enabled is false" in summary
    paired = pd.read_csv(finished.path("results/report/paired_differences.csv"))
    assert {"approach", "best fine-tuning vs TF-IDF", "best fine-tuning vs few-shot"} <= set(paired["comparison"])
    answer = summary.split("##")[0]
    assert answer.count("- ") >= 5  # one line per macro-F1 comparison and the note on intervals
    groups = pd.read_csv(finished.path("results/report/groups.csv"))
    assert groups.loc[groups["status"] == "ran", "ece"].notna().sum() == 3  # the fine-tuned ones


def test_a_published_study_and_the_readme_section_come_from_the_run_outputs(finished, tmp_path):
    """`adaptune publish` copies the report's tables with the run's commit, config, machine and
    time; `adaptune readme` writes the README section from those files alone, so that a number
    changed in a file no longer matches the README."""
    import shutil

    from adaptune.cli import main
    from adaptune.publish import current_section, published_studies, section

    report = finished.path("results/report")
    folder = tmp_path / "docs/results/tiny"
    assert main(["publish", str(report), str(folder), "--root", str(finished.workdir)]) == 0
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


def test_html_report_embeds_every_figure(finished):
    finished.run("--report", "report.html")
    html = finished.path("report.html").read_text()
    figures = list(finished.path("results/report").rglob("*.png"))
    assert figures
    for figure in figures:
        assert figure.name in html


def test_nothing_to_do_on_rerun_and_one_change_reruns_one_approach(finished):
    assert "Nothing to be done" in finished.run("-n").stdout + finished.run("-n").stderr
    from test_workflow import planned_rules

    learning_rate = finished.config["training"]["approaches"]["lora_all"]["learning_rate"]
    plan = planned_rules(finished.run("-n", "--quiet", "rules", config={
        "training": {"approaches": {"lora_all": {"learning_rate": 2 * learning_rate}}}}))
    assert "train_lora_all" in plan
    assert "train_layernorm" not in plan and "train_lora_attention" not in plan
