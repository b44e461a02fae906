"""The README's results and reference sections are generated from published runs' files
(docs/results/), never typed: regenerating each from the folder it names gives exactly what the
README holds."""

import re
from pathlib import Path

import pandas as pd

import pytest

from adaptune.report.publish import SECTIONS, current_section, generated, published_studies

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("kind", sorted(SECTIONS))
def test_readme_sections_are_what_their_published_files_generate(kind):
    current, folder = current_section(REPO / "README.md", kind)
    assert current == generated(kind, folder, REPO), (
        f"README.md's {kind} section differs from its published files; regenerate it with "
        f"`adaptune readme {folder or 'none --section ' + kind}`"
    )
    published = published_studies(REPO, kind)
    if published:
        assert folder in published, (
            f"README.md's {kind} section shows {folder or 'nothing'}; published: {published}"
        )


def test_the_readmes_predict_line_uses_the_published_studys_val_chosen_best():
    _, folder = current_section(REPO / "README.md")
    shown = re.findall(r"adaptune predict --adapter (\S+)", (REPO / "README.md").read_text())
    assert shown
    if folder is None:
        return
    groups = pd.read_csv(REPO / folder / "groups.csv", keep_default_na=False)
    best = groups.loc[groups["chosen"].str.startswith("best fine-tuned"), "group"]
    runs = pd.read_csv(REPO / folder / "summary.csv")
    adapters = set(runs.loc[runs["group"].isin(best), "adapter"])
    assert adapters and set(shown) <= adapters, (shown, adapters)


def test_publish_refuses_an_incomplete_report_and_leaves_the_destination_alone(tmp_path):
    import pytest

    from adaptune.report.publish import PublishError, publish

    report = tmp_path / "results/report"
    report.mkdir(parents=True)
    (report / "summary.md").write_text("# a report\n")
    with pytest.raises(PublishError) as error:
        publish(report, tmp_path / "docs/results/x", tmp_path)
    assert str(report) in str(error.value) and "groups.csv" in str(error.value)
    assert not (tmp_path / "docs/results/x").exists()


def test_publish_never_replaces_the_report_or_a_folder_it_did_not_write(tmp_path, capsys):
    """The report's own folder (its run.json, but no publication's), a folder holding it and
    another study's report are refused with nothing lost; an earlier publication is replaced."""
    import json
    import shutil

    from adaptune.report.publish import PublishError, publish

    report = tmp_path / "results/report"
    shutil.copytree(REPO / "docs/results/default", report)
    run = json.loads((report / "run.json").read_text())
    del run["published"]  # as the report rule writes it, with the config inside
    (report / "run.json").write_text(json.dumps({**run, "config": {"splits": {"test": 600}}}))
    (report / "figures").mkdir(exist_ok=True)  # the publication holds its forest plot
    (report / "figures/forest.png").write_bytes(b"\x89PNG a figure")
    (report / "summary.html").write_text("<p>the report</p>")
    other = tmp_path / "elsewhere/results/report"
    shutil.copytree(report, other)

    def files(folder):
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))

    before = files(tmp_path)
    for destination, says in (
        (report, "is the report's own folder"),
        (tmp_path / "results", "is the report's own folder"),
        (other, "holds files that this would replace"),
    ):
        with pytest.raises((PublishError, OSError)) as error:
            publish(report, destination, tmp_path)
        assert says in str(error.value), error.value
        assert files(tmp_path) == before, destination
    # From the command line: one line naming the folder, no traceback.
    from adaptune.cli import main

    assert main(["publish", str(report), str(report), "--root", str(tmp_path)]) == 1
    said = capsys.readouterr().err
    assert said.startswith(f"adaptune publish: error: {report}: is the report's own folder")
    assert "Traceback" not in said and files(tmp_path) == before
    published = tmp_path / "docs/results/x"
    publish(report, published, tmp_path)
    (published / "stale.txt").write_text("from the earlier publication")
    publish(report, published, tmp_path)
    assert not (published / "stale.txt").exists() and (published / "summary.md").is_file()


def test_run_time_spans_the_first_job_start_to_the_last_end(tmp_path):
    import os

    from adaptune.report.publish import run_time

    for name, seconds, end in (("train.tsv", 600.0, 10_000), ("report.tsv", 30.0, 12_000)):
        path = tmp_path / "benchmarks" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:00\t100\n")
        os.utime(path, (end, end))
    timing = run_time(tmp_path / "benchmarks")
    assert (timing["jobs"], timing["job_time_s"], timing["wall_time_s"]) == (
        2,
        630.0,
        12_000 - (10_000 - 600),
    )
    assert timing["busy_time_s"] == 630.0  # the pause between the two jobs is not running time
    assert run_time(tmp_path / "nothing") is None
    # A job beside the first, overlapping it by 100 s: 100 s more of running, not 200.
    path = tmp_path / "benchmarks" / "side.tsv"
    path.write_text("s\th:m:s\tmax_rss\n200.0\t0:00:00\t100\n")
    os.utime(path, (10_100, 10_100))
    assert run_time(tmp_path / "benchmarks")["busy_time_s"] == 600.0 + 100.0 + 30.0


