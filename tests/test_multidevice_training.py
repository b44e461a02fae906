"""Lightning's accumulation and DDP give the adapter of one process with the same examples per
optimizer step: batch 2 x accumulation 2 equals batch 4, and two DDP processes (gloo, on the CPU)
with batch 2 each equal one process with batch 4. A run with batch 2 and no accumulation, which
takes twice the steps, is the control that the comparison can fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from conftest import REPO
from training_helpers import ENTRY, LABELS, TEMPLATE, make_rows
from tiny_model import build_tiny_model

from adaptune.core.io import write_json, write_jsonl
from adaptune.train import run as training
from adaptune.train.run import LoraSettings, TrainSettings, train

# Every label's completion must be one token: the loss is a mean over completion tokens, so only
# then is the mean of two micro-batches' means the mean over the four examples.
TRAIN_ROWS = 16


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("multi")
    model_dir = build_tiny_model(root / "model", "gptj")
    write_json(model_dir / "adaptune_model.json", {**ENTRY, "path": str(model_dir)})
    write_jsonl(root / "train.jsonl", make_rows(TRAIN_ROWS))
    write_jsonl(root / "val.jsonl", make_rows(6))
    return {
        "root": root,
        "model": model_dir,
        "train": root / "train.jsonl",
        "val": root / "val.jsonl",
    }


def settings(**overrides) -> TrainSettings:
    values = dict(
        approach="lora_all",
        learning_rate=2e-2,
        epochs=1,
        batch_size=4,
        seed=0,
        quantization="none",
        lora=LoraSettings(r=4, alpha=8, dropout=0.0, biases=True),
        labels=LABELS,
        template=TEMPLATE,
        log_every_n_steps=1,
        validate_first=False,
        val_checks_per_epoch=1,
        precision="32-true",
    )  # bf16 autocast would round the two ways differently
    values.update(overrides)
    return TrainSettings(**values)


def adapter_tensors(out: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(out / "adapter" / "adapter_model.safetensors")


# Float tolerance: the weights are about 0.05-0.15 after training; the sums differ in order, and
# AdamW divides by the root of tiny squared gradients, which magnifies rounding (seen: 1e-5).
# The control run differs by far more than this.
TOLERANCE = dict(rtol=1e-3, atol=5e-5)


def assert_same_adapter(a: dict, b: dict) -> None:
    import torch

    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], **TOLERANCE, msg=name)


def differs(a: dict, b: dict) -> bool:
    import torch

    return any(not torch.allclose(a[n], b[n], **TOLERANCE) for n in a)


@pytest.fixture(scope="module")
def batch4(data, tmp_path_factory, one_thread):
    out = tmp_path_factory.mktemp("batch4") / "out"
    summary = train(settings(), data["train"], data["val"], data["model"], out)
    return out, summary


def test_completions_are_one_token_each(data):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(data["model"])
    for label in LABELS:
        assert len(tokenizer(" " + label, add_special_tokens=False)["input_ids"]) == 1, label


def test_accumulation_gives_the_adapter_of_the_larger_batch(data, batch4, tmp_path, one_thread):
    out4, summary4 = batch4
    out = tmp_path / "accumulated"
    summary = train(
        settings(batch_size=2, accumulate_grad_batches=2),
        data["train"],
        data["val"],
        data["model"],
        out,
    )
    assert summary["steps"] == summary4["steps"] == TRAIN_ROWS // 4
    assert summary["effective_batch_size"] == summary4["effective_batch_size"] == 4
    assert json.loads((out / "summary.json").read_text())["effective_batch_size"] == 4
    tensors = adapter_tensors(out)
    assert any(
        name.endswith("lora_B.weight") and tensor.abs().sum() > 0
        for name, tensor in tensors.items()
    )
    assert_same_adapter(tensors, adapter_tensors(out4))

    control = tmp_path / "batch2"
    summary2 = train(settings(batch_size=2), data["train"], data["val"], data["model"], control)
    assert summary2["steps"] == TRAIN_ROWS // 2 and summary2["effective_batch_size"] == 2
    assert differs(adapter_tensors(control), tensors)


def test_clipping_and_time_limit_reach_the_trainer(data, batch4, tmp_path, one_thread):
    out4, _ = batch4
    clipped = tmp_path / "clipped"
    summary = train(
        settings(gradient_clip_val=1e-3, max_time="00:01:00:00"),
        data["train"],
        data["val"],
        data["model"],
        clipped,
    )
    assert summary["provenance"]["config"]["gradient_clip_val"] == 1e-3
    assert differs(
        adapter_tensors(clipped), adapter_tensors(out4)
    )  # a tiny norm bound changes the steps


DDP_SCRIPT = """
import json, sys
import torch
torch.set_num_threads(1)
from adaptune.train import run as training
from adaptune.train.run import LoraSettings, TrainSettings, train
values = json.loads(open(sys.argv[1]).read())
values["lora"] = LoraSettings(**values["lora"])
values["labels"] = tuple(values["labels"])
summary = train(TrainSettings(**values), *sys.argv[2:])
if summary is not None:
    print(
        "SUMMARY",
        json.dumps({k: summary[k] for k in ("steps", "effective_batch_size", "devices")}),
    )
