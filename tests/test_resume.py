"""An interrupted training run resumes: a tiny-model run is SIGKILLed mid-epoch after a checkpoint
exists, then rerun; it resumes from the checkpoint and ends with the adapter of a run that was
never interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from test_training import settings, workspace  # noqa: F401  (the fixture is used by name)

# The child trains; with --kill-at N it SIGKILLs itself when training step N ends (after the
# checkpoint of step 2 is written, in the middle of the first of two 6-step epochs).
CHILD = """
import logging, os, signal, sys
logging.basicConfig(level=logging.INFO)
from dataclasses import asdict
sys.path[:0] = {paths!r}
from adaptune import training
from adaptune.training_module import TrainTimer
from test_training import settings

kill_at = int(sys.argv[1])
if kill_at:
    finish = TrainTimer.on_train_batch_end
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        finish(self, trainer, module, outputs, batch, batch_idx)
        if trainer.global_step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    TrainTimer.on_train_batch_end = on_train_batch_end
training.train(settings("lora_all", checkpoint_every_n_steps=2, precision="32-true"),
               {train!r}, {val!r}, {model!r}, {out!r})
"""


def run_child(workspace, out: Path, kill_at: int) -> subprocess.CompletedProcess:
    tests = str(Path(__file__).parent)
    src = str(Path(__file__).parent.parent / "src")
    script = CHILD.format(paths=[src, tests], train=str(workspace["train"]), val=str(workspace["val"]),
                          model=str(workspace["model"]), out=str(out))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", script, str(kill_at)], env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_a_killed_run_resumes_and_ends_where_an_uninterrupted_one_does(workspace, tmp_path, one_thread):
    # The uninterrupted run in this process (one thread, as the children); the killed one and its
    # rerun in children.
    from adaptune import training

    straight = tmp_path / "straight"
    training.train(settings("lora_all", checkpoint_every_n_steps=2, precision="32-true"),
                   workspace["train"], workspace["val"], workspace["model"], straight)

    interrupted = tmp_path / "interrupted"
    killed = run_child(workspace, interrupted, 3)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    checkpoints = list((interrupted / "checkpoints").glob("*/steps/step*.ckpt"))
    assert [p.name for p in checkpoints] == ["step2.ckpt"]
    assert not (interrupted / "summary.json").exists()
    stale = list(tmp_path.glob(".interrupted.*"))
    assert stale, "the killed atomic write leaves its hidden scratch folder"

    rerun = run_child(workspace, interrupted, 0)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming from" in rerun.stderr
    summary = json.loads((interrupted / "summary.json").read_text())
    assert summary["resumed_from_step"] == 2 and summary["steps"] == 12
    assert sorted(p.name for p in interrupted.iterdir()) == ["adapter", "curves.csv", "summary.json", "val_scores.csv"]
    assert not list(tmp_path.glob(".interrupted.*")) and not list(tmp_path.glob(".straight.*"))

    expected = load_file(straight / "adapter" / "adapter_model.safetensors")
    got = load_file(interrupted / "adapter" / "adapter_model.safetensors")
    assert expected.keys() == got.keys()
    for name in expected:
        assert (expected[name] - got[name]).abs().max().item() < 1e-6, name
    import pandas as pd

    # The curves are the uninterrupted run's, the rows logged before the kill included (the
    # sweep reads each epoch's val score from them).
    resumed = pd.read_csv(interrupted / "curves.csv")
    whole = pd.read_csv(straight / "curves.csv")
    assert resumed["step"].tolist() == whole["step"].tolist()
    assert resumed["val_macro_f1"].notna().tolist() == whole["val_macro_f1"].notna().tolist()
    pd.testing.assert_series_equal(resumed["val_macro_f1"], whole["val_macro_f1"], atol=1e-6)
