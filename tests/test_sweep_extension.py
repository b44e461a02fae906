"""The sweep extends its own grid past the edge its choice lies on, inside the deciding job."""

import pandas as pd
import pytest
from training_helpers import settings

from adaptune.sweep.scores import sweep_tables
from adaptune.sweep.extension import extend, extension_runs, grid_step, next_runs, run_folder
from adaptune.train.run import train


def points(best_rate, best_epochs, rates=(1e-3, 2e-3, 4e-3), counts=(1, 2)):
    rows = [
        {
            "approach": "lora_all",
            "learning_rate": r,
            "epochs": e,
            "seed": 1,
            "chosen": (r, e) == (best_rate, best_epochs),
        }
        for r in rates
        for e in counts
    ]
    return pd.DataFrame(rows)


def test_an_interior_choice_adds_nothing():
    assert next_runs(points(2e-3, 1), "lora_all", seeds=[1, 2]) == []


def test_a_rate_edge_adds_the_next_rate_for_every_seed():
    added = next_runs(points(4e-3, 1), "lora_all", seeds=[1, 2])
    assert added == [
        {"learning_rate": 8e-3, "epochs": 2, "seed": 1},
        {"learning_rate": 8e-3, "epochs": 2, "seed": 2},
    ]
    lower = next_runs(points(1e-3, 1), "lora_all", seeds=[1])
    assert lower == [{"learning_rate": 5e-4, "epochs": 2, "seed": 1}]
    assert grid_step([1e-3, 2e-3, 4e-3]) == pytest.approx(2.0)


def test_the_most_epochs_edge_adds_an_epoch_at_the_chosen_rate():
    assert next_runs(points(2e-3, 2), "lora_all", seeds=[1]) == [
        {"learning_rate": 2e-3, "epochs": 3, "seed": 1}
    ]


def test_extend_trains_past_the_edge_and_records_it(workspace, tmp_path):
    """Real tiny runs: a grid whose choice lies on an edge gets one more rate (limit 1), trained
    where the grid's runs live, and the record lists it for the sweep's summary."""
    root = tmp_path / "sweep"

    def train_run(run):
        out = run_folder(root, "lora_all", run["learning_rate"], run["seed"])
        s = settings(
            "lora_all",
            quantization="none",
            learning_rate=run["learning_rate"],
            seed=run["seed"],
            epochs=run["epochs"],
            validate_first=False,
        )
        train(s, workspace["train"], workspace["val"], workspace["model"], out)
        return out / "curves.csv"

    grid = []
    for rate in (1e-4, 1e-3):
        curves = train_run({"learning_rate": rate, "seed": 0, "epochs": 1})
        grid.append(
            {"approach": "lora_all", "learning_rate": rate, "seed": 0, "curves": str(curves)}
        )
    _, means = sweep_tables(grid, [1])
    chosen_rate = float(means[means["chosen"]]["learning_rate"].iloc[0])
    expected = 1e-5 if chosen_rate == 1e-4 else 1e-2  # the grid's ratio, past the chosen edge

    record = extend(
        "lora_all", grid, [1], seeds=[0], limit=1, train_run=train_run, tables=sweep_tables
    )
    assert record["steps"][0][0]["learning_rate"] == pytest.approx(expected)
    added = record["runs"]
    assert [run["learning_rate"] for run in added] == [pytest.approx(expected)]
    assert (run_folder(root, "lora_all", expected, 0) / "summary.json").is_file()
    _, means = sweep_tables(grid + added, [1])
    assert len(means) == 3  # the summary sees the added rate beside the grid's


def test_an_unreadable_extension_record_is_named(tmp_path):
    bad = tmp_path / "extension.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="extension.json: not a readable sweep extension"):
        extension_runs([bad])


def test_a_one_seed_sweep_confirms_its_top_two_settings_and_chooses_among_them(tmp_path):
    """Cut 3 of the decisive study: the sweep on one seed, its two best settings trained again on
    a second seed, and the choice made among those two on their mean. The runs' curves are
    written from a table of scores so that the second seed can overturn the first."""
    scores = {  # (rate, seed) -> val macro-F1 at the end of epochs 1 and 2
        (1e-3, 1): (0.79, 0.60),
        (2e-3, 1): (0.70, 0.80),
        (4e-3, 1): (0.50, 0.40),
        (1e-3, 2): (0.78, 0.10),
        (2e-3, 2): (0.10, 0.70),
    }
    trained = []

    def train_run(run):
        trained.append(run)
        out = run_folder(tmp_path, "lora_all", run["learning_rate"], run["seed"])
        out.mkdir(parents=True)
        ends = scores[run["learning_rate"], run["seed"]][: run["epochs"]]
        pd.DataFrame(
            {
                "step": [10 * (e + 1) for e in range(len(ends))],
                "epoch": range(len(ends)),
                "val_macro_f1": ends,
                "val_accuracy": ends,
            }
        ).to_csv(out / "curves.csv", index=False)
        return out / "curves.csv"

    grid = [
        {
            "approach": "lora_all",
            "learning_rate": r,
            "seed": 1,
            "epochs": 2,
            "curves": str(train_run({"learning_rate": r, "seed": 1, "epochs": 2})),
        }
        for r in (1e-3, 2e-3, 4e-3)
    ]
    trained.clear()
    record = extend(
        "lora_all",
        grid,
        [1, 2],
        seeds=[1],
        limit=0,
        train_run=train_run,
        tables=sweep_tables,
        confirm_seeds=[2],
        confirm_top=2,
    )
    # One run per rate, as long as its confirmed setting, on the new seed only.
    assert sorted((r["learning_rate"], r["epochs"], r["seed"]) for r in trained) == [
        (1e-3, 1, 2),
        (2e-3, 2, 2),
    ]
    assert record["confirmed"] == {
        "seeds": [2],
        "settings": [{"learning_rate": 1e-3, "epochs": 1}, {"learning_rate": 2e-3, "epochs": 2}],
    }
    _, means = sweep_tables(grid + record["runs"], [1, 2])
    chosen = means[means["chosen"]].iloc[0]
    # Seed 1 alone prefers 2e-3 for 2 epochs (0.80); over both seeds 1e-3 for 1 epoch wins
    # (0.785 against 0.75), and no single-seed point competes with them.
    assert (chosen["learning_rate"], chosen["epochs"], chosen["seeds"]) == (1e-3, 1, 2)
    assert chosen["val_macro_f1"] == pytest.approx(0.785)
    assert (
        set(means.loc[means["seeds"] == 2, "epochs"]) == {1, 2} and (means["seeds"] == 2).sum() == 2
    )
