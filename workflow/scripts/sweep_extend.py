"""Extend one approach's sweep grid past the edge its choice lies on (adaptune.sweep.extension)."""

import _checkout  # noqa: F401  (first: adaptune from this checkout; see _checkout.py)

from adaptune.core.logs import log_to

log_to(snakemake.log[0])

from adaptune.core.offline import hub_offline

hub_offline()  # before bitsandbytes is imported (adaptune.core.offline)

from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from adaptune.core.io import write_json  # noqa: E402
from adaptune.sweep.scores import sweep_tables  # noqa: E402
from adaptune.sweep.extension import extend, run_folder  # noqa: E402
from adaptune.train.run import TrainSettings, train  # noqa: E402

torch.set_num_threads(snakemake.threads)
sweep = snakemake.config["sweep"]
template = dict(snakemake.params.template)
root = Path(snakemake.output[0]).parent.parent  # results/sweep/<model>, where the grid's runs live


def train_run(run):
    """Train one added run where the grid's runs live; a finished one is kept."""
    grid_max = max(sweep["epochs"])
    epochs = run["epochs"]
    out = run_folder(
        root,
        template["approach"],
        run["learning_rate"],
        run["seed"],
        None if epochs == grid_max else epochs,
    )
    if not (out / "summary.json").is_file():
        # A confirmation run branches off only the settings it confirms.
        wanted = run.get("scored", sweep["epochs"])
        branch = [e for e in wanted if e < epochs] if template["branch_epochs"] else []
        settings = TrainSettings.from_params(
            {
                **template,
                "learning_rate": run["learning_rate"],
                "seed": run["seed"],
                "epochs": epochs,
                "branch_epochs": branch,
            }
        )
        train(
            settings,
            snakemake.input.train,
            snakemake.input.val,
            snakemake.input.model,
            out,
            precision_file=snakemake.input.get("precision"),
        )
    return out / "curves.csv"


record = extend(
    template["approach"],
    list(snakemake.params.runs),
    list(sweep["epochs"]),
    list(sweep["seeds"]),
    int(sweep["extend_steps"]),
    train_run,
    sweep_tables,
    confirm_seeds=list(sweep["confirm_seeds"]),
    confirm_top=int(sweep["confirm_top"]),
)
write_json(snakemake.output[0], record)
