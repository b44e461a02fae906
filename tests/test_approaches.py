"""The registry of approaches: every name, label, colour and rule comes from it, and an approach
added as one module outside the package (ADAPTUNE_APPROACH_MODULES) is planned by Snakemake with
nothing else edited but its config block."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import yaml

from adaptune import approaches
from adaptune.approaches import MODULES_VARIABLE, get, load_registry
from adaptune.core.names import APPROACHES
from adaptune.core.systems import APPROACH_LABELS, METHOD_COLOURS, METHODS
from conftest import REPO, Pipeline, jobs_per_approach, tiny_pipeline_config

# A toy approach as a study would add it: LoRA on the MLP projections only.
TOY = textwrap.dedent("""
    from adaptune.approaches.base import Approach
    from adaptune.approaches.lora import lora_config


    def peft_config(model, settings, entry):
        return lora_config(model, settings, entry, list(entry["mlp_modules"]))


    APPROACH = Approach(name="lora_mlp", label="LoRA, MLP layers", colour="#ca9161",
                        peft_config=peft_config, uses_lora=True)
""")


@pytest.fixture
def toy_module(tmp_path, monkeypatch):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "toy_lora_mlp.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(folder))
    return folder


def test_names_labels_colours_and_order_come_from_the_registry():
    assert APPROACHES == tuple(approaches.REGISTRY) == approaches.names()
    assert APPROACHES[:3] == ("layernorm", "lora_attention", "lora_all")
    for name in APPROACHES:
        assert APPROACH_LABELS[name] == get(name).label
        assert METHOD_COLOURS[name] == get(name).colour
    # Listings show the fine-tuned approaches first, the registry's last first.
    assert METHODS[: len(APPROACHES)] == tuple(reversed(APPROACHES))


def test_an_approach_module_named_in_the_environment_joins_the_registry(toy_module, monkeypatch):
    monkeypatch.setenv(MODULES_VARIABLE, "toy_lora_mlp")
    registry = load_registry()
    assert list(registry) == [*APPROACHES, "lora_mlp"]
    assert registry["lora_mlp"].uses_lora and registry["lora_mlp"].scorer == "completion"


def test_a_module_that_is_no_approach_is_refused_by_name(toy_module, monkeypatch):
    (toy_module / "not_an_approach.py").write_text("X = 1\n")
    monkeypatch.setenv(MODULES_VARIABLE, "not_an_approach")
    with pytest.raises(TypeError, match="'not_an_approach' defines no APPROACH"):
        load_registry()
    monkeypatch.setenv(MODULES_VARIABLE, "no_such_module_here")
    with pytest.raises(ImportError, match="cannot import approach module 'no_such_module_here'"):
        load_registry()
    (toy_module / "taken.py").write_text(TOY.replace('"lora_mlp"', '"lora_all"'))
    monkeypatch.setenv(MODULES_VARIABLE, "taken")
    with pytest.raises(ValueError, match="the name 'lora_all' is taken"):
        load_registry()
    with pytest.raises(ValueError, match="approach 'nope': not registered"):
        get("nope")


def test_a_toy_approach_is_planned_through_the_registry(tmp_path, toy_module):
    """Its module and its config block are all it takes: snakemake plans its training, its
    sweep and its evaluation beside the built-in approaches'."""
    pipeline = Pipeline(tmp_path / "run", tiny_pipeline_config(REPO / "no-model"))
    pipeline.workdir.mkdir()
    block = {"learning_rate": 1e-3, "epochs": 1, "lora": {"r": 4}}
    config = {
        "training": {"approaches": {"lora_mlp": block}},
        "sweep": {"enabled": True, "learning_rates": {"lora_mlp": [1e-3, 3e-3, 1e-2]}},
    }
    pipeline.write_config(config)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        MODULES_VARIABLE: "toy_lora_mlp",
        "PYTHONPATH": os.pathsep.join([str(toy_module), str(REPO / "src")]),
    }
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--cores",
        "2",
        "-n",
    ]
    plan = subprocess.run(command, cwd=pipeline.workdir, env=env, capture_output=True, text=True)
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]
    jobs = jobs_per_approach(plan.stdout)
    assert jobs["train_lora_mlp"] == 1 and jobs["sweep_lora_mlp"] == 3
    assert jobs["train_lora_all"] == 1
    assert "results/train/tiny-gptj/lora_mlp/instruction/8bit/seed42/adapter" in plan.stdout
    assert "results/eval/tiny-gptj/lora_mlp/instruction/8bit/seed42/predictions.csv" in plan.stdout

    # Without its config block the plan stops at once, naming the key.
    written = pipeline.write_config(config)
    del written["training"]["approaches"]["lora_mlp"]
    (pipeline.workdir / "config.yaml").write_text(yaml.safe_dump(written, sort_keys=False))
    refused = subprocess.run(command, cwd=pipeline.workdir, env=env, capture_output=True, text=True)
    assert refused.returncode != 0
    assert (
        "training.approaches: no block for approach(es) ['lora_mlp']"
        in refused.stdout + refused.stderr
    )


def test_an_unknown_approach_block_is_refused(tmp_path):
    from adaptune.core.config import with_defaults
    from adaptune.core.config_checks import check_config

    config = with_defaults(yaml.safe_load((REPO / "config.yaml").read_text()))
    config["training"]["approaches"]["bitfit"] = {"learning_rate": 1e-3, "epochs": 1}
    with pytest.raises(
        ValueError, match=r"training.approaches: unknown approach\(es\) \['bitfit'\]"
    ):
        check_config(config)
