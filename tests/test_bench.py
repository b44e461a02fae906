"""The benchmark scripts run: the GPU check in its tiny mode (on a CPU), and the bf16 probe."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def printed_as(value: str, *operands: str) -> dict:
    """pytest.approx's tolerance for a printed `value` computed from printed `operands`: half a
    unit of each one's last digit, relative to it, summed (how far rounding alone can move a
    ratio; a 4.85 ms step printed as 4.9 is 1% off)."""
    rel = sum(0.5 * 10 ** -len(p.partition(".")[2]) / float(p) for p in (value, *operands))
    return {"rel": rel + 1e-9}


def bench_model(tmp_path, tiny_llama) -> Path:
    """A tiny Llama prepared as the pipeline prepares a model, and a reference split of 8 tweets
    per class in tmp_path/split (ADAPTUNE_REFERENCE_SPLIT): what a benchmark script reads."""
    import shutil

    from conftest import write_reference_csvs

    model = shutil.copytree(tiny_llama, tmp_path / "model")
    (model / "adaptune_model.json").write_text(
        json.dumps(
            {
                "name": "tiny-llama",
                "attention_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
                "mlp_modules": ["gate_proj", "up_proj", "down_proj"],
            }
        )
    )
    write_reference_csvs(tmp_path / "split", per_class=8)
    for part in ("train", "val"):
        (tmp_path / "split" / f"reference_{part}.csv").rename(tmp_path / "split" / f"{part}.csv")
    return model


@pytest.mark.slow
def test_gpu_check_runs_tiny_gptj_and_its_features_on_a_cpu_and_says_what_it_skips(tmp_path):
    """Both parts in one run (`--checks all`, the default), as on a GPU machine."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "HF_HUB_OFFLINE": "1",
        "ADAPTUNE_GPTJ_DIR": "",
        "ADAPTUNE_REFERENCE_SPLIT": str(tmp_path / "absent"),
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench/gpu_check.py"),
            "--rounds",
            "1",
            "--steps",
            "1",
            "--examples",
            "24",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    # The comparison.
    assert "tiny GPT-J (random weights), 8bit, 24 prompts" in out
    for name in ("adaptune", "reference", "trainer"):
        row = re.search(rf"^{name}\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out, re.M)
        assert row, f"no {name} row in:\n{out}"
        batch, milliseconds, rate, gflop = row.groups()
        assert int(batch) == {"adaptune": 4, "reference": 2, "trainer": 8}[name]
        assert float(milliseconds) > 0
        assert float(rate) == pytest.approx(
            int(batch) / (float(milliseconds) / 1000), **printed_as(rate, milliseconds)
        )
        assert float(gflop) >= 0
    for name in ("batched (16)", "one at a time"):
        assert re.search(rf"^{re.escape(name)}\s+[\d.]+\s+[\d.]+x$", out, re.M), out
    # The memory of GPT-J's training settings, without and with gradient checkpointing.
    for state in ("off", "on"):
        assert re.search(
            rf"^memory: lora_all, batch 8, 128 tokens, 8bit, 32-true, gradient checkpointing "
            rf"{state}: no GPU; peak memory of the process \d+ MB$",
            out,
            re.M,
        ), out
    # The features.
    assert "allocator runs against 2 pretend devices" in out
    assert re.search(
        r"2 concurrent jobs got CUDA_VISIBLE_DEVICES \['[01]', '[01]'\] \(distinct\)", out
    ), out
    assert "one job more waits: yes" in out
    killed = re.search(r"after SIGKILL of the job on (\d), the waiting job got (\d)", out)
    assert killed and killed[1] == killed[2], out
    difference = re.search(
        r"accumulation: batch 2 x 2 \(effective 4, \d+ steps\) against batch 4: "
        r"largest adapter difference ([\d.e+-]+)",
        out,
    )
    assert difference and float(difference[1]) < 1e-4, out
    assert "ddp: skipped, 0 GPU(s) here" in out
    exported = re.search(
        r"export \(float32\) on cpu: largest score difference from base \+ adapter ([\d.e+-]+)", out
    )
    assert exported and float(exported[1]) < 1e-4, out


def test_gpu_check_refuses_a_folder_without_a_model(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench/gpu_check.py"), "--model-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode != 0
    assert f"{tmp_path}: no config.json" in done.stderr


@pytest.mark.slow
def test_profile_step_times_every_candidate_and_marks_the_pipelines_choice(tmp_path, tiny_llama):
    """profile_step.py on a tiny Llama: one row per precision candidate, samples/s and the
    speed-up over fp32 consistent with the seconds per step it prints, the pipeline's choice
    (a forced decision file) marked."""
    model = bench_model(tmp_path, tiny_llama)
    decision = tmp_path / "precision.json"
    decision.write_text(json.dumps({"choice": "bf16-base", "reason": "forced"}))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "ADAPTUNE_REFERENCE_SPLIT": str(tmp_path / "split"),
        "ADAPTUNE_PRECISION_FILE": str(decision),
    }
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench/profile_step.py"),
            "--model-dir",
            str(model),
            "--rounds",
            "1",
            "--steps",
            "1",
            "--threads",
            "1",
            "--quick",
            "--emulated-too",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert f"pipeline's precision: bf16-base ({decision}: forced)" in out
    rows = {}
    for name in ("32-true", "bf16-base", "bf16-mixed", "32-true, LoRA dropout 0.05"):
        row = re.search(
            rf"^{re.escape(name)}\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+([\d.]+)%\s+([\d.]+)x(.*)$",
            out,
            re.M,
        )
        assert row, f"no {name} row in:\n{out}"
        rows[name] = row.groups()
    for name, (seconds, rate, _gflops, _share, speedup, mark) in rows.items():
        assert float(rate) == pytest.approx(4 / float(seconds), **printed_as(rate, seconds))
        fp32 = rows["32-true"][0]
        assert float(speedup) == pytest.approx(
            float(fp32) / float(seconds), **printed_as(speedup, fp32, seconds)
        )
        assert ("<- pipeline" in mark) is (name == "bf16-base")


def test_bf16_probe_measures_both_dtypes(one_thread):
    import torch

    from adaptune.hardware.precision import matmul_gflops

    fp32 = matmul_gflops(torch.float32, shape=(64, 64, 64), seconds=0.02)
    bf16 = matmul_gflops(torch.bfloat16, shape=(64, 64, 64), seconds=0.02)
    assert fp32 > 0 and bf16 > 0


def test_bench_compile_prints_eager_and_compiled_rows_with_consistent_ratios(tmp_path, tiny_llama):
    """bench_compile.py on a tiny Llama, fp32 only: an eager and a compiled row, samples/s and
    the compiled/eager ratio consistent with the seconds per step it prints, the cache in the
    folder given."""
    model = bench_model(tmp_path, tiny_llama)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "ADAPTUNE_REFERENCE_SPLIT": str(tmp_path / "split"),
    }
    script = str(ROOT / "bench/bench_compile.py")
    done = subprocess.run(
        [
            sys.executable,
            script,
            "--model-dir",
            str(model),
            "--precisions",
            "32-true",
            "--rounds",
            "1",
            "--steps",
            "1",
            "--threads",
            "1",
            "--quick",
            "--cache",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {}
    for name in ("32-true, eager", "32-true, compiled"):
        pattern = rf"^{re.escape(name)}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x\s+([\d.]+)x"
        row = re.search(pattern, done.stdout, re.M)
        assert row, f"no {name} row in:\n{done.stdout}"
        rows[name] = row.groups()
    eager_s = rows["32-true, eager"][0]
    for seconds, rate, _first, vs_eager in rows.values():
        assert float(rate) == pytest.approx(4 / float(seconds), **printed_as(rate, seconds))
        assert float(vs_eager) == pytest.approx(
            float(eager_s) / float(seconds), **printed_as(vs_eager, eager_s, seconds)
        )
    assert any((tmp_path / "cache").iterdir())


def test_parallel_jobs_compares_one_job_with_paired_jobs(tmp_path, tiny_llama):
    """parallel_jobs.py on a tiny Llama: a row per kind with both throughputs and their ratio."""
    model = bench_model(tmp_path, tiny_llama)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "HF_HUB_OFFLINE": "1",
        "ADAPTUNE_REFERENCE_SPLIT": str(tmp_path / "split"),
    }
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench/parallel_jobs.py"),
            "--model-dir",
            str(model),
            "--steps",
            "4",
            "--rounds",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for kind in ("train", "score"):
        row = re.search(rf"^{kind}\s+([\d.]+) /s\s+([\d.]+) /s\s+([\d.]+)x$", done.stdout, re.M)
        assert row, f"no {kind} row in:\n{done.stdout}"
        one, paired, ratio = row.groups()
        assert float(one) > 0 and float(paired) > 0
        assert float(ratio) == pytest.approx(
            float(paired) / float(one), **printed_as(ratio, paired, one)
        )