def test_a_run_resumed_across_sessions_gives_its_running_time_before_its_span():
    from adaptune.report.publish import took_text

    paused = {"run_time": {"jobs": 60, "wall_time_s": 30_000.0, "busy_time_s": 14_400.0}}
    assert (
        took_text(paused)
        == ", 4.0 h of running (8.3 h from first job to last (60 jobs), pauses included)"
    )
    straight = {"run_time": {"jobs": 25, "wall_time_s": 3_000.0, "busy_time_s": 2_990.0}}
    assert took_text(straight) == ", 50 min from first job to last (25 jobs)"


def test_a_tuned_publication_carries_the_sweeps_choice_and_the_readme_states_it(tmp_path):
    """Publishing a tuned study copies chosen.yaml and the val scores behind it; the README
    section then says at which learning rate and epochs each approach trained."""
    import json
    import shutil

    from adaptune.report.publish import publish, section
    from adaptune.sweep.choice import format_chosen

    report = tmp_path / "results/report"
    shutil.copytree(REPO / "docs/results/default", report)
    run = json.loads((report / "run.json").read_text())
    (report / "run.json").write_text(json.dumps({**run, "config": {"splits": {"test": 600}}}))
    sweep = tmp_path / "results/sweep"
    sweep.mkdir(parents=True)
    (sweep / "chosen.yaml").write_text(
        format_chosen(
            {
                "layernorm": {
                    "learning_rate": 0.01,
                    "epochs": 2,
                    "val_macro_f1": 0.8123,
                    "seeds": 2,
                },
                "lora_all": {
                    "learning_rate": 0.002,
                    "epochs": 1,
                    "val_macro_f1": 0.8345,
                    "seeds": 2,
                },
            },
            [42, 43],
        )
    )
    (sweep / "summary.md").write_text("# the sweep on val\n")
    (sweep / "summary.csv").write_text(
        "approach,learning_rate,epochs,seed,val_macro_f1,chosen\n"
        + "".join(
            f"{a},{rate},{epochs},42,0.8,{(rate, epochs) == best}\n"
            for a, best in (("layernorm", (0.01, 2)), ("lora_all", (0.002, 1)))
            for rate in (0.002, 0.01)
            for epochs in (1, 2)
        )
    )

    publish(report, tmp_path / "docs/results/tuned", tmp_path)
    folder = tmp_path / "docs/results/tuned"
    for name, source in (
        ("chosen.yaml", "chosen.yaml"),
        ("sweep.md", "summary.md"),
        ("sweep.csv", "summary.csv"),
    ):
        assert (folder / name).read_bytes() == (sweep / source).read_bytes(), name
    text = section("docs/results/tuned", tmp_path)
    assert (
        "**Settings, chosen on val** by the sweep (mean val macro-F1 over 2 seeds; "
        "[chosen.yaml](docs/results/tuned/chosen.yaml)"
    ) in text
    assert (
        "Normalization layers only at learning rate 0.01, 2 epochs (val macro-F1 0.812); "
        "LoRA, all linear layers at learning rate 0.002, 1 epoch (val macro-F1 0.835)."
    ) in text
    assert (
        "On an edge of the swept grid: Normalization layers only at the highest learning rate "
        "and the most epochs; LoRA, all linear layers at the lowest learning rate."
    ) in text
    # A study without a sweep says nothing of one.
    assert "chosen on val** by the sweep" not in section("docs/results/default", REPO)


