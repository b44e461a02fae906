"""The sweep that tunes the study: val macro-F1 read at every epoch's end of one run, the choice
by the mean over seeds, chosen.yaml, and a real tiny Snakemake run in which chosen.yaml sets the
study cell's learning rate and epochs."""

import json

import pandas as pd
import pytest
import yaml

from adaptune.report.inputs import ReportInputError
from adaptune.report.sweep import write_sweep
from adaptune.sweep.scores import SweepInputError, epoch_scores
from adaptune.sweep.choice import ChosenSettingsError, grid_edges, read_chosen

from conftest import REPO, deep_update, job_stats, jobs_per_approach, tiny_pipeline_config


def write_curves(path, f1_by_epoch, steps_per_epoch=5):
    """A run's curves.csv as training writes it: train-loss rows, a step-0 val row, and one val
    row at each epoch's end (Lightning's epochs count from 0)."""
    rows = [
        {
            "step": 0,
            "epoch": 0,
            "train_loss": None,
            "val_loss": 1.0,
            "val_accuracy": 0.3,
            "val_macro_f1": 0.2,
        }
    ]
    for epoch, f1 in enumerate(f1_by_epoch):
        end = (epoch + 1) * steps_per_epoch
        rows.append(
            {
                "step": end - 1,
                "epoch": epoch,
                "train_loss": 0.9,
                "val_loss": None,
                "val_accuracy": None,
                "val_macro_f1": None,
            }
        )
        rows.append(
            {
                "step": end,
                "epoch": epoch,
                "train_loss": None,
                "val_loss": 0.8,
                "val_accuracy": f1 + 0.05,
                "val_macro_f1": f1,
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def runs(tmp_path, table):
    """table: {(approach, rate, seed): [f1 after epoch 1, 2, ...]}"""
    return [
        {
            "approach": a,
            "learning_rate": rate,
            "seed": seed,
            "curves": str(
                write_curves(tmp_path / a / f"lr{rate:g}" / f"seed{seed}" / "curves.csv", f1s)
            ),
        }
        for (a, rate, seed), f1s in table.items()
    ]


def test_epoch_scores_are_each_epochs_last_val_row_not_the_untrained_one(tmp_path):
    path = write_curves(tmp_path / "curves.csv", [0.5, 0.6, 0.55])
    scores = epoch_scores(path, [1, 3])
    assert scores == {
        1: {"val_macro_f1": 0.5, "val_accuracy": 0.55},
        3: {"val_macro_f1": 0.55, "val_accuracy": pytest.approx(0.6)},
    }
    with pytest.raises(SweepInputError, match="no val score at the end of epoch 4"):
        epoch_scores(path, [4])


def test_a_pass_after_the_last_epoch_ends_it_and_a_run_cut_short_ends_no_later_epoch(tmp_path):
    """A run resumed from its final checkpoint validates after `fit`, which Lightning logs under
    the epoch after the last (as a finished sweep run of the decisive study did); a run that
    stopped after its first epoch has no later end, whatever epoch its last row claims."""
    header = "step,epoch,train_loss,val_loss,val_accuracy,val_macro_f1\n"
    resumed = tmp_path / "resumed.csv"
    resumed.write_text(
        header + "4,0,1.0,,,\n9,0,0.9,,,\n9,0,,0.5,0.6,0.55\n14,1,0.8,,,\n19,2,,0.4,0.7,0.65\n"
    )
    assert epoch_scores(resumed, [1, 2])[2] == {"val_macro_f1": 0.65, "val_accuracy": 0.7}
    cut_short = tmp_path / "cut_short.csv"
    cut_short.write_text(header + "4,0,1.0,,,\n9,0,0.9,,,\n9,0,,0.5,0.6,0.55\n10,2,,0.5,0.6,0.55\n")
    with pytest.raises(SweepInputError, match="no val score at the end of epoch 2"):
        epoch_scores(cut_short, [1, 2])


def test_choice_is_the_best_mean_macro_f1_over_seeds_per_approach(tmp_path):
    # layernorm: lr 1e-3 wins on one seed, but 3e-3 wins on the mean; its epoch 2 beats epoch 1.
    # lora_all: a tie between epochs 1 and 2 goes to 1 epoch.
    table = {
        ("layernorm", 1e-3, 1): [0.50, 0.80],
        ("layernorm", 1e-3, 2): [0.50, 0.40],
        ("layernorm", 3e-3, 1): [0.55, 0.70],
        ("layernorm", 3e-3, 2): [0.55, 0.66],
        ("lora_all", 1e-3, 1): [0.70, 0.70],
        ("lora_all", 1e-3, 2): [0.60, 0.60],
        ("lora_all", 3e-3, 1): [0.40, 0.50],
        ("lora_all", 3e-3, 2): [0.40, 0.50],
    }
    out = tmp_path / "out"
    means = write_sweep(
        runs(tmp_path, table), [1, 2], out / "summary.csv", out / "summary.md", out / "chosen.yaml"
    )
    chosen = yaml.safe_load((out / "chosen.yaml").read_text())
    assert {a: (c["learning_rate"], c["epochs"]) for a, c in chosen.items()} == {
        "layernorm": (3e-3, 2),
        "lora_all": (1e-3, 1),
    }
    assert (
        chosen["layernorm"]["val_macro_f1"] == pytest.approx(0.68)
        and chosen["layernorm"]["seeds"] == 2
    )
    assert read_chosen(out / "chosen.yaml", "lora_all") == {"learning_rate": 1e-3, "epochs": 1}
    assert means["chosen"].sum() == 2
    points = pd.read_csv(out / "summary.csv")
    assert len(points) == 16 and set(points["seed"]) == {1, 2}
    md = (out / "summary.md").read_text()
    assert "macro-F1" in md and "not held-out results" in md and "epoch 2" in md
    # Both choices lie on an edge of a 2 x 2 grid, and the summary says which.
    assert grid_edges(points) == {
        "layernorm": ["the highest learning rate", "the most epochs"],
        "lora_all": ["the lowest learning rate"],
    }
    assert (
        "On an edge of the swept grid: layernorm at the highest learning rate and the most epochs; "
        "lora_all at the lowest learning rate."
    ) in md


def test_a_choice_inside_the_grid_is_on_no_edge(tmp_path):
    table = {
        ("layernorm", rate, 1): f1s
        for rate, f1s in (
            (1e-3, [0.5, 0.6, 0.55]),
            (3e-3, [0.6, 0.7, 0.65]),
            (1e-2, [0.4, 0.5, 0.45]),
        )
    }
    out = tmp_path / "out"
    write_sweep(runs(tmp_path, table), [1, 2, 3], out / "summary.csv", out / "summary.md")
    assert grid_edges(pd.read_csv(out / "summary.csv")) == {"layernorm": []}
    assert "edge" not in (out / "summary.md").read_text()


def test_choices_on_the_same_edge_are_said_once():
    from adaptune.sweep.choice import edge_note

    same = {"layernorm": ["the lowest learning rate"], "lora_all": ["the lowest learning rate"]}
    assert edge_note(same).startswith(
        "On an edge of the swept grid: every approach's choice lies at the lowest learning rate."
    )
    assert edge_note({"layernorm": [], "lora_all": []}) == ""


def test_accuracy_cannot_change_the_choice(tmp_path):
    """Judged on macro-F1: a run with better accuracy but worse macro-F1 is not chosen."""
    table = {("layernorm", 1e-3, 1): [0.6], ("layernorm", 3e-3, 1): [0.5]}
    made = runs(tmp_path, table)
    frame = pd.read_csv(made[1]["curves"])
    frame.loc[frame["val_accuracy"].notna(), "val_accuracy"] = 0.99
    frame.to_csv(made[1]["curves"], index=False)
    out = tmp_path / "out"
    write_sweep(made, [1], out / "s.csv", out / "s.md", out / "chosen.yaml")
    assert read_chosen(out / "chosen.yaml", "layernorm")["learning_rate"] == 1e-3


def test_read_chosen_names_the_file_and_the_missing_approach(tmp_path):
    path = tmp_path / "chosen.yaml"
    path.write_text("layernorm: {learning_rate: 0.001, epochs: 1}\n")
    with pytest.raises(
        ChosenSettingsError, match=r"chosen.yaml: no learning_rate and epochs for 'lora_all'"
    ):
        read_chosen(path, "lora_all")
    with pytest.raises(ChosenSettingsError, match="not a readable"):
        read_chosen(tmp_path / "absent.yaml", "layernorm")


def test_tuning_needs_a_schedule_whose_shorter_runs_the_sweep_can_score():
    """Checked in process as the Snakefile checks a config (conftest.refusal); the Snakemake
    run that shows this wiring is test_workflow's test_bad_config_stops_snakemake_before_any_job."""
    from conftest import refusal

    base = deep_update(
        tiny_pipeline_config(REPO / "no-model"), {"sweep": {"enabled": True, "tune_study": True}}
    )
    assert "training.lr_schedule is 'linear'; expected wsd or constant" in refusal(base)
    warm = deep_update(base, {"training": {"lr_schedule": "constant"}})
    assert "warmup_ratio is 0.1; expected 0 under a constant rate" in refusal(warm)
    # Under wsd the warm-up is a fraction of one epoch: allowed; the seeds must differ.
    wsd = deep_update(
        base,
        {"training": {"lr_schedule": "wsd", "seeds": [42, 43]}, "sweep": {"seeds": [43, 1001]}},
    )
    assert (
        "sweep.seeds or confirm_seeds and training.seeds share [43]; expected disjoint seeds"
        in refusal(wsd)
    )
    assert refusal(deep_update(wsd, {"sweep": {"seeds": [1001, 1002]}})) == ""


def test_the_decisive_study_is_accepted_and_trains_8bit_at_one_style():
    import yaml

    from adaptune.core.systems import finetuned_systems
    from conftest import refusal

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config = deep_update(config, yaml.safe_load((REPO / "configs/decisive.yaml").read_text()))
    assert refusal(config) == ""
    cells = [s for s in finetuned_systems(config) if s.reason is None]
    assert {(s.quantization, s.style) for s in cells} == {
        ("none", "instruction"),
        ("none", "raw"),
        ("8bit", "instruction"),
    }
    # Cut to its budget: 8-bit at 3 seeds, the head at the instruction prompt only.
    assert len(cells) == 4 * 5 + 3 * 5 + 4 * 3
    assert {s.seed for s in cells if s.quantization == "8bit"} == {42, 43, 44}
    assert {s.style for s in cells if s.method == "head"} == {"instruction"}
    assert config["sweep"]["seeds"] == [1001] and config["sweep"]["confirm_seeds"] == [1002]
    # One precision wherever its sittings run, not each machine's `auto` choice.
    assert config["training"]["precision"] == "32-true"
    bad = deep_update(config, {"training": {"quantization_styles": {"8bit": ["shouty"]}}})
    assert (
        "training.quantization_styles.8bit: style(s) ['shouty'] are not in training.styles"
        in refusal(bad)
    )


def tuned_by_a_sweep(rates: dict[str, list[float]], **sweep) -> dict:
    """Config overrides of a study tuned by a one-seed sweep of `rates` per approach (epochs 1
    and 2 from one run at a constant rate); the approaches without rates are off."""
    return {
        "sweep": {
            "enabled": True,
            "tune_study": True,
            "quantization": "8bit",
            "seeds": [1],
            "epochs": [1, 2],
            "learning_rates": rates,
            **sweep,
        },
        "training": {
            "lr_schedule": "constant",
            "val_checks_per_epoch": 1,
            "approaches": {
                approach: {"warmup_ratio": 0.0} if approach in rates else {"enabled": False}
                for approach in ("layernorm", "lora_attention", "lora_all")
            },
        },
    }


@pytest.mark.slow
def test_the_sweeps_choice_sets_the_study_cells_learning_rate_and_epochs(
    pipeline, prepared_tiny_gptj
):
    """One Snakemake run: the sweep (one approach, two learning rates, one seed, epochs 1 and 2
    from one run), its extension past the edge its choice lies on (one step here, decided inside
    the sweep_extend job), the approach's choice and the sweep's summary, then the study cell
    trained at the chosen setting."""
    configured = pipeline.config["training"]["approaches"]["layernorm"]["learning_rate"]
    rates = [configured * 4, configured * 10]
    config = tuned_by_a_sweep({"layernorm": rates}, extend_steps=1)
    cell = "results/train/tiny-gptj/layernorm/instruction/8bit/seed42/summary.json"
    pipeline.place_resources(prepared_tiny_gptj)
    # One thread per job, so that the two sweep runs overlap (their time is mostly start-up).
    pipeline.run(cell, "results/sweep/chosen.yaml", "--set-threads", "sweep=1", config=config)
    chosen = yaml.safe_load(pipeline.path("results/sweep/chosen.yaml").read_text())["layernorm"]
    # The cell read its approach's own choice: the same as the sweep's chosen.yaml says.
    approach_choice = pipeline.path("results/sweep/tiny-gptj/layernorm/chosen.yaml")
    assert yaml.safe_load(approach_choice.read_text()) == {"layernorm": chosen}
    extension = json.loads(
        pipeline.path("results/sweep/tiny-gptj/layernorm/extension.json").read_text()
    )
    added = [run["learning_rate"] for run in extension["runs"]]
    # Two rates: every choice lies on an edge, so the job went past it at least once.
    assert extension["steps"] and len(added) >= 1
    assert chosen["learning_rate"] in rates + added
    assert len(extension["steps"]) == 1
    summary = json.loads(pipeline.path(cell).read_text())
    trained = summary["provenance"]["config"]
    assert trained["learning_rate"] == chosen["learning_rate"] != configured
    assert trained["epochs"] == chosen["epochs"] == summary["epochs"]
    # Each sweep run trained the largest epoch count once and was scored at every epoch's end.
    for rate in rates:
        curves = pd.read_csv(
            pipeline.path(f"results/sweep/tiny-gptj/layernorm/lr{rate:g}/seed1/curves.csv")
        )
        assert curves["val_macro_f1"].notna().sum() == 2
    # The same command again, asking for the cell's evaluation too: only the evaluation (and
    # its test prompts) is left to do; a study resumed across sessions redoes no sweep and no
    # training.
    evaluated = "results/eval/tiny-gptj/layernorm/instruction/8bit/seed42/metrics.json"
    resumed = pipeline.run(evaluated, "-n", "--set-threads", "sweep=1", config=config)
    left = job_stats(resumed.stdout + resumed.stderr)
    assert set(left) <= {"format_prompts", "evaluate", "all"}, resumed.stdout[-3000:]
    assert left["evaluate"] == 1
    # A new choice retrains the cell.
    other = yaml.safe_load(approach_choice.read_text())
    other["layernorm"]["learning_rate"] = next(
        rate for rate in rates + added if rate != chosen["learning_rate"]
    )
    approach_choice.write_text(yaml.safe_dump(other))
    replanned = pipeline.run(evaluated, "-n", config=config)
    assert "train_layernorm" in jobs_per_approach(replanned.stdout), replanned.stdout[-3000:]


def test_an_approachs_cells_wait_for_its_own_sweep_alone(pipeline):
    """A tuned cell's inputs are its approach's sweep runs, extension and choice: on 2 cores its
    cells train while another approach's sweep is still being extended or confirmed."""
    config = tuned_by_a_sweep({"layernorm": [1e-3, 2e-3], "lora_all": [1e-3, 2e-3]})
    cell = "results/train/tiny-gptj/layernorm/instruction/8bit/seed42/summary.json"
    plan = jobs_per_approach(pipeline.run(cell, "-n", config=config).stdout)
    assert plan["sweep_layernorm"] == 2 and plan["sweep_choice_layernorm"] == 1
    assert not {job for job in plan if job.endswith("lora_all")}, plan
    assert "sweep_summary" not in plan


def sweep_figure_of(tmp_path, table):
    """The report's sweep figure drawn from the sweep summary of `table`'s runs (see `runs`)."""
    from adaptune.report import figures
    from adaptune.report.inputs import load_sweep_points
    from adaptune.core.systems import APPROACH_LABELS

    out = tmp_path / "out"
    write_sweep(runs(tmp_path, table), [1, 2], out / "summary.csv", out / "summary.md")
    return figures.sweep_figure(load_sweep_points(out / "summary.csv"), APPROACH_LABELS)


def test_the_report_draws_the_sweep_behind_the_choice(tmp_path):
    """The report's sweep figure: a panel per approach, a line per learning rate, and the star on
    the chosen setting's mean val macro-F1."""
    from adaptune.report import figures

    table = {
        ("lora_all", 1e-3, 1): [0.70, 0.72],
        ("lora_all", 1e-3, 2): [0.60, 0.64],
        ("lora_all", 3e-3, 1): [0.40, 0.50],
        ("lora_all", 3e-3, 2): [0.40, 0.50],
        ("layernorm", 1e-3, 1): [0.50, 0.80],
        ("layernorm", 1e-3, 2): [0.50, 0.40],
        ("layernorm", 3e-3, 1): [0.55, 0.70],
        ("layernorm", 3e-3, 2): [0.55, 0.66],
    }
    figure = sweep_figure_of(tmp_path, table)
    out = tmp_path / "out"
    panels = [ax for ax in figure.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == [
        "Normalization layers only",
        "LoRA, all linear layers",
    ]
    for ax, (epochs, f1) in zip(panels, [(2, 0.68), (2, 0.68)]):
        assert len(ax.lines) == 2  # one per learning rate
        star = ax.collections[-1].get_offsets()
        assert star.tolist() == [[epochs, pytest.approx(f1)]]
    figures.save(figure, out / "sweep_curves", 60)
    assert (out / "sweep_curves.png").stat().st_size > 0 and (out / "sweep_curves.svg").is_file()


def test_rates_that_end_together_get_labels_apart(tmp_path):
    """Two learning rates whose val macro-F1 ends at the same value: their labels at the lines'
    end are spread apart around that value, not drawn over each other."""
    table = {  # (approach, rate, seed): val macro-F1 after epochs 1 and 2
        ("layernorm", 1e-3, 1): [0.50, 0.70],
        ("layernorm", 1e-3, 2): [0.60, 0.72],
        ("layernorm", 3e-3, 1): [0.20, 0.71],
        ("layernorm", 3e-3, 2): [0.30, 0.71],
    }
    (panel,) = [ax for ax in sweep_figure_of(tmp_path, table).axes if ax.get_title()]
    heights = {text.get_text(): text.get_position()[1] for text in panel.texts}
    assert set(heights) == {"lr 0.001", "lr 0.003"}
    low, high = panel.get_ylim()
    assert abs(heights["lr 0.001"] - heights["lr 0.003"]) >= 0.05 * (high - low)
    assert sum(heights.values()) / 2 == pytest.approx(0.71)


def test_a_sweep_table_without_its_columns_is_refused_by_name(tmp_path):
    from adaptune.report.inputs import load_sweep_points

    path = tmp_path / "summary.csv"
    path.write_text("approach,learning_rate,epochs\nlayernorm,0.001,1\n")
    with pytest.raises(
        ReportInputError,
        match=r"summary.csv: missing column\(s\) \['seed', 'val_macro_f1', 'chosen'\]",
    ):
        load_sweep_points(path)
    with pytest.raises(ReportInputError, match="file not found"):
        load_sweep_points(tmp_path / "absent.csv")


def test_cuts_name_only_seeds_and_styles_of_the_grid():
    from conftest import refusal

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config = deep_update(config, {"training": {"quantizations": ["none", "8bit"]}})
    bad = deep_update(config, {"training": {"quantization_seeds": {"8bit": [42, 7]}}})
    assert "training.quantization_seeds.8bit: seed(s) [7] are not in training.seeds" in refusal(bad)
    bad = deep_update(config, {"training": {"approaches": {"head": {"styles": ["shouty"]}}}})
    assert (
        "training.approaches.head.styles: style(s) ['shouty'] are not in training.styles"
        in refusal(bad)
    )


def test_learning_rates_from_another_study_set_each_cells_rate_and_nothing_else(
    pipeline, prepared_tiny_gptj
):
    """training.learning_rates_from (configs/reference-rates.yaml): the cell trains at its
    approach's rate in that file, at its own configured epochs; the file is an input of the cell,
    so a changed choice retrains it."""
    chosen = pipeline.path("elsewhere/chosen.yaml")
    chosen.parent.mkdir(parents=True)
    chosen.write_text(yaml.safe_dump({"lora_all": {"learning_rate": 0.0123, "epochs": 7}}))
    config = {"training": {"learning_rates_from": "elsewhere/chosen.yaml"}}
    pipeline.place_resources(prepared_tiny_gptj)
    target = "results/train/tiny-gptj/lora_all/instruction/8bit/seed42/summary.json"
    plan = pipeline.run("-n", target, config=config).stdout
    assert "elsewhere/chosen.yaml" in plan
    pipeline.run(target, config=config)
    summary = json.loads(pipeline.path(target).read_text())
    trained = summary["provenance"]["config"]
    assert trained["learning_rate"] == 0.0123
    assert (
        summary["epochs"]
        == trained["epochs"]
        == pipeline.config["training"]["approaches"]["lora_all"]["epochs"]
    )


def test_learning_rates_from_is_refused_beside_the_studys_own_tuning():
    from conftest import refusal

    config = deep_update(
        tiny_pipeline_config(REPO),
        {"sweep": {"enabled": True, "tune_study": True}},
    )
    config["training"]["learning_rates_from"] = "docs/results/tuned/chosen.yaml"
    assert "training.learning_rates_from" in refusal(config)
    assert "sweep.tune_study" in refusal(config)
