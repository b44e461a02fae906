"""Compiled training on tiny models: the same loss as eager steps, a shared cache that a second
process reuses, no stale entry across torch versions, and the decision to compile. (Inductor
keys its entries by graph and shapes itself; a new bucket compiles afresh.)"""

import json
import subprocess
import sys
import textwrap

import pytest
from training_helpers import settings, workspace  # noqa: F401 (a fixture)

from adaptune.hardware import compilation
from adaptune.hardware.compilation import BUCKETS, bucket_length, cache_dir
from adaptune.core.io import write_json
from adaptune.train.run import train

# Forward+backward of a tiny llama model at each width given, compiled, in a process of its
# own: per width the loss and inductor's cache counters of that width alone, as JSON lines;
# with "eager" first, also the loss of the same step uncompiled.
STEPS = textwrap.dedent("""
    import json, sys
    import torch
    from transformers import AutoModelForCausalLM
    from adaptune.hardware.compilation import cache_counters, compile_model, use_cache
    model_dir, cache_root, eager, *widths = sys.argv[1:]
    torch.set_num_threads(1)
    use_cache(cache_root)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    def loss(width):
        ids = torch.randint(1, 100, (2, width), generator=torch.Generator().manual_seed(width))
        value = model(input_ids=ids, labels=ids, use_cache=False).loss
        value.backward()
        return value.item()
    if eager == "1":
        print(json.dumps({"eager": loss(int(widths[0]))}))
    compile_model(model)
    for width in map(int, widths):
        before = cache_counters()
        value = loss(width)
        after = cache_counters()
        print(json.dumps({"loss": value, **{k: after[k] - before[k] for k in after}}))
""")

# fp32 throughout: a compiled graph reorders sums (fused kernels), nothing more.
TOLERANCE = 1e-4


def run_steps(model_dir, cache_root, *widths, eager=False) -> list[dict]:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            STEPS,
            str(model_dir),
            str(cache_root),
            "1" if eager else "0",
            *map(str, widths),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


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


def test_a_second_process_reuses_the_cache(tiny_llama, tmp_path):
    ((eager, first),) = [run_steps(tiny_llama, tmp_path, 16, eager=True)]
    assert first["loss"] == pytest.approx(eager["eager"], abs=TOLERANCE)
    assert first["fxgraph_cache_miss"] > 0 and first["fxgraph_cache_hit"] == 0

    (again,) = run_steps(tiny_llama, tmp_path, 16)
    assert again["loss"] == pytest.approx(first["loss"], abs=1e-6)
    assert again["fxgraph_cache_hit"] > 0 and again["fxgraph_cache_miss"] == 0


def test_compiled_training_matches_eager(workspace, tmp_path):  # noqa: F811
    """The pipeline's training with compile on (length buckets, validation through the compiled
    model too) gives eager training's losses, and says it compiled."""
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
            workspace["train"],
            workspace["val"],
            workspace["model"],
            tmp_path / f"run-{compiled}",
        )
    eager, compiled = runs[False], runs[True]
    assert compiled["compiled"] and not eager["compiled"]
    assert compiled["compile_cache"]["fxgraph_cache_miss"] > 0
    for key in ("final_val_loss", "final_train_loss"):
        assert compiled[key] == pytest.approx(eager[key], abs=TOLERANCE), key
