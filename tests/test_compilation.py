"""Compiled training steps on a tiny model: same loss as eager, a shared cache that a second
process reuses, and no stale entry across shapes or torch versions."""

import json
import subprocess
import sys
import textwrap

import pytest

from adaptune.compilation import BUCKETS, bucket_length, cache_dir

# One forward+backward of a tiny llama model, compiled (or not), as a separate process: the
# loss, the time it took and inductor's cache counters as JSON on the last line.
STEP = textwrap.dedent("""
    import json, sys, time
    import torch
    from transformers import AutoModelForCausalLM
    from adaptune.compilation import cache_counters, compile_model, use_cache
    model_dir, cache_root, version, width, compiled = sys.argv[1:6]
    torch.manual_seed(0)
    torch.set_num_threads(1)
    use_cache(cache_root, version or None)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    if compiled == "1":
        compile_model(model)
    ids = torch.randint(1, 100, (2, int(width)))
    start = time.perf_counter()
    loss = model(input_ids=ids, labels=ids, use_cache=False).loss
    loss.backward()
    print(json.dumps({"loss": loss.item(), "seconds": time.perf_counter() - start,
                      **cache_counters()}))
""")

# bf16 is not used here: an fp32 compiled graph reorders sums, nothing more.
TOLERANCE = 1e-4


def step(model_dir, cache_root, width=16, compiled=True, version=""):
    out = subprocess.run([sys.executable, "-c", STEP, str(model_dir), str(cache_root), version,
                          str(width), "1" if compiled else "0"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", arch="llama")


def test_buckets_bound_the_shapes():
    assert [bucket_length(n) for n in (1, 32, 33, 96, 97)] == [32, 32, 64, 96, 128]
    assert bucket_length(BUCKETS[-1] + 5) == BUCKETS[-1] + 5


def test_cache_folder_is_keyed_by_torch_version(tmp_path):
    assert cache_dir(tmp_path, "2.13.0") != cache_dir(tmp_path, "2.14.0")
    assert cache_dir(tmp_path, "2.13.0").parent == tmp_path


def test_compiled_step_matches_eager_and_second_process_reuses_cache(model_dir, tmp_path):
    eager = step(model_dir, tmp_path, compiled=False)
    first = step(model_dir, tmp_path)
    assert first["loss"] == pytest.approx(eager["loss"], abs=TOLERANCE)
    assert first["fxgraph_cache_miss"] > 0 and first["fxgraph_cache_hit"] == 0

    second = step(model_dir, tmp_path)
    assert second["loss"] == pytest.approx(first["loss"], abs=1e-6)
    assert second["fxgraph_cache_hit"] > 0 and second["fxgraph_cache_miss"] == 0

    # Another shape, or the folder of another torch version: compiled afresh, not loaded.
    wider = step(model_dir, tmp_path, width=32)
    assert wider["fxgraph_cache_miss"] > 0
    other = step(model_dir, tmp_path, version="0.0.0-other")
    assert other["fxgraph_cache_miss"] > 0 and other["fxgraph_cache_hit"] == 0
