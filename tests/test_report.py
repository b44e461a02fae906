"""The report built from hand-made predictions of a small study (three approaches x three seeds,
few-shot, the baseline, OpenAI turned off): its numbers equal the inputs, it aggregates seeds,
its paired tests resolve only real differences, it lists what did not run, the figures are real
images, and bad inputs fail with the file's name."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adaptune.core.io import write_json
from adaptune.evaluate.metrics import evaluation_record, write_evaluation
from adaptune.report.build import OUTPUTS, build_report, output_paths
from adaptune.report.inputs import ReportInputError
from adaptune.report.plan import AnalysisPlan
from adaptune.report.reference_study import REFERENCE_RESULTS
from adaptune.core.systems import System

LABELS = ["hate", "offensive", "neutral"]
MODEL = "smollm2-135m"
N_PER_CLASS = 100
SEEDS = (42, 43, 44)
MACHINES = ("AMD EPYC 9B14, 2 cores", "Intel(R) Xeon(R) Processor, 2 cores")
# Accuracy of each fine-tuned approach (every seed a little different), of few-shot, of TF-IDF.
ACCURACY = {"lora_all": 0.85, "lora_attention": 0.84, "layernorm": 0.55}
OTHERS = [
    System("fewshot", MODEL, "instruction", "8bit", k=0),
    System("fewshot", MODEL, "instruction", "8bit", k=3),
    System("tfidf", "baseline"),
]
OFF = "openai.enabled is false"
NOT_RUN = [
    System("openai_finetune", "openai", "instruction", openai_model="babbage-002", k=0, reason=OFF),
    System("openai_chat", "openai", "instruction", openai_model="gpt-4o-mini", k=0, reason=OFF),
]


def finetuned():
    return [System(a, MODEL, "instruction", "8bit", seed) for a in ACCURACY for seed in SEEDS]


def predictions(system: System, split: str) -> pd.DataFrame:
    """Gold balanced; the system right on a share of the items (a constant 'neutral' for zero-shot),
    scores that are label log-likelihoods favouring its answer."""
    n = 3 * N_PER_CLASS if split == "test" else 30
    gold = [LABELS[i % 3] for i in range(n)]
    rng = np.random.default_rng(zlib.crc32(system.name.encode()))
    accuracy = {"fewshot": 0.5, "tfidf": 0.7, "openai_chat": 0.6}.get(system.method) or (
        ACCURACY[system.method] + 0.01 * SEEDS.index(system.seed)
    )
    if system.k == 0:
        predicted = ["neutral"] * n
    else:
        right = rng.permutation(n) < round(accuracy * n)
        predicted = [g if ok else LABELS[(LABELS.index(g) + 1) % 3] for g, ok in zip(gold, right)]
    scores = np.log(np.full((n, 3), 0.1))
    for row, label in enumerate(predicted):
        scores[row, LABELS.index(label)] = np.log(0.8)
    frame = pd.DataFrame(
        {"id": [f"t{i}" for i in range(n)], "text": "a tweet", "gold": gold, "predicted": predicted}
    )
    for j, label in enumerate(LABELS):
        frame[f"loglik_{label}"] = scores[:, j]
    return frame


def curves_frame(final_accuracy: float) -> pd.DataFrame:
    rows = [{"step": step, "epoch": 0, "train_loss": 1.2 - step / 400} for step in range(4, 250, 5)]
    rows += [
        {
            "step": 124 * (e + 1),
            "epoch": e,
            "val_loss": 0.9,
            "val_accuracy": final_accuracy - 0.05 * (1 - e),
        }
        for e in range(2)
    ]
    return pd.DataFrame(rows, columns=["step", "epoch", "train_loss", "val_loss", "val_accuracy"])


def make_study(root: Path, systems=None) -> list[System]:
    systems = systems if systems is not None else finetuned() + OTHERS
    for system in systems:
        for split in ("test", "val"):
            frame = predictions(system, split)
            record = evaluation_record(
                system.block(),
                split,
                frame["gold"],
                frame["predicted"],
                LABELS,
                examples_per_second=40.0,
                provenance={"peak_memory_mb": 900.0},
                bootstrap_samples=200,
                seed=1,
            )
            directory = root / system.eval_dir / ("" if split == "test" else split)
            write_evaluation(directory, frame, record)
        if system.finetuned:
            directory = root / system.train_dir
            write_json(
                directory / "summary.json",
                {
                    "model": MODEL,
                    "approach": system.method,
                    "style": system.style,
                    "quantization": system.quantization,
                    "seed": system.seed,
                    "trainable_parameters": 35_136 if system.method == "layernorm" else 1_105_920,
                    "total_parameters": 134_515_008,
                    "wall_time_s": 300.0,
                    "peak_memory_mb": 2000.0,
                    # A study that went on on another machine for its last seed.
                    "provenance": {"machine": MACHINES[system.seed == SEEDS[-1]]},
                    # One run that training.max_time stopped early.
                    "stopped_by_time_limit": system.method == "layernorm"
                    and system.seed == SEEDS[0],
                },
            )
            curves_frame(ACCURACY[system.method]).to_csv(directory / "curves.csv", index=False)
    splits = []
    for split, size in (("train", 30), ("val", 30), ("test", 3 * N_PER_CLASS)):
        path = root / "results/splits" / f"{split}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(
            {"id": range(size), "text": "t", "label": [LABELS[i % 3] for i in range(size)]}
        ).to_csv(path, index=False)
        splits.append(path)
    return systems + NOT_RUN


def run_report(
    root: Path, systems, splits=("test", "val"), reference_split=False
) -> dict[str, Path]:
    outputs = output_paths(root / "results/report")
    build_report(
        systems,
        outputs,
        LABELS,
        splits,
        sorted((root / "results/splits").glob("*.csv")),
        plan=AnalysisPlan(bootstrap_samples=1000),
        seed=3,
        root=root,
        model={"source": "pypi_wheel", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"},
        reference_split=reference_split,
    )
    return outputs


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    systems = make_study(root)
    return root, run_report(root, systems)


def test_every_run_has_its_own_row_with_the_numbers_of_its_metrics(built):
    root, out = built
    table = pd.read_csv(out["summary_csv"])
    ran = table[table["status"] == "ran"]
    assert len(ran) == 9 + 3 and len(table) == 14
    for _, row in ran.iterrows():
        metrics = json.loads(Path(row["metrics_file"]).read_text())
        assert row["accuracy"] == pytest.approx(metrics["accuracy"])
        assert row["macro_f1"] == pytest.approx(metrics["macro_f1"])
    zero_shot = ran[ran["name"] == f"{MODEL}/fewshot-k0"].iloc[0]
    assert (zero_shot["share_neutral"], zero_shot["share_hate"]) == (1.0, 0.0)


def test_fine_tuned_rows_name_their_adapter_for_predict(built):
    root, out = built
    table = pd.read_csv(out["summary_csv"])
    tuned = table[table["approach"] == "fine-tuning"]
    assert len(tuned) >= 9
    for _, row in tuned.iterrows():
        assert row["adapter"] == f"results/train/{row['name']}/adapter"
        assert (root / row["adapter"]).parent.joinpath("summary.json").is_file()
    assert table.loc[table["name"] == f"{MODEL}/fewshot-k0", "adapter"].isna().all()


def test_groups_give_mean_and_sd_over_seeds(built):
    root, out = built
    runs = pd.read_csv(out["summary_csv"])
    groups = pd.read_csv(out["groups_csv"])
    for approach in ACCURACY:
        group = f"{MODEL}/{approach}/instruction/8bit"
        accuracies = runs.loc[runs["group"] == group, "accuracy"].to_numpy()
        row = groups[groups["group"] == group].iloc[0]
        assert row["seeds"] == 3
        assert row["accuracy_mean"] == pytest.approx(accuracies.mean())
        assert row["accuracy_sd"] == pytest.approx(accuracies.std(ddof=1))
        assert row["accuracy_ci_low"] < row["accuracy_mean"] < row["accuracy_ci_high"]
    assert groups.iloc[0]["group"] == f"{MODEL}/lora_all/instruction/8bit"  # best macro-F1 first


def test_runs_stopped_by_their_time_limit_are_marked(built):
    root, out = built
    runs = pd.read_csv(out["summary_csv"])
    stopped = runs[runs["stopped_by_time_limit"].fillna(False).astype(bool)]
    assert stopped["group"].tolist() == [f"{MODEL}/layernorm/instruction/8bit"]
    assert stopped["seed"].tolist() == [SEEDS[0]]
    lines = out["summary_md"].read_text().splitlines()
    marked = [line for line in lines if "stopped by max_time" in line]
    assert len(marked) == 1 and "stopped by max_time: 33% of runs" in marked[0], marked
    assert "Normalization layers only" in marked[0]


def test_paired_tests_resolve_only_real_differences_and_the_answer_says_so(built):
    root, out = built
    paired = pd.read_csv(out["paired_csv"])
    assert set(paired["metric"]) == {
        "macro_f1"
    }  # the plan's metric only: the family is what is tested
    f1 = paired.set_index(["a_group", "b_group"])
    approach = lambda a: f"{MODEL}/{a}/instruction/8bit"  # noqa: E731
    far = f1.loc[(approach("lora_attention"), approach("layernorm"))]
    assert far["resolved"] and far["ci_low"] > 0.2 and far["verdict"] == "A beats B"
    assert set(paired["comparison"]) == {
        "approach",
        "best fine-tuning vs TF-IDF",
        "best fine-tuning vs few-shot",
    }
    best = paired.loc[paired["comparison"] == "best fine-tuning vs TF-IDF"].iloc[0]
    assert best["b_group"] == "baseline/tfidf" and best["resolved"] and best["difference"] > 0.1
    first_lines = out["summary_md"].read_text().split("##")[0]
    close = f1.loc[(approach("lora_all"), approach("lora_attention"))]  # 0.01 apart on 300 tweets
    assert not close["resolved"] and close["verdict"] == "undecided" and not close["equivalent"]
    assert "undecided between LoRA, all linear layers and LoRA, attention layers" in first_lines
    assert "Smallest difference each family would find" in first_lines
    # Approaches trained on the same seeds are compared seed by seed; the baselines are not.
    assert paired.loc[paired["comparison"] == "approach", "seed_paired"].all()
    assert not paired.loc[paired["comparison"].str.startswith("best"), "seed_paired"].any()
    # The report opens with the comparisons' forest plot, above the answer's list.
    assert first_lines.index("figures/comparisons.png") < first_lines.index("- ")
    assert (out["forest"]).stat().st_size > 10_000
    assert "LoRA, attention layers beats Normalization layers only" in first_lines
    assert "Holm" in first_lines and "5 planned comparisons" in first_lines
    assert "t-based term for the training seeds (up to 3)" in first_lines
    # The Holm-adjusted p-values are those of the family's raw p-values, and only they decide.
    from adaptune.report.statistics import holm

    assert paired["p_holm"].to_numpy() == pytest.approx(holm(paired["p_value"].to_numpy()))
    assert (paired["resolved"] == (paired["p_holm"] < 0.05)).all()
    assert "How these were made" in out["summary_md"].read_text()


def test_the_best_systems_are_chosen_on_val_and_test_predictions_cannot_change_them(tmp_path):
    """The val split alone chooses the best fine-tuned system and the best few-shot prompting:
    making the chosen one's test predictions all wrong, and a rival's all right, changes the test
    numbers but not the choice, nor the comparisons it enters. (The report's own steps on the
    study's real files, figures left out; build_report runs the same steps.)"""
    from adaptune.report.inputs import load_runs
    from adaptune.report.tables import (
        GroupScores,
        choose_on_val,
        comparisons,
        groups_table,
        val_means,
    )
    from adaptune.core.systems import labels as system_labels

    systems = [s for s in make_study(tmp_path) if s.ran]
    shown = system_labels(systems, with_seed=False)

    def report():
        runs = load_runs(systems, "test", LABELS, tmp_path, with_training=False)
        on_val = val_means(load_runs(systems, "val", LABELS, tmp_path, with_training=False))
        scores = GroupScores(runs, LABELS, 500, 3)
        chosen = choose_on_val(scores.systems, on_val)
        groups = groups_table(runs, LABELS, shown, scores, on_val, chosen).set_index("group")
        return (
            chosen,
            groups,
            comparisons(scores, shown, AnalysisPlan(bootstrap_samples=500), chosen),
            on_val,
        )

    chosen, groups, paired, on_val = report()
    best, best_fewshot = chosen["finetuned"], chosen["fewshot"]
    finetuned_groups = {s.group for s in systems if s.finetuned}
    assert on_val[best] == max(on_val[g] for g in finetuned_groups)
    assert best_fewshot == f"{MODEL}/fewshot-k3"  # the k=0 one answers "neutral" always
    assert groups.loc[best, "chosen"] == "best fine-tuned, chosen on val"
    rival = next(g for g in sorted(finetuned_groups) if g != best)
    for system in systems:
        if system.group in (best, rival):
            path = tmp_path / system.eval_dir / "predictions.csv"
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            frame["predicted"] = (
                frame["gold"]
                if system.group == rival
                else [LABELS[(LABELS.index(g) + 1) % 3] for g in frame["gold"]]
            )
            frame.to_csv(path, index=False)
    again, groups_again, paired_again, _ = report()
    assert (
        groups_again.loc[best, "macro_f1_mean"]
        < 0.1
        < 0.99
        < groups_again.loc[rival, "macro_f1_mean"]
    )
    assert again == chosen and groups_again.loc[rival, "chosen"] == ""
    best_rows = lambda p: p.loc[p["comparison"].str.startswith("best"), ["a_group", "b_group"]]  # noqa: E731
    assert best_rows(paired_again).equals(best_rows(paired)) and set(
        best_rows(paired)["a_group"]
    ) == {best}
    assert (
        paired_again.loc[paired_again["comparison"].str.startswith("best"), "difference"] < 0
    ).all()


def test_systems_not_run_are_listed_with_their_reason(built, tmp_path):
    root, out = built
    table = pd.read_csv(out["summary_csv"])
    assert (table.loc[table["method"] == "openai_chat", "status"] == f"not run: {OFF}").all()
    assert f"not run: {OFF}" in out["summary_md"].read_text()
    # A system that was configured but could not run writes a not_run metrics.json itself.
    refused = System("openai_chat", "openai", "instruction", openai_model="gpt-x", k=3)
    systems = make_study(tmp_path, [refused])
    for split in ("test", "val"):
        directory = tmp_path / refused.eval_dir / ("" if split == "test" else split)
        write_json(
            directory / "metrics.json",
            {
                "system": refused.block(),
                "split": split,
                "status": "not_run",
                "reason": "model refused",
                "labels": LABELS,
                "provenance": {},
            },
        )
        (directory / "predictions.csv").write_text("id,text,gold,predicted\n")
    out = run_report(tmp_path, systems)
    table = pd.read_csv(out["summary_csv"])
    assert table.loc[table["name"] == refused.name, "status"].item() == "not run: model refused"


def test_model_reference_and_val_are_described_honestly(built):
    root, out = built
    summary = out["summary_md"].read_text()
    assert "Q4_1" in summary and "dequantized" in summary
    reference = summary.split("## Reference study")[1]
    for entry in REFERENCE_RESULTS:
        assert entry["accuracy"] in reference
    assert "not held-out results" in out["val_md"].read_text()


def test_on_the_reference_split_our_numbers_stand_beside_the_published_ones(tmp_path):
    """A reference-protocol run: the report's reference block and reference_split.csv hold our
    numbers on that val split and its majority-class floor counted from the gold labels; the
    publication carries the CSV and the README's reference section is generated from it."""
    from sklearn.metrics import f1_score

    from adaptune.report.publish import current_section, publish, reference_section, write_readme

    systems = make_study(tmp_path, finetuned()[:1] + OTHERS[:1])
    val_metrics = tmp_path / systems[0].eval_dir / "val" / "metrics.json"
    record = json.loads(val_metrics.read_text())
    write_json(val_metrics, {**record, "vocab_argmax_accuracy": 0.4567})
    out = run_report(tmp_path, systems, reference_split=True)
    block = out["summary_md"].read_text().split("## Reference study")[1]
    assert "same 200 validation tweets" in block and "0.457" in block
    assert f"{record['accuracy']:.3f}" in block

    table = pd.read_csv(out["reference_csv"])
    gold = pd.read_csv(tmp_path / systems[0].eval_dir / "val" / "predictions.csv")["gold"]
    counts = gold.value_counts()
    majority = table.iloc[-1]
    assert majority["system"].startswith(f'always "{counts.idxmax()}"')
    assert majority["accuracy"] == pytest.approx(counts.max() / len(gold))
    assert majority["macro_f1"] == pytest.approx(
        f1_score(
            gold, [counts.idxmax()] * len(gold), labels=LABELS, average="macro", zero_division=0
        )
    )
    assert table.iloc[0]["vocab_argmax_accuracy"] == pytest.approx(0.4567)
    assert f"{majority['accuracy']:.3f}" in block

    folder = publish(out["summary_csv"].parent, tmp_path / "docs/results/reference", tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(
        "<!-- results:begin -->\n<!-- results:end -->\n"
        "<!-- reference:begin -->\nby hand\n<!-- reference:end -->\n"
    )
    assert write_readme(readme, "docs/results/reference", tmp_path) == "reference"
    current, source = current_section(readme, "reference")
    assert source == "docs/results/reference" and current == reference_section(source, tmp_path)
    assert "0.457" in current and f"{majority['accuracy']:.3f}" in current and "0.84" in current
    assert (folder / "reference_split.csv").read_bytes() == out["reference_csv"].read_bytes()


def test_a_run_off_the_reference_split_has_no_reference_rows(built):
    _, out = built
    table = pd.read_csv(out["reference_csv"])
    assert table.empty and "accuracy" in table.columns


def test_every_output_is_written_and_figures_are_real_images(built):
    root, out = built
    assert set(out) == set(OUTPUTS)
    for name, path in out.items():
        assert path.is_file() and path.stat().st_size > 0, name
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert path.stat().st_size > 10_000, f"{name} looks empty"
        if path.suffix == ".svg":
            assert "<svg" in path.read_text()[:500]


def test_the_run_names_every_machine_its_cells_trained_on(built):
    root, out = built
    cells = len(finetuned())
    assert json.loads(out["run_json"].read_text())["machine"] == (
        f"{MACHINES[0]} ({cells - cells // 3} runs); {MACHINES[1]} ({cells // 3} runs)"
    )


def test_each_confusion_panel_writes_the_share_of_its_true_class_in_every_cell():
    from adaptune.report.figures import confusion_figure

    labels = ["hate", "offensive", "neither"]
    counts = [[3, 1, 0], [0, 2, 2], [1, 0, 3]]  # the second row misses a tweet: no label
    metrics = {
        "system": {"name": "a"},
        "macro_f1": 0.6,
        "invalid": 1,
        "confusion_matrix": counts,
        "per_class": {label: {"support": 4 if label != "offensive" else 5} for label in labels},
    }
    other = {**metrics, "system": {"name": "b"}, "macro_f1": 0.7, "invalid": 0}
    figure = confusion_figure([metrics, other], {"a": "System A", "b": "System B"}, labels)
    panels = [ax for ax in figure.axes if ax.get_title()]
    # The better system first; each title gives its macro-F1 and the answers naming no class.
    assert [ax.get_title().splitlines()[0] for ax in panels] == ["System B", "System A"]
    assert panels[1].get_title().endswith("macro-F1 0.600, 1 naming no class")
    shares = np.array(counts) / np.array([4, 5, 4])[:, None]
    for ax in panels:
        written = sorted(float(t.get_text()) for t in ax.texts)
        assert written == sorted(round(v, 2) for v in shares.ravel())
        assert [t.get_text() for t in ax.get_xticklabels()] == labels


def test_a_system_trained_on_several_seeds_has_one_legend_entry_and_a_line_per_seed():
    """Training curves and calibration draw every seed's run in its system's colour, and name
    each system once in the legend (a decisive study has 47 runs in 11 systems); calibration's
    entry gives its runs' mean ECE and Brier score, as the report's table does."""
    from adaptune.report.figures import calibration_figure, training_figure

    seeds = {"A": [42, 43, 44], "B": [42]}
    runs = {f"{system} (seed {seed})": system for system, ss in seeds.items() for seed in ss}
    palette = dict(zip(seeds, ["#111", "#999"]))
    palette.update({run: palette[system] for run, system in runs.items()})
    steps = np.arange(0, 30, 5)
    curves = {
        run: pd.DataFrame({"step": steps, "val_loss": 1.0 / (1 + steps + i)})
        for i, run in enumerate(runs)
    }
    figure = training_figure(curves, palette, runs)
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == ["A", "B"]
    assert legend.get_title().get_text() == "System (a line per training seed)"
    assert len(figure.axes[0].lines) == 4

    reliability = {
        run: {"points": [{"confidence": 0.5, "accuracy": 0.4}], "ece": ece, "brier": 0.3}
        for run, ece in zip(runs, [0.01, 0.02, 0.06, 0.05])
    }
    figure = calibration_figure(reliability, palette, runs)
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "perfect calibration",
        "A: ECE 0.030, Brier 0.300, mean of 3 seeds",
        "B: ECE 0.050, Brier 0.300",
    ]
    drawn = [line for line in figure.axes[0].lines if len(line.get_xdata())]
    assert len(drawn) == 1 + 4  # the diagonal and a line per run


def test_outputs_are_exchanged_by_name(tmp_path):
    systems = make_study(tmp_path)
    outputs = output_paths(tmp_path / "out")
    del outputs["seeds"]
    with pytest.raises(ValueError, match="seeds"):
        build_report(systems, outputs, LABELS, root=tmp_path)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_text("{not json"), "not valid JSON"),
        (
            lambda p: p.write_text(
                json.dumps({k: v for k, v in json.loads(p.read_text()).items() if k != "macro_f1"})
            ),
            "'macro_f1'",
        ),
        (
            lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "accuracy": "high"})),
            "'accuracy'",
        ),
        (
            lambda p: p.write_text(
                json.dumps({**json.loads(p.read_text()), "system": {"name": "other"}})
            ),
            "expected",
        ),
        (lambda p: p.unlink(), "file not found"),
        (lambda p: p.with_name("predictions.csv").write_text("id,gold\n1,hate\n"), "predicted"),
    ],
)
def test_bad_inputs_are_clear_errors_naming_the_file_and_nothing_is_written(
    tmp_path, damage, message
):
    systems = make_study(tmp_path, finetuned()[:2] + OTHERS)
    broken = tmp_path / systems[0].eval_dir / "metrics.json"
    damage(broken)
    with pytest.raises(ReportInputError) as error:
        run_report(tmp_path, systems)
    assert str(broken.parent) in str(error.value) and message in str(error.value)
    assert not (tmp_path / "results/report").exists()


