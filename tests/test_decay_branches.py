"""A shorter run branched off a longer warm-up-stable-decay run scores as that shorter run
trained on its own: the sweep scores every epoch count from one run per rate and seed."""

import pandas as pd
import pytest
from training_helpers import settings

from adaptune.train.run import train

# 48 tweets in batches of 8: 6 steps an epoch; warm-up 1 step, decay over the last 3.
WSD = dict(
    lr_schedule="wsd",
    warmup_ratio=0.2,
    decay_ratio=0.5,
    quantization="none",
    val_checks_per_epoch=1,
    validate_first=False,
)


def test_branched_run_scores_as_the_shorter_run_itself(workspace, tmp_path):
    direct = train(
        settings("lora_all", epochs=1, **WSD),
        workspace["train"],
        workspace["val"],
        workspace["model"],
        tmp_path / "one-epoch",
    )
    long_run = train(
        settings("lora_all", epochs=2, branch_epochs=(1,), **WSD),
        workspace["train"],
        workspace["val"],
        workspace["model"],
        tmp_path / "two-epochs",
    )
    branches = pd.read_csv(tmp_path / "two-epochs" / "branches.csv")
    assert branches["epochs"].tolist() == [1] and branches["step"].tolist() == [6]
    branch = branches.iloc[0]
    assert branch["val_loss"] == pytest.approx(direct["final_val_loss"], abs=1e-5)
    assert branch["val_accuracy"] == pytest.approx(direct["final_val_accuracy"], abs=1e-6)
    # The long run went on from its own stable-rate state, not from the branch's decayed one.
    curves = pd.read_csv(tmp_path / "two-epochs" / "curves.csv").dropna(subset=["val_loss"])
    first_epoch_end = curves[curves["epoch"] == 0]["val_loss"].iloc[-1]
    assert first_epoch_end != pytest.approx(branch["val_loss"], abs=1e-3), curves
    assert long_run["steps"] == 12


def test_branches_need_the_wsd_schedule():
    with pytest.raises(ValueError, match="lr_schedule"):
        settings("lora_all", epochs=2, branch_epochs=(1,), lr_schedule="linear")
    with pytest.raises(ValueError, match="branch_epochs"):
        settings("lora_all", epochs=2, branch_epochs=(2,), lr_schedule="wsd")
