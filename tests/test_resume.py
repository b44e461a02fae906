"""An interrupted training run resumes: a tiny-model run is SIGKILLed mid-epoch after two
checkpoints exist and the newest is cut short, then rerun; it resumes from the one before and ends
with the adapter of a run that was never interrupted, its wall time counting both attempts. Keys
that say how a run is carried out stay out of its fingerprint; a time limit that stops a run is
recorded."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from training_helpers import settings

# The child trains and sends itself a signal (SIGKILL, or SIGTERM as a cluster's time limit does)
# when training step N ends: with N = 5, after the checkpoints of steps 2 and 4 are written, in the
# middle of the first of two 6-step epochs.
CHILD = """
import logging, os, signal, sys
logging.basicConfig(level=logging.INFO)
from dataclasses import asdict
sys.path[:0] = {paths!r}
from adaptune.train import run as training
from adaptune.train.module import TrainTimer
from training_helpers import settings

kill_at, signal_number = int(sys.argv[1]), int(sys.argv[2])
finish = TrainTimer.on_train_batch_end
def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
    finish(self, trainer, module, outputs, batch, batch_idx)
    if trainer.global_step == kill_at:
        os.kill(os.getpid(), signal_number)
TrainTimer.on_train_batch_end = on_train_batch_end
training.train(settings("lora_all", checkpoint_every_n_steps=2, precision="32-true"),
               {train!r}, {val!r}, {model!r}, {out!r})
