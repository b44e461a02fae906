"""Compiled training on tiny models: the same loss as eager steps, a shared cache that a second
process reuses, no stale entry across torch versions, and the decision to compile. (Inductor
keys its entries by graph and shapes itself; a new bucket compiles afresh.)"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from training_helpers import make_rows, settings

from adaptune.hardware import compilation
from adaptune.hardware.compilation import BUCKETS, bucket_length, cache_dir
from adaptune.core.io import write_json, write_jsonl
from adaptune.train.run import train

TESTS = Path(__file__).parent

# The pipeline's compiled training in a process of its own (the settings of the test below,
# rebuilt there): its summary, as JSON.
SECOND_PROCESS = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from training_helpers import settings
    from adaptune.train.run import train
    train_path, val_path, model_dir, cache, out = sys.argv[1:]
    s = settings(
        "lora_all", quantization="none", max_steps=3, compile=True, compile_cache=cache
    )
    summary = train(s, Path(train_path), Path(val_path), Path(model_dir), Path(out))
    print("SUMMARY", json.dumps(summary))
""")

# fp32 throughout: a compiled graph reorders sums (fused kernels), nothing more.
TOLERANCE = 1e-4
# Prompts short enough that every batch pads to the first length bucket.
SHORT_TEMPLATE = "One of: {labels}.\n\nTweet: {text}\nCategory:"
# In one bucket the model compiles once per mode: validation's forward, training's forward
# and backward. A recompile per step (a guard that every batch fails) would add graphs.
GRAPHS_IN_ONE_BUCKET = 3


@pytest.fixture(scope="module")
def one_bucket(workspace, tmp_path_factory) -> dict:
    """The training workspace with prompts that all fit the first bucket: each graph compiles
    once (compiling dominates this test's time)."""
    root = tmp_path_factory.mktemp("one-bucket")
    write_jsonl(root / "train.jsonl", make_rows(48, SHORT_TEMPLATE))
    write_jsonl(root / "val.jsonl", make_rows(12, SHORT_TEMPLATE))
    return {**workspace, "train": root / "train.jsonl", "val": root / "val.jsonl"}


def train_in_a_second_process(workspace, cache, out) -> dict:
    paths = [workspace["train"], workspace["val"], workspace["model"], cache, out]
    done = subprocess.run(
        [sys.executable, "-c", SECOND_PROCESS, *map(str, paths)],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        },
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("SUMMARY ")]
    return json.loads(line.removeprefix("SUMMARY "))


def test_buckets_bound_the_shapes():
    assert [bucket_length(n) for n in (1, 32, 33, 96, 97)] == [32, 32, 64, 96, 128]
    assert bucket_length(BUCKETS[-1] + 5) == BUCKETS[-1] + 5
    assert compilation.buckets_reached([5, 40, 41, 70]) == [32, 64, 96]


def test_cache_folder_is_keyed_by_torch_version(tmp_path):
    assert cache_dir(tmp_path, "2.13.0") != cache_dir(tmp_path, "2.14.0")
    assert cache_dir(tmp_path, "2.13.0").parent == tmp_path


def test_compiles_only_where_the_study_pays_for_it():
    pays = compilation.decide(1.0, 0.5, compile_s=30, graphs=8, study_steps=1500, margin=1.1)
    assert pays["choice"] and pays["saved_s"] == 750 and pays["cost_s"] == 240
    # Faster, but a short study does not pay back the compilation; or a win within the noise.
    assert not compilation.decide(1.0, 0.5, 30, 8, study_steps=400, margin=1.1)["choice"]
    assert not compilation.decide(1.0, 0.95, 1, 1, study_steps=10**6, margin=1.1)["choice"]


def test_auto_reads_the_hardware_rule_decision(tmp_path):
    decision = tmp_path / "precision.json"
    write_json(decision, {"choice": "32-true", "compile": {"choice": True}})
    assert compilation.resolve("auto", decision) is True
    assert compilation.resolve(False, decision) is False
    write_json(decision, {"choice": "32-true"})  # a decision from before compiling was timed
    assert compilation.resolve("auto", decision) is False
    assert compilation.resolve("auto", None) is False


def test_compiled_training_matches_eager_and_a_second_process_reuses_its_cache(
    one_bucket,
    tmp_path,
):
    """The pipeline's training with compile on (length buckets, validation through the compiled
    model too) gives eager training's losses, and says it compiled; the same training in another
    process (a study's next job) loads every graph from the cache and compiles none."""
    runs = {}
    for compiled in (False, True):
        s = settings(
            "lora_all",
            quantization="none",
            max_steps=3,
            compile=compiled,
            compile_cache=str(tmp_path / "cache"),
        )
        runs[compiled] = train(
            s,
            one_bucket["train"],
            one_bucket["val"],
            one_bucket["model"],
            tmp_path / f"run-{compiled}",
        )
    eager, compiled = runs[False], runs[True]
    assert compiled["compiled"] and not eager["compiled"]
    assert compiled["compile_cache"]["fxgraph_cache_miss"] == GRAPHS_IN_ONE_BUCKET
    for key in ("final_val_loss", "final_train_loss"):
        assert compiled[key] == pytest.approx(eager[key], abs=TOLERANCE), key

    again = train_in_a_second_process(one_bucket, tmp_path / "cache", tmp_path / "run-again")
    assert again["compile_cache"]["fxgraph_cache_hit"] == GRAPHS_IN_ONE_BUCKET
    assert again["compile_cache"]["fxgraph_cache_miss"] == 0
    for key in ("final_val_loss", "final_train_loss"):
        assert again[key] == pytest.approx(compiled[key], abs=1e-6), key
