"""The whole chain, run once by the real snakemake on a tiny 8-bit GPT-J (`finished_pipeline` in
conftest.py): every stage and output, numbers that are the scorer's and the metrics code's own on
the same prompts and predictions, the report, publishing, where the run's time went, a rerun that
does nothing, and reruns of exactly the cells a config change touches. Every test that reads the
shared run lives here, so that one pytest-xdist worker builds it (`--dist loadfile`)."""

import hashlib
import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import (
    LABELS,
    REPO,
    Pipeline,
    job_stats,
    jobs_per_approach,
    write_raw_csv,
    write_reference_csvs,
)

from adaptune.core.names import APPROACHES

pytestmark = pytest.mark.slow

STYLES = ("instruction",)  # the shared run's one style
CELL = "tiny-gptj/{approach}/{style}/8bit/seed42"
PROMPTS = "results/prompts/instruction/train.jsonl"
SYSTEMS = [CELL.format(approach=a, style=s) for a in APPROACHES for s in STYLES] + [
    "tiny-gptj/fewshot-k1",
    "baseline/tfidf",
]


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def evaluation(pipeline, system: str, split: str) -> tuple[pd.DataFrame, dict]:
    directory = pipeline.path(f"results/eval/{system}" + ("" if split == "test" else f"/{split}"))
    predictions = pd.read_csv(
        directory / "predictions.csv", dtype={"id": str}, keep_default_na=False
    )
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
    columns = [
        next(c for c in predictions.columns if re.fullmatch(rf"[a-z]+_{label}", c))
        for label in LABELS
    ]
    return predictions[columns]


def test_every_approach_trains_and_is_evaluated(finished_pipeline):
    for approach in APPROACHES:
        for style in STYLES:
            train = finished_pipeline.path(
                f"results/train/{CELL.format(approach=approach, style=style)}"
            )
            summary = json.loads((train / "summary.json").read_text())
            assert 0 < summary["trainable_parameters"] < summary["total_parameters"]
            assert summary["approach"] == approach and summary["style"] == style
            assert (train / "curves.csv").exists() and (train / "adapter").is_dir()