"""


def run_killed_child(
    workspace, out: Path, kill_at: int, signal_number: int = signal.SIGKILL
) -> subprocess.CompletedProcess:
    tests = str(Path(__file__).parent)
    src = str(Path(__file__).parent.parent / "src")
    script = CHILD.format(
        paths=[src, tests],
        train=str(workspace["train"]),
        val=str(workspace["val"]),
        model=str(workspace["model"]),
        out=str(out),
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", script, str(kill_at), str(int(signal_number))],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def train_here(workspace, out: Path) -> dict:
    """The child's training in this process (one thread, as the children): a rerun after a kill
    needs no process of its own, it reads only what the killed one left on disk."""
    from adaptune.train import run as training

    return training.train(
        settings("lora_all", checkpoint_every_n_steps=2, precision="32-true"),
        workspace["train"],
        workspace["val"],
        workspace["model"],
        out,
    )


@pytest.mark.slow
def test_a_checkpoint_that_resumes_short_is_refused_and_the_one_before_it_used(
    workspace, tmp_path, one_thread
):
    """A run stopped by SIGTERM (a cluster's time limit) fails, saying so, and keeps its
    checkpoints. A checkpoint Lightning restores as further on than it was (its epochs counted as
    done) would end the run early yet record it whole: the rerun fails, naming and removing it,
    and the next rerun resumes from the one before and trains every step."""
    import torch

    out = tmp_path / "cell"
    terminated = run_killed_child(workspace, out, 5, signal.SIGTERM)
    # Not Lightning's exit status 0, which would pass the job for finished without its outputs.
    assert terminated.returncode == 1, terminated.stderr[-3000:]
    assert f"{out}: stopped by SIGTERM at step 5" in terminated.stderr
    assert not (out / "summary.json").exists()
    newest = sorted((out / "checkpoints").glob("*/steps/step4.ckpt"))[0]
    state = torch.load(newest, map_location="cpu", weights_only=False)
    done = state["loops"]["fit_loop"]["epoch_progress"]
    for counter in ("total", "current"):
        done[counter].update(ready=2, started=2, processed=2, completed=2)
    state["epoch"] = 2
    torch.save(state, newest)

    from adaptune.train.run import ResumeError

    with pytest.raises(ResumeError) as refused:
        train_here(workspace, out)
    assert f"{newest}: resuming from it ended training at step 4 of 12" in str(refused.value)
    assert not newest.exists() and not (out / "summary.json").exists()

    summary = train_here(workspace, out)
    assert summary["resumed_from_step"] == 2 and summary["steps"] == 12
    assert json.loads((out / "summary.json").read_text())["steps"] == 12


@pytest.mark.slow
def test_a_killed_run_resumes_and_ends_where_an_uninterrupted_one_does(
    workspace, tmp_path, one_thread, caplog
):
    # The uninterrupted run and the rerun in this process; the killed one in a child.
    straight = tmp_path / "straight"
    train_here(workspace, straight)

    interrupted = tmp_path / "interrupted"
    killed = run_killed_child(workspace, interrupted, 5)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    checkpoints = sorted((interrupted / "checkpoints").glob("*/steps/step*.ckpt"))
    assert [p.name for p in checkpoints] == ["step2.ckpt", "step4.ckpt"]
    # A kill during the copy of the newest checkpoint (across file systems) leaves it cut short.
    newest = checkpoints[1].read_bytes()
    checkpoints[1].write_bytes(newest[: len(newest) // 2])
    assert not (interrupted / "summary.json").exists()
    stale = list(tmp_path.glob(".interrupted.*"))
    assert stale, "the killed atomic write leaves its hidden scratch folder"

    caplog.set_level(logging.INFO, logger="adaptune")
    train_here(workspace, interrupted)
    assert "step4.ckpt: not a readable checkpoint" in caplog.text
    assert "resuming from" in caplog.text
    summary = json.loads((interrupted / "summary.json").read_text())
    assert summary["resumed_from_step"] == 2 and summary["steps"] == 12
    # The cell's wall time counts the killed attempt too (up to its checkpoint of step 2), not
    # only the rerun's own (provenance's).
    assert summary["attempts"] == 2
    assert summary["wall_time_s"] > summary["provenance"]["wall_time_s"] + 0.1
    assert summary["stopped_by_time_limit"] is False
    assert sorted(p.name for p in interrupted.iterdir()) == [
        "adapter",
        "curves.csv",
        "summary.json",
        "val_scores.csv",
    ]
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


def test_the_fingerprint_leaves_out_how_a_run_is_carried_out(workspace):
    """Adding a time limit after a timeout, or checkpointing more often, keeps the checkpoints."""
    from dataclasses import replace

    from adaptune.train.run import run_fingerprint

    run = settings("lora_all", precision="32-true")
    files = (workspace["model"], workspace["train"], workspace["val"])
    first = run_fingerprint(run, *files)
    carried_out_otherwise = replace(
        run, max_time="00:04:00:00", checkpoint_every_n_steps=7, log_every_n_steps=1
    )
    assert run_fingerprint(carried_out_otherwise, *files) == first
    assert run_fingerprint(replace(run, learning_rate=1e-3), *files) != first


def test_a_checkpoint_cut_short_gives_way_to_the_one_before(tmp_path, caplog):
    import torch

    from adaptune.train.run import latest_checkpoint

    run = tmp_path / "checkpoints" / "abc"
    (run / "steps").mkdir(parents=True)
    for step in (2, 4):
        torch.save(
            {"global_step": step, "state_dict": {"w": torch.ones(500)}},
            run / "steps" / f"step{step}.ckpt",
        )
    assert latest_checkpoint(tmp_path / "checkpoints", run) == str(run / "steps" / "step4.ckpt")
    whole = (run / "steps" / "step4.ckpt").read_bytes()
    (run / "steps" / "step4.ckpt").write_bytes(whole[: len(whole) - 100])
    assert latest_checkpoint(tmp_path / "checkpoints", run) == str(run / "steps" / "step2.ckpt")
    assert "step4.ckpt: not a readable checkpoint" in caplog.text
    (run / "steps" / "step2.ckpt").write_bytes(b"")
    assert latest_checkpoint(tmp_path / "checkpoints", run) is None  # none readable: start over


def test_a_run_stopped_by_its_time_limit_says_so(workspace, tmp_path, one_thread, monkeypatch):
    """Each step made to last over a second under a one-second limit: training stops early, saves
    the adapter so far, and the summary flags it (the report marks such rows)."""
    import time

    from adaptune.train import run as training
    from adaptune.train.module import TrainTimer

    finish = TrainTimer.on_train_batch_end

    def slow_step(self, *args):
        time.sleep(1.1)
        finish(self, *args)

    monkeypatch.setattr(TrainTimer, "on_train_batch_end", slow_step)
    summary = training.train(
        settings("layernorm", precision="32-true", max_time="00:00:00:01"),
        workspace["train"],
        workspace["val"],
        workspace["model"],
        tmp_path / "out",
    )
    assert summary["stopped_by_time_limit"] is True
    assert 1 <= summary["steps"] < 12
    assert (tmp_path / "out" / "adapter").is_dir()