def test_report_without_fine_tuning_or_val(tmp_path):
    systems = make_study(tmp_path, list(OTHERS))
    out = run_report(tmp_path, systems, splits=("test",))
    for path in out.values():
        assert path.is_file()
    assert len(pd.read_csv(out["groups_csv"])) == 3 + 2
    assert "No system was evaluated on the validation split" in out["val_md"].read_text()


def test_the_answer_names_the_better_system_first_with_a_positive_difference():
    from adaptune.report.tables import answer

    groups = pd.DataFrame([{"status": "ran", "n": 600, "seeds": 1}])
    paired = pd.DataFrame(
        [
            {
                "comparison": "approach",
                "a": "LoRA, attention layers",
                "b": "Normalization layers only",
                "metric": "macro_f1",
                "difference": -0.069,
                "ci_low": -0.105,
                "ci_high": -0.034,
                "p_value": 0.0002,
                "p_holm": 0.0022,
                "resolved": True,
            }
        ]
    )
    line = answer(groups, paired)[0]
    assert line == (
        "Approach: Normalization layers only beats LoRA, attention layers "
        "(+0.069 macro-F1, 95% interval [+0.034, +0.105]; Holm-adjusted p 0.0022)."
    )


def test_an_interval_that_excludes_zero_is_no_beat_unless_it_survives_the_correction():
    from adaptune.report.tables import answer

    groups = pd.DataFrame([{"status": "ran", "n": 600, "seeds": 5}])
    paired = pd.DataFrame(
        [
            {
                "comparison": "prompt style",
                "a": "LoRA (raw)",
                "b": "LoRA (instruction)",
                "metric": "macro_f1",
                "difference": 0.024,
                "ci_low": 0.005,
                "ci_high": 0.044,
                "p_value": 0.012,
                "p_holm": 0.13,
                "resolved": False,
            }
        ]
    )
    lines = answer(groups, paired)
    assert lines[0] == (
        "Prompt style: undecided between LoRA (raw) and LoRA (instruction) "
        "(+0.024 macro-F1, 95% interval [+0.005, +0.044]: differences up to 0.044 not excluded)."
    )
    assert not any("beats" in line for line in lines)