"""


# What a job sees inside the step that Snakemake's SLURM job step starts (`srun -n1`).
SLURM_STEP = {
    "SLURM_JOB_ID": "7",
    "SLURM_JOB_NAME": "train",
    "SLURM_NTASKS": "1",
    "SLURM_NTASKS_PER_NODE": "1",
    "SLURM_PROCID": "0",
    "SLURM_LOCALID": "0",
    "SLURM_NODEID": "0",
    "SLURM_NNODES": "1",
    "SLURM_STEP_ID": "0",
}


def test_ddp_inside_a_slurm_step_of_one_task_starts_its_own_processes(monkeypatch):
    import pytorch_lightning as pl
    from pytorch_lightning.plugins.environments import LightningEnvironment

    # On a plain machine: Lightning's own environment, which launches the second process.
    for key in SLURM_STEP:
        monkeypatch.delenv(key, raising=False)
    plain = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False)
    assert isinstance(plain.strategy.cluster_environment, LightningEnvironment)
    assert plain.world_size == 2 and plain.strategy.launcher is not None
    for key, value in SLURM_STEP.items():
        monkeypatch.setenv(key, value)
    run = settings(batch_size=2, devices=2, strategy="ddp")
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        logger=False,
        plugins=training.launcher_plugins(run),
    )
    assert isinstance(trainer.strategy.cluster_environment, LightningEnvironment)
    assert trainer.world_size == 2 and trainer.strategy.launcher is not None
    assert training.launcher_plugins(settings()) is None  # one device: nothing to launch
    # Left to itself, Lightning takes the step's one task for the whole run.
    assert pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False).world_size == 1


@pytest.mark.slow
def test_two_ddp_processes_give_the_adapter_of_one(data, batch4, tmp_path):
    """Lightning's DDP launcher re-runs the script that started it (as in a Snakemake job), so
    the run is a script of its own here, not pytest. It runs inside a SLURM step of one task:
    there the launcher gets Lightning's own environment, the one it has on a plain machine (the
    test above), so this one run covers both."""
    out4, summary4 = batch4
    script, values = tmp_path / "ddp_train.py", tmp_path / "settings.json"
    script.write_text(DDP_SCRIPT)
    values.write_text(json.dumps(asdict(settings(batch_size=2, devices=2, strategy="ddp"))))
    out = tmp_path / "ddp"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "src"),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        **SLURM_STEP,
    }
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            str(values),
            str(data["train"]),
            str(data["val"]),
            str(data["model"]),
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    printed = [line for line in done.stdout.splitlines() if line.startswith("SUMMARY")]
    assert len(printed) == 1, done.stdout  # the second process writes nothing
    summary = json.loads(printed[0].split(" ", 1)[1])
    assert summary == {"steps": summary4["steps"], "effective_batch_size": 4, "devices": 2}
    assert "gloo" in done.stderr.lower() or "distributed_backend=gloo" in done.stdout
    assert_same_adapter(adapter_tensors(out), adapter_tensors(out4))
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in out4.iterdir())


@pytest.mark.parametrize("quantization", ["8bit", "4bit"])
def test_ddp_refuses_a_quantized_base(quantization):
    with pytest.raises(ValueError, match="bitsandbytes-quantized base cannot be trained with DDP"):
        settings(devices=2, strategy="ddp", quantization=quantization)


def test_several_devices_need_ddp():
    with pytest.raises(ValueError, match='devices: got 2, expected 1 unless strategy is "ddp"'):
        settings(devices=2)


@pytest.mark.parametrize(
    "key, value", [("max_time", "4h"), ("gradient_clip_val", 0), ("accumulate_grad_batches", 0)]
)
def test_bad_knobs_name_the_key(key, value):
    with pytest.raises(ValueError, match=f"training settings: {key}: got"):
        settings(**{key: value})