def test_a_published_reanalysis_is_what_the_published_files_give(tmp_path):
    """paired_by_seed.csv (adaptune reanalyse) is reproduced from the folder's own files; its
    seed-paired intervals hold the mean per-seed difference and are at least as wide as the t
    interval of the per-seed differences alone, and narrower than the independent-seeds ones."""
    import shutil

    import numpy as np
    from scipy import stats

    from adaptune.cli import main

    for folder in sorted(REPO.glob("docs/results/*/paired_by_seed.csv")):
        copy = shutil.copytree(folder.parent, tmp_path / folder.parent.name)
        (copy / "paired_by_seed.csv").unlink()
        assert main(["reanalyse", str(copy)]) == 0
        redone, committed = pd.read_csv(copy / "paired_by_seed.csv"), pd.read_csv(folder)
        pd.testing.assert_frame_equal(redone, committed)
        assert (copy / "reanalysis.md").read_text() == (folder.parent / "reanalysis.md").read_text()
        runs = pd.read_csv(copy / "summary.csv").set_index(["group", "seed"])["macro_f1"]
        published = pd.read_csv(copy / "paired_differences.csv").set_index(["a_group", "b_group"])
        assert set(committed["verdict"]) <= {"A beats B", "B beats A", "equivalent", "undecided"}
        for _, r in committed[committed["seed_paired"]].iterrows():
            per_seed = (runs[r["a_group"]] - runs[r["b_group"]]).dropna().to_numpy()
            assert r["difference"] == pytest.approx(per_seed.mean())
            t_half = (
                stats.t.ppf(0.975, len(per_seed) - 1)
                * per_seed.std(ddof=1)
                / np.sqrt(len(per_seed))
            )
            assert (r["ci_high"] - r["ci_low"]) / 2 >= 0.95 * t_half
            before = published.loc[(r["a_group"], r["b_group"])]
            assert r["ci_high"] - r["ci_low"] < before["ci_high"] - before["ci_low"]


def test_a_published_comparison_without_width_is_reanalysed_as_undecided(tmp_path):
    """A published row whose interval has no width (two systems that agreed on every tweet) is
    not equivalent by the normal approximation, whose standard error it would make zero."""
    import shutil

    from adaptune.cli import main

    copy = shutil.copytree(REPO / "docs/results/tuned", tmp_path / "tuned")
    published = pd.read_csv(copy / "paired_differences.csv")
    row = published["comparison"] == "best fine-tuning vs TF-IDF"
    published.loc[row, ["difference", "ci_low", "ci_high"]] = 0.0
    published.to_csv(copy / "paired_differences.csv", index=False)
    assert main(["reanalyse", str(copy)]) == 0
    redone = pd.read_csv(copy / "paired_by_seed.csv").set_index("comparison")
    assert redone.loc["best fine-tuning vs TF-IDF", "verdict"] == "undecided"


def test_publish_carries_every_runs_per_item_answers_for_an_exact_reanalysis(tmp_path):
    """The published predictions.csv.gz holds each run's answer per test and val item, read from
    the predictions.csv beside its metrics.json; a run whose file is gone stops the publication."""
    import json
    import shutil

    from adaptune.report.publish import PublishError, publish

    report = tmp_path / "results/report"
    shutil.copytree(REPO / "docs/results/default", report)
    run = json.loads((report / "run.json").read_text())
    (report / "run.json").write_text(json.dumps({**run, "config": {"splits": {"test": 2}}}))
    rows = []
    for split, name in (("test", "a/seed1"), ("test", "a/seed2"), ("val", "a/seed1")):
        directory = Path("results/eval") / name / ("" if split == "test" else "val")
        (tmp_path / directory).mkdir(parents=True, exist_ok=True)
        pd.DataFrame(
            {
                "id": ["t1", "t2"],
                "text": "x",
                "gold": ["hate", "neutral"],
                "predicted": ["hate", name[-1]],
            }
        ).to_csv(tmp_path / directory / "predictions.csv", index=False)
        rows.append(
            {
                "name": name,
                "split": split,
                "status": "ran",
                "metrics_file": (directory / "metrics.json").as_posix(),
            }
        )
    runs = pd.DataFrame(rows)
    runs[runs["split"] == "test"].to_csv(report / "summary.csv", index=False)
    runs[runs["split"] == "val"].to_csv(report / "summary_val.csv", index=False)
    folder = publish(report, tmp_path / "docs/results/study", tmp_path)
    items = pd.read_csv(folder / "predictions.csv.gz", dtype=str)
    assert len(items) == 6 and set(items["split"]) == {"test", "val"}
    assert (
        items.set_index(["name", "split", "id"]).loc[("a/seed2", "test", "t2"), "predicted"] == "2"
    )
    (tmp_path / "results/eval/a/seed2/predictions.csv").unlink()
    with pytest.raises(PublishError, match="predictions.csv missing for 1 run"):
        publish(report, tmp_path / "docs/results/other", tmp_path)
    assert not (tmp_path / "docs/results/other").exists()


def test_every_image_a_published_summary_shows_is_published():
    """A publication's summary.md opens with its forest plot: the image is in the folder."""
    for summary in sorted((REPO / "docs/results").glob("*/summary.md")):
        shown = re.findall(r"!\[[^]]*\]\(([^)]+)\)", summary.read_text())
        missing = [image for image in shown if not (summary.parent / image).is_file()]
        assert not missing, f"{summary.relative_to(REPO)} shows {missing}, not published"