def snakemake_events(workdir) -> list[tuple[str, str, str]]:
    """The job starts and ends of the first Snakemake run in `workdir`, in order, from its log in
    .snakemake/log/ (named by its start time): ("start", rule, wildcards), ("end", ...)."""
    log = min((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    events, started = [], {}
    for block in re.split(r"\n(?=\[)", log.read_text()):
        start = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        if start:
            job = re.search(r"^\s+jobid: (\d+)", block, re.M)[1]
            wildcards = re.search(r"^\s+wildcards: (.*)$", block, re.M)
            started[job] = (start[1], wildcards[1] if wildcards else "")
            events.append(("start", *started[job]))
        for job in re.findall(r"^Finished jobid: (\d+)", block, re.M):
            events.append(("end", *started[job]))
    return events


def test_a_trained_cell_is_evaluated_before_another_cell_starts_training(finished_pipeline):
    """Evaluation outranks training (the rules' priorities): from the moment a cell's training
    ends until its evaluation starts, no other cell starts to train. A study cut short, or carried
    elsewhere by `adaptune progress save` (no adapters), thus keeps evaluated cells."""
    events = snakemake_events(finished_pipeline.workdir)
    cells = [w for kind, rule, w in events if kind == "start" and rule == "train"]
    assert len(cells) == len(APPROACHES) * len(STYLES)
    for cell in cells:
        trained = events.index(("end", "train", cell))
        evaluated = events.index(("start", "evaluate", cell))
        between = events[trained:evaluated]
        assert not [e for e in between if e[:2] == ("start", "train")], (cell, between)


def test_the_head_cell_is_evaluated_on_its_heads_scores(finished_pipeline):
    """The classification head's cell, trained and evaluated by Snakemake like the others: its
    predictions carry a score per label (the head's log-softmax) under the same columns."""
    from adaptune.core.names import LOGLIK, score_column

    cell = CELL.format(approach="head", style="instruction")
    metrics = json.loads(finished_pipeline.path(f"results/eval/{cell}/metrics.json").read_text())
    assert metrics["system"]["method"] == "head" and metrics["n"] == 12
    predictions = pd.read_csv(finished_pipeline.path(f"results/eval/{cell}/predictions.csv"))
    assert {score_column(LOGLIK, label) for label in LABELS} <= set(predictions)
    scores = np.exp(predictions[[score_column(LOGLIK, label) for label in LABELS]].to_numpy())
    assert scores.sum(axis=1) == pytest.approx(1.0, abs=1e-4)  # a distribution over the labels


@pytest.mark.parametrize("split", ["test", "val"])
def test_every_systems_metrics_are_the_metrics_code_on_its_predictions(finished_pipeline, split):
    """metrics.json holds what adaptune.evaluate.metrics computes from predictions.csv, and the
    predictions cover the split's tweets with their gold labels."""
    from adaptune.evaluate.metrics import classification_metrics

    evaluation_config = evaluation_settings(finished_pipeline)
    tweets = pd.read_csv(finished_pipeline.path(f"results/splits/{split}.csv"), dtype={"id": str})
    for system in SYSTEMS:
        predictions, metrics = evaluation(finished_pipeline, system, split)
        assert sorted(predictions["id"]) == sorted(tweets["id"])
        gold = dict(zip(tweets["id"], tweets["label"]))
        assert predictions["gold"].tolist() == [gold[i] for i in predictions["id"]]
        assert set(predictions["predicted"]) <= set(LABELS)
        expected = classification_metrics(
            predictions["gold"].tolist(),
            predictions["predicted"].tolist(),
            LABELS,
            evaluation_config["bootstrap_samples"],
            evaluation_config["seed"],
        )
        assert metrics["split"] == split and metrics["n"] == len(tweets) == 12
        assert {key: metrics[key] for key in expected} == expected, system
        # the predicted label is the best-scored one
        scores = score_columns(predictions).to_numpy()
        assert predictions["predicted"].tolist() == [LABELS[j] for j in scores.argmax(axis=1)]


def test_a_fine_tuned_systems_predictions_are_the_scorers(finished_pipeline, one_thread):
    """The test prompts scored again in process, with the adapter the pipeline saved, give the
    scores and labels of its predictions.csv."""
    from adaptune.approaches.adapters import load_trained
    from adaptune.data.prompts import read_prompts
    from adaptune.lm.scoring import ScoringSettings, score_labels

    cell = CELL.format(approach="lora_all", style="instruction")
    model, tokenizer, record = load_trained(
        finished_pipeline.path(f"results/train/{cell}/adapter"),
        finished_pipeline.path("resources/models/tiny-gptj"),
    )
    records = read_prompts(finished_pipeline.path("results/prompts/instruction/test.jsonl"), LABELS)
    trained = record.get("settings", {})
    scores = score_labels(
        model,
        tokenizer,
        [r["prompt"] for r in records],
        LABELS,
        ScoringSettings(
            max_length=int(record["max_length"]),
            truncation_side=trained.get("truncation_side"),
            precision=trained.get("precision", "32-true"),
        ),
    )
    predictions, _ = evaluation(finished_pipeline, cell, "test")
    by_id = predictions.set_index("id")
    ids = [r["id"] for r in records]
    np.testing.assert_allclose(
        score_columns(by_id.loc[ids]).to_numpy(), scores, rtol=1e-4, atol=1e-4
    )
    assert by_id.loc[ids, "predicted"].tolist() == [LABELS[j] for j in scores.argmax(axis=1)]


def test_the_baselines_predictions_are_the_baselines(finished_pipeline):
    from adaptune.evaluate.baseline import (
        BaselineSettings,
        predict_frame,
        read_split,
        train_baseline,
    )

    splits = {
        name: read_split(finished_pipeline.path(f"results/splits/{name}.csv"), LABELS)
        for name in ("train", "test")
    }
    model = train_baseline(
        splits["train"]["text"].tolist(),
        splits["train"]["label"].tolist(),
        BaselineSettings(seed=evaluation_settings(finished_pipeline)["seed"]),
    )
    expected = predict_frame(model, splits["test"], LABELS)
    predictions, _ = evaluation(finished_pipeline, "baseline/tfidf", "test")
    assert predictions["predicted"].tolist() == expected["predicted"].tolist()
    np.testing.assert_allclose(
        score_columns(predictions).to_numpy(),
        score_columns(expected).to_numpy(),
        rtol=1e-9,
        atol=1e-12,
    )


def test_report_has_a_row_per_system_paired_tests_and_openai_not_run(finished_pipeline):
    summary = finished_pipeline.path("results/report/summary.md").read_text()
    for name in ("LoRA, all linear layers", "LoRA, attention", "ormalization", "TF-IDF", "shot"):
        assert name in summary, f"{name!r} missing from summary.md"
    assert "not run: openai.enabled is false" in summary
    paired = pd.read_csv(finished_pipeline.path("results/report/paired_differences.csv"))
    assert {"approach", "best fine-tuning vs TF-IDF", "best fine-tuning vs few-shot"} <= set(
        paired["comparison"]
    )
    answer = summary.split("##")[0]
    assert answer.count("- ") >= 5  # one line per macro-F1 comparison and the note on intervals
    groups = pd.read_csv(finished_pipeline.path("results/report/groups.csv"))
    assert groups.loc[groups["status"] == "ran", "ece"].notna().sum() == len(
        APPROACHES
    )  # the fine-tuned ones
    # Each fine-tuned system's learning rate and epochs are those it trained at; prompting has none.
    settings = groups.set_index("group")[["learning_rate", "epochs"]]
    for approach in APPROACHES:
        cell = CELL.format(approach=approach, style="instruction")
        trained = json.loads(
            finished_pipeline.path(f"results/train/{cell}/summary.json").read_text()
        )
        config = trained["provenance"]["config"]
        assert tuple(settings.loc[cell.rpartition("/")[0]]) == (
            config["learning_rate"],
            trained["epochs"],
        )
        assert f"| {config['learning_rate']:g}, {trained['epochs']} |" in summary
    assert settings.loc["tiny-gptj/fewshot-k1"].isna().all()
    # The report's numbers are the systems' metrics.json
    runs = pd.read_csv(finished_pipeline.path("results/report/summary.csv")).set_index("name")
    for system in SYSTEMS:
        _, metrics = evaluation(finished_pipeline, system, "test")
        assert runs.loc[system, "accuracy"] == pytest.approx(metrics["accuracy"])
        assert runs.loc[system, "macro_f1"] == pytest.approx(metrics["macro_f1"])


def test_a_published_study_and_the_readme_section_come_from_the_run_outputs(
    finished_pipeline, tmp_path
):
    """`adaptune publish` copies the report's tables with the run's commit, config, machine and
    time; `adaptune readme` writes the README section from those files alone, so that a number
    changed in a file no longer matches the README."""
    import shutil

    from adaptune.cli import main
    from adaptune.report.publish import NO_COMMIT, current_section, published_studies, section

    report = finished_pipeline.path("results/report")
    folder = tmp_path / "docs/results/tiny"
    assert (
        main(["publish", str(report), str(folder), "--root", str(finished_pipeline.workdir)]) == 0
    )
    for name in ("summary.md", "summary.csv", "groups.csv", "paired_differences.csv"):
        assert (folder / name).read_bytes() == (report / name).read_bytes(), name
    # Every image the published summary shows is in the publication.
    shown = re.findall(r"!\[[^]]*\]\(([^)]+)\)", (folder / "summary.md").read_text())
    assert shown and all((folder / image).is_file() for image in shown), shown
    run = json.loads((folder / "run.json").read_text())
    assert "core" in run["machine"]
    if run["commit"]:  # a git checkout
        assert len(run["commit"]) >= 40 and "commit_note" not in run
    else:  # a release archive: said, not left blank
        assert run["commit_note"] == NO_COMMIT and "commit not recorded" in section(folder)
    assert run["run_time"]["jobs"] >= 10 and run["run_time"]["wall_time_s"] > 0
    jobs = pd.read_csv(folder / "jobs.csv")
    assert (
        len(jobs)
        == run["run_time"]["jobs"]
        == len(list(finished_pipeline.path("benchmarks").rglob("*.tsv")))
    )
    assert jobs["seconds"].sum() == pytest.approx(run["run_time"]["job_time_s"], abs=0.1)
    import yaml

    assert yaml.safe_load((folder / "config.yaml").read_text())["splits"]["test"] == 12
    assert published_studies(tmp_path) == ["docs/results/tiny"]
    assert (
        published_studies(tmp_path, "reference") == []
        and not (folder / "reference_split.csv").exists()
    )

    readme = tmp_path / "README.md"
    readme.write_text(
        "# adaptune\n\n<!-- results:begin -->\ntyped by hand: 0.99\n<!-- results:end -->\n\nMore.\n"
    )
    assert main(["readme", "docs/results/tiny", "--readme", str(readme)]) == 0
    current, source = current_section(readme)
    assert source == "docs/results/tiny" and "typed by hand" not in current
    assert readme.read_text().startswith("# adaptune\n\n") and readme.read_text().endswith(
        "\n\nMore.\n"
    )
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

    learning_rate = finished_pipeline.config["training"]["approaches"]["lora_all"]["learning_rate"]
    plan = jobs_per_approach(
        finished_pipeline.run(
            "-n",
            config={"training": {"approaches": {"lora_all": {"learning_rate": 2 * learning_rate}}}},
        ).stdout
    )
    assert "train_lora_all" in plan
    assert "train_layernorm" not in plan and "train_lora_attention" not in plan

    # The README's ways to retrain: every cell (`--forcerun train`), or the cells named.
    everything = jobs_per_approach(finished_pipeline.run("-n", "--forcerun", "train").stdout)
    assert {rule: everything[rule] for rule in everything if rule.startswith("train")} == {
        f"train_{approach}": 1 for approach in APPROACHES
    }
    cell = "results/train/tiny-gptj/lora_all/instruction/8bit/seed42/summary.json"
    named = jobs_per_approach(finished_pipeline.run("-n", "--forcerun", cell).stdout)
    assert {rule for rule in named if rule.startswith("train")} == {"train_lora_all"}
    assert named["evaluate"] == 1  # and the cell's evaluation after it


def test_a_time_limit_added_after_a_trained_cell_does_not_retrain_it(finished_pipeline):
    """A trained cell planned again with a time limit and another checkpoint interval (how a run
    is carried out: neither is a rule param) and, as a control, with another learning rate (what
    it trains: the cell reruns)."""
    cell = f"results/train/{CELL.format(approach='layernorm', style='instruction')}/summary.json"
    carried_out_otherwise = {"training": {"max_time": "00:04:00:00", "checkpoint_every_n_steps": 3}}
    again = finished_pipeline.run("-n", cell, config=carried_out_otherwise)
    assert "Nothing to be done" in again.stdout + again.stderr, again.stdout[-3000:]
    faster = {"training": {"approaches": {"layernorm": {"learning_rate": 0.5}}}}
    retrained = finished_pipeline.run("-n", cell, config=faster)
    assert jobs_per_approach(retrained.stdout).get("train_layernorm") == 1


def test_a_new_style_or_seed_plans_only_its_cells_and_a_template_change_reruns_its_style(
    finished_pipeline,
):
    """On the finished run (every approach, the instruction prompt, one seed): adding the raw
    style plans the raw cells only, a second seed plans that seed's cells only, and a new
    instruction template reruns the instruction cells and what reads them."""
    pipeline = finished_pipeline
    templates = pipeline.config["prompts"]["templates"]
    plan = pipeline.run("-n", config={"training": {"styles": ["instruction", "raw"]}})
    assert jobs_per_approach(plan.stdout) == {
        "format_prompts": 3,
        "train_layernorm": 1,
        "train_lora_attention": 1,
        "train_lora_all": 1,
        "train_head": 1,
        "evaluate": 4,
        "report": 1,
        "all": 1,
    }
    outputs = [line for line in plan.stdout.splitlines() if line.strip().startswith("output:")]
    cells = [line for line in outputs if "results/train/" in line or "results/eval/" in line]
    assert len(cells) == 2 * len(APPROACHES)
    assert all("/raw/8bit/seed42" in line for line in cells)
    assert not any("instruction" in line for line in outputs)

    two_seeds = {"training": {"seeds": [42, 43]}}
    plan = pipeline.run("-n", config=two_seeds)
    assert jobs_per_approach(plan.stdout) == {
        "train_layernorm": 1,
        "train_lora_attention": 1,
        "train_lora_all": 1,
        "train_head": 1,
        "evaluate": 4,
        "report": 1,
        "all": 1,
    }
    outputs = [
        line
        for line in plan.stdout.splitlines()
        if line.strip().startswith("output:")
        and ("results/train/" in line or "results/eval/" in line)
    ]
    assert outputs and all("/seed43" in line and "/seed42" not in line for line in outputs)

    new_instruction = {
        "prompts": {"templates": {**templates, "instruction": templates["instruction"] + " "}}
    }
    plan = jobs_per_approach(pipeline.run("-n", config=new_instruction).stdout)
    assert plan["format_prompts"] == 3 and plan["evaluate"] == len(APPROACHES)
    assert all(plan[f"train_{approach}"] == 1 for approach in APPROACHES)
    assert "sample_splits" not in plan and "baseline_tfidf" not in plan


def test_prompts_from_a_placed_dataset_are_balanced_and_reproducible(finished_pipeline, tmp_path):
    pipeline = finished_pipeline
    records = [json.loads(line) for line in pipeline.path(PROMPTS).read_text().splitlines()]
    assert len(records) == 24
    assert {r["label"] for r in records} == {"hate", "offensive", "neutral"}
    assert all(
        r["prompt"].endswith("Category:") and r["completion"] == " " + r["label"] for r in records
    )
    splits = {
        n: pipeline.path(f"results/splits/{n}.csv").read_text().splitlines()[1:]
        for n in ("train", "val", "test")
    }
    assert not (
        set(splits["train"]) & set(splits["val"]) or set(splits["train"]) & set(splits["test"])
    )
    # The reference split's tweets (written with their HTML entities) are in no split.
    reference = {
        line.split(",", 1)[1].strip('"').replace("&amp;", "&")
        for part in ("train", "val")
        for line in pipeline.path(f"data/reference_{part}.csv").read_text().splitlines()[1:]
    }
    for name in ("train", "val", "test"):
        texts = set(pd.read_csv(pipeline.path(f"results/splits/{name}.csv"))["text"])
        assert len(texts) > 0 and not texts & reference

    # The same config in a fresh directory gives the same bytes.
    again = Pipeline(tmp_path / "again", pipeline.config)
    write_raw_csv(again.path("data/labeled_data.csv"), per_class=40)
    write_reference_csvs(again.path("data"))
    again.run(PROMPTS)
    for relative in (PROMPTS, "results/splits/val.csv", "results/splits/test.csv"):
        assert digest(pipeline.path(relative)) == digest(again.path(relative))


def test_study_time_accounts_for_every_job_of_a_finished_run(finished_pipeline):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench/study_time.py"),
            "--root",
            str(finished_pipeline.workdir),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    benchmarks = list(finished_pipeline.path("benchmarks").rglob("*.tsv"))
    header = re.search(r"^(\d+) jobs, ([\d.]+) min of job time", out, re.M)
    assert header and int(header[1]) == len(benchmarks), out
    rows = {
        m[1]: (int(m[2]), float(m[3]))
        for m in re.finditer(r"^\| (\w+) \| (\d+) \| ([\d.]+) \|", out, re.M)
    }
    assert sum(jobs for jobs, _ in rows.values()) == len(benchmarks)
    # every approach, one style
    assert rows["train"][0] == rows["evaluate"][0] == len(APPROACHES), rows
    assert sum(minutes for _, minutes in rows.values()) == pytest.approx(
        float(header[2]), abs=0.1 * len(rows)
    )
    cells = re.search(r"^Training: (\d+) cells, (\d+) samples", out, re.M)
    assert cells and int(cells[1]) == len(APPROACHES) and int(cells[2]) == len(APPROACHES) * 24


def test_saved_progress_restored_in_a_fresh_directory_leaves_only_the_report_to_run(
    finished_pipeline, tmp_path, capsys
):
    """`adaptune progress`: the finished jobs of one working directory carried to another (as
    to another machine), with neither adapters nor tweets, and trusted only on the same inputs."""
    from adaptune.cli import main

    done, saved = finished_pipeline, tmp_path / "progress"
    assert main(["progress", "save", str(saved), "--root", str(done.workdir)]) == 0
    counts = f"0 sweep runs, {len(APPROACHES)} trained cells, {len(SYSTEMS)} evaluated systems"
    assert counts in capsys.readouterr().out
    files = json.loads((saved / "progress.json").read_text())["files"]
    assert {
        f"results/train/{CELL.format(approach=a, style='instruction')}/summary.json"
        for a in APPROACHES
    } <= set(files)
    assert {f"results/eval/{system}/metrics.json" for system in SYSTEMS} <= set(files)
    assert not [f for f in files if {"adapter", "checkpoints"} & set(f.split("/"))]
    tweets = pd.read_csv(done.path("results/splits/test.csv"))["text"]
    carried = b"".join(p.read_bytes() for p in saved.rglob("*") if p.is_file())
    assert not [text for text in tweets if text.encode() in carried]

    fresh = Pipeline(tmp_path / "fresh", done.config)
    write_raw_csv(fresh.path("data/labeled_data.csv"), per_class=40)
    write_reference_csvs(fresh.path("data"))
    restore = ["progress", "restore", str(saved), "--root", str(fresh.workdir)]
    assert main(restore) == 1
    assert "missing" in capsys.readouterr().err
    # The same inputs made here: the splits and prompts by their rules, the prepared model
    # copied (preparing it again gives the same files, in a job that costs seconds of imports).
    fresh.place_resources(done.path("resources"))
    fresh.run("--until", "format_prompts")
    # Other inputs than the saved jobs had: refused, and nothing written.
    split = fresh.path("results/splits/test.csv")
    original = split.read_bytes()
    split.write_bytes(original.replace(b"\n", b" \n", 2))
    assert main(restore) == 1
    assert "results/splits/test.csv" in capsys.readouterr().err
    assert not fresh.path("results/train").exists()
    split.write_bytes(original)

    assert main(restore) == 0
    assert counts in capsys.readouterr().out
    # Byte for byte, predictions with their tweets again; the jobs that ran here keep their
    # own benchmarks and logs.
    for relative in (f for f in files if f.startswith("results/")):
        assert digest(fresh.path(relative)) == digest(done.path(relative)), relative
    plan = fresh.run("-n")
    assert job_stats(plan.stdout + plan.stderr) == {"report": 1, "all": 1}
    assert main(restore) == 0  # again: every file already there, nothing written
    assert "restored 0 files" in capsys.readouterr().out