def test_each_planned_comparison_ends_in_one_of_three_verdicts():
    """Holm-resolved: beats; else Holm-corrected TOST inside the margin: equivalent; else
    undecided. Equivalence is judged on the same replicates as the difference."""
    from adaptune.report.statistics import equivalence_p
    from adaptune.report.tables import answer, verdict

    rng = np.random.default_rng(0)
    narrow, wide = rng.normal(0.004, 0.008, 10_000), rng.normal(0.01, 0.03, 10_000)
    assert equivalence_p(narrow, 0.03) < 0.01 < 0.2 < equivalence_p(wide, 0.03)
    rows = [
        {"difference": 0.08, "resolved": True, "equivalent": False},
        {"difference": -0.08, "resolved": True, "equivalent": False},
        {"difference": 0.004, "resolved": False, "equivalent": True},
        {"difference": 0.01, "resolved": False, "equivalent": False},
    ]
    assert [verdict(r) for r in rows] == ["A beats B", "B beats A", "equivalent", "undecided"]

    groups = pd.DataFrame([{"status": "ran", "n": 600, "seeds": 5}])
    paired = pd.DataFrame(
        [
            {
                "comparison": "approach",
                "a": "LoRA, all linear layers",
                "b": "LoRA, attention layers",
                "metric": "macro_f1",
                "difference": 0.004,
                "ci_low": -0.012,
                "ci_high": 0.020,
                "p_value": 0.6,
                "p_holm": 1.0,
                "resolved": False,
                "equivalent": True,
                "p_equivalence_holm": 0.003,
                "margin": 0.03,
                "detectable": 0.031,
            }
        ]
    )
    lines = answer(groups, paired)
    assert lines[0] == (
        "Approach: LoRA, all linear layers and LoRA, attention layers are equivalent within "
        "±0.03 (+0.004 macro-F1, 95% interval [-0.012, +0.020]; Holm-adjusted TOST p 0.003)."
    )
    assert lines[1].endswith("approach 0.031.")


def test_systems_that_agree_on_every_tweet_are_said_to_agree_not_given_a_zero_reach():
    """An undecided comparison whose replicates are all zero (the two agree on every tweet) says
    so and names the margin, rather than 'differences up to 0.000 not excluded'."""
    from adaptune.report.tables import answer

    groups = pd.DataFrame([{"status": "ran", "n": 12, "seeds": 1}])
    row = {
        "comparison": "approach",
        "a": "LoRA, all linear layers",
        "b": "LoRA, attention layers",
        "metric": "macro_f1",
        "difference": 0.0,
        "ci_low": 0.0,
        "ci_high": 0.0,
        "p_value": 1.0,
        "p_holm": 1.0,
        "resolved": False,
        "equivalent": False,
        "p_equivalence_holm": 1.0,
        "margin": 0.03,
        "standard_error": 0.0,
        "detectable": 0.0,
    }
    lines = answer(groups, pd.DataFrame([row]))
    assert lines[0] == (
        "Approach: undecided between LoRA, all linear layers and LoRA, attention layers (they "
        "agree on every one of the 12 test tweets, too few to exclude a difference of ±0.03)."
    )


def test_reference_block_labels_each_scoring_rule_and_gives_the_majority_baseline(built):
    root, out = built
    block = out["summary_md"].read_text().split("## Reference study")[1]
    header = next(line for line in block.splitlines() if line.startswith("| System"))
    assert "| Accuracy |" not in header
    assert (
        "argmax over the whole vocabulary" in header and "argmax over the 3 label tokens" in header
    )
    rows = {
        line.split("|")[1].strip(): line for line in block.splitlines() if line.startswith("| ")
    }
    cells = [c.strip() for c in rows["3-shot prompting"].split("|")[1:-1]]
    assert (
        cells[header.split("|")[1:-1].index(" Accuracy: argmax over the 3 label tokens ")]
        == "0.415"
    )
    assert "78 hate, 56 offensive, 66 neutral" in block and "scores 0.39" in block


@pytest.mark.parametrize("quantizations, family", [(("8bit",), 11), (("none", "8bit", "4bit"), 47)])
def test_the_config_declares_the_family_the_report_tests(tmp_path, quantizations, family):
    """The analysis plan of config.yaml on the default grid (three approaches x two prompt styles)
    is 11 comparisons; with three quantizations, 47. A plan without the style kind drops those."""
    import yaml

    from adaptune.report.inputs import load_runs
    from adaptune.report.tables import GroupScores, choose_on_val, planned_pairs, val_means

    from adaptune.core.config import with_defaults

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
    block = with_defaults(config)["evaluation"]["analysis"]
    plan = AnalysisPlan.from_config(block)
    assert plan.bootstrap_samples >= 10_000 and plan.alpha == 0.05 and plan.metric == "macro_f1"
    grid = [
        System(a, MODEL, style, q, 42)
        for a in ACCURACY
        for style in ("instruction", "raw")
        for q in quantizations
    ]
    systems = make_study(tmp_path, grid + OTHERS)
    ran = [s for s in systems if s.ran]
    scores = GroupScores(
        load_runs(ran, "test", LABELS, tmp_path, with_training=False), LABELS, 10, 0
    )
    chosen = choose_on_val(
        scores.systems, val_means(load_runs(ran, "val", LABELS, tmp_path, with_training=False))
    )
    pairs = planned_pairs(scores, plan, chosen)
    assert len(pairs) == family
    no_style = AnalysisPlan.from_config(
        {**block, "comparisons": ["approach", "quantization", "best_vs_tfidf"]}
    )
    assert len(planned_pairs(scores, no_style, chosen)) == family - 3 * len(quantizations) - 1
    with pytest.raises(ValueError, match="evaluation.analysis"):
        AnalysisPlan.from_config({**block, "comparisons": ["every pair"]})


def test_groups_on_different_seed_sets_are_paired_on_the_seeds_they_share():
    """A cut study's 8-bit cells (3 seeds) against the unquantized ones (5): paired on 3."""
    from types import SimpleNamespace

    from adaptune.report.tables import seed_orders

    def group(quantization, seeds):
        runs = [
            SimpleNamespace(system=System("lora_all", MODEL, "instruction", quantization, s))
            for s in seeds
        ]
        return (runs,), runs[0].system

    a, b, c = (
        group("none", [46, 42, 45, 43, 44]),
        group("8bit", [44, 43, 42]),
        group("4bit", [42, 47]),
    )
    scores = SimpleNamespace(
        coded={"a": a[0], "b": b[0], "c": c[0]}, systems={"a": a[1], "b": b[1], "c": c[1]}
    )
    assert seed_orders(scores, "a", "b") == ([1, 3, 4], [2, 1, 0])  # seeds 42, 43, 44 on each side
    assert seed_orders(scores, "a", "c") is None  # one shared seed: nothing to pair on
