"""The precision decision and what training and scoring do under it, on a real tiny Llama:
a forced decision file is obeyed by training, evaluation and few-shot scoring; its timings never
reach a run's fingerprint; the decision rule prefers fp32 unless another candidate wins by the
margin; the timing itself runs real steps of every candidate."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"

from adaptune.hardware import precision  # noqa: E402

from adaptune.train import step_timing  # noqa: E402
from adaptune.hardware.precision import prepare_for_training  # noqa: E402
from adaptune.evaluate.run import EvaluationSettings, evaluate_adapter, evaluate_fewshot  # noqa: E402
from adaptune.core.io import write_json, write_jsonl  # noqa: E402
from adaptune.lm.models import load_model  # noqa: E402
from adaptune.train.run import LoraSettings, TrainSettings, resolved, run_fingerprint, train  # noqa: E402

LABELS = ("hate", "offensive", "neutral")
TEMPLATE = "Tweet: {text}\nCategory:"
TEXTS = {
    "hate": "those people should all go away",
    "offensive": "you are a stupid idiot",
    "neutral": "I love sunny days at the beach",
}


def rows(n: int, start: int = 0) -> list[dict]:
    out = []
    for i in range(start, start + n):
        label = LABELS[i % 3]
        out.append(
            {
                "id": str(i),
                "text": TEXTS[label],
                "prompt": TEMPLATE.format(text=TEXTS[label]),
                "completion": " " + label,
                "label": label,
            }
        )
    return out


@pytest.fixture(scope="module")
def workspace(tiny_llama, tmp_path_factory):
    import shutil

    root = tmp_path_factory.mktemp("precision")
    model = shutil.copytree(tiny_llama, root / "model")
    write_json(
        model / "adaptune_model.json",
        {
            "name": "tiny-llama",
            "source": "local",
            "path": str(model),
            "attention_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
            "mlp_modules": ["gate_proj", "up_proj", "down_proj"],
        },
    )
    write_jsonl(root / "train.jsonl", rows(16))
    write_jsonl(root / "val.jsonl", rows(6, start=100))
    return {"root": root, "model": model, "train": root / "train.jsonl", "val": root / "val.jsonl"}


def settings(**overrides) -> TrainSettings:
    values = dict(
        approach="lora_all",
        learning_rate=1e-2,
        epochs=1,
        batch_size=4,
        seed=0,
        quantization="none",
        lora=LoraSettings(r=4, alpha=8),
        labels=LABELS,
        template=TEMPLATE,
        max_steps=2,
        validate_first=False,
        val_checks_per_epoch=1,
    )
    values.update(overrides)
    return TrainSettings(**values)


def decision(path, choice, fp32=1.0, other=1.0):
    timings = {
        name: {"median_seconds_per_step": fp32 if name == "32-true" else other}
        for name in precision.CANDIDATES
    }
    write_json(path, {"cpu": "test", "candidates": timings, "choice": choice})
    return path


@pytest.fixture(scope="module")
def trained_bf16_base(workspace, one_thread):
    """A LoRA adapter trained with `precision: auto` and a decision file that says bf16-base."""
    forced = decision(workspace["root"] / "forced.json", "bf16-base")
    out = workspace["root"] / "bf16-base"
    summary = train(
        settings(),
        workspace["train"],
        workspace["val"],
        workspace["model"],
        out,
        precision_file=forced,
    )
    return summary, out


def test_training_obeys_a_forced_decision(trained_bf16_base):
    summary, out = trained_bf16_base
    record = json.loads((out / "adapter" / "adaptune_adapter.json").read_text())
    assert summary["precision"] == record["precision"] == "bf16-base"
    # It really ran so: the frozen base was bfloat16 during training (the LoRA weights float32).
    assert summary["frozen_weight_dtypes"] == ["bfloat16"]
    assert summary["steps"] == 2 and summary["torch_threads"] == 1


def test_scoring_follows_the_trained_precision(trained_bf16_base, workspace, one_thread):
    _, out = trained_bf16_base
    ev = EvaluationSettings(batch_size=4, bootstrap_samples=10)
    bf16 = evaluate_adapter(
        workspace["model"],
        out / "adapter",
        {"val": workspace["val"]},
        {"val": workspace["root"] / "eval-bf16"},
        ev,
        "x",
        {},
    )
    assert bf16["val"]["provenance"]["config"]["precision"] == "bf16-base"
    record = out / "adapter" / "adaptune_adapter.json"
    meta = json.loads(record.read_text())
    meta["precision"] = "32-true"  # the same adapter, as if trained in fp32
    record.write_text(json.dumps(meta))
    fp32 = evaluate_adapter(
        workspace["model"],
        out / "adapter",
        {"val": workspace["val"]},
        {"val": workspace["root"] / "eval-fp32"},
        ev,
        "x",
        {},
    )
    assert fp32["val"]["provenance"]["config"]["precision"] == "32-true"
    columns = [f"loglik_{label}" for label in LABELS]
    a = pd.read_csv(workspace["root"] / "eval-bf16" / "predictions.csv")[columns].to_numpy()
    b = pd.read_csv(workspace["root"] / "eval-fp32" / "predictions.csv")[columns].to_numpy()
    assert not np.array_equal(a, b)  # bf16 weights round differently ...
    assert np.allclose(a, b, atol=0.2)  # ... but score the same prompts alike


def test_a_bf16_base_adapter_scores_with_the_dtypes_it_trained_with(
    trained_bf16_base, workspace, one_thread
):
    from adaptune.hardware.precision import prepare_for_inference
    from adaptune.approaches.adapters import load_trained

    _, out = trained_bf16_base
    model, _, _ = load_trained(out / "adapter", workspace["model"])
    prepare_for_inference(model, "bf16-base")
    dtypes = {name: p.dtype for name, p in model.named_parameters()}
    assert {d for n, d in dtypes.items() if "lora_" in n} == {torch.float32}
    assert {d for n, d in dtypes.items() if "lora_" not in n} == {torch.bfloat16}
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_fewshot_obeys_the_decision(workspace, one_thread):
    ev = EvaluationSettings(batch_size=4, bootstrap_samples=10)
    scores = {}
    for choice in ("bf16-base", "32-true"):
        forced = decision(workspace["root"] / f"fewshot-{choice}.json", choice)
        out = workspace["root"] / f"fewshot-{choice}"
        result = evaluate_fewshot(
            workspace["model"],
            "none",
            workspace["train"],
            {"val": workspace["val"]},
            {"val": out},
            k=0,
            labels=LABELS,
            style="x",
            settings=ev,
            name="f",
            config_section={},
            precision="auto",
            precision_file=forced,
        )
        assert result["val"]["provenance"]["config"]["precision"] == choice
        scores[choice] = pd.read_csv(out / "predictions.csv")[
            [f"loglik_{l}" for l in LABELS]
        ].to_numpy()
    assert not np.array_equal(scores["bf16-base"], scores["32-true"])


def test_only_the_choice_reaches_the_fingerprint(workspace, tmp_path):
    def fingerprint(path):
        return run_fingerprint(
            resolved(settings(precision="auto"), path),
            workspace["model"],
            workspace["train"],
            workspace["val"],
        )

    quiet = fingerprint(decision(tmp_path / "quiet.json", "32-true", fp32=1.0, other=1.05))
    loaded = fingerprint(decision(tmp_path / "loaded.json", "32-true", fp32=3.1, other=2.9))
    other = fingerprint(decision(tmp_path / "other.json", "bf16-mixed", fp32=1.0, other=0.5))
    assert quiet == loaded != other
    # An explicit precision needs no decision file and ignores one.
    assert (
        resolved(settings(precision="bf16-mixed"), tmp_path / "other.json").precision
        == "bf16-mixed"
    )
    assert resolved(settings(precision="auto"), None).precision == (
        "bf16-mixed"
        if torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 0)
        else "16-mixed"
        if torch.cuda.is_available()
        else "32-true"
    )


# (GPU, compute capability) -> what `auto` runs under there and NF4's compute dtype.
GPUS = [
    ("V100", (7, 0), "16-mixed", "float16"),
    ("T4", (7, 5), "16-mixed", "float16"),
    ("A100", (8, 0), "bf16-mixed", "bfloat16"),
    ("H100", (9, 0), "bf16-mixed", "bfloat16"),
]


@pytest.mark.parametrize("gpu, capability, expected, compute", GPUS)
def test_a_gpu_below_compute_capability_8_gets_fp16_not_emulated_bf16(
    monkeypatch, tmp_path, workspace, gpu, capability, expected, compute
):
    """torch.cuda patched to show the GPU: torch counts emulated bf16 as supported on a V100/T4."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: f"Tesla {gpu}")
    assert precision.resolve("auto") == expected
    assert precision.cuda_compute_dtype() == getattr(torch, compute)
    # The hardware rule's decision on that GPU, untimed, and training's reading of it.
    record = step_timing.measure_and_decide(
        settings(), workspace["train"], workspace["model"], threads=1
    )
    assert record["choice"] == expected and "not timed" in record["reason"]
    write_json(tmp_path / "precision.json", record)
    assert resolved(settings(precision="auto"), tmp_path / "precision.json").precision == expected


def test_a_bad_decision_file_is_named(tmp_path):
    bad = tmp_path / "precision.json"
    bad.write_text('{"choice": "fp8"}')
    with pytest.raises(ValueError, match=r"precision.json: choice: got 'fp8'"):
        precision.resolve("auto", bad)
    bad.write_text("{")
    with pytest.raises(ValueError, match="not a readable precision decision"):
        precision.resolve("auto", bad)


@pytest.mark.parametrize(
    "seconds, expected",
    [
        # bf16-base 1.3x faster in every round: chosen.
        (
            {
                "32-true": [1.3, 1.3, 2.6],
                "bf16-base": [1.0, 1.0, 2.0],
                "bf16-mixed": [1.5, 1.5, 3.0],
            },
            "bf16-base",
        ),
        # 5% faster: not worth leaving fp32.
        (
            {
                "32-true": [1.05, 1.05, 1.05],
                "bf16-base": [1.0, 1.0, 1.0],
                "bf16-mixed": [2.0, 2.0, 2.0],
            },
            "32-true",
        ),
        # One round of load on fp32 alone does not make bf16 win: the median of paired ratios
        # decides.
        (
            {
                "32-true": [1.0, 4.0, 1.0],
                "bf16-base": [1.2, 1.2, 1.2],
                "bf16-mixed": [1.1, 1.1, 1.1],
            },
            "32-true",
        ),
        # Load that slows all candidates alike in one round does not change a clear answer.
        (
            {
                "32-true": [1.0, 3.0, 1.0],
                "bf16-base": [1.2, 3.6, 1.2],
                "bf16-mixed": [0.8, 2.4, 0.8],
            },
            "bf16-mixed",
        ),
    ],
)
def test_decision_prefers_fp32_unless_another_wins_by_the_margin(seconds, expected):
    choice, speedups = precision.decide(seconds)
    assert choice == expected
    assert speedups["32-true"] == 1.0


def test_the_timing_runs_real_steps_of_every_candidate(workspace, one_thread):
    record = step_timing.measure_and_decide(
        settings(), workspace["train"], workspace["model"], threads=1, rounds=2, steps=1
    )
    assert record["choice"] in precision.CANDIDATES and record["reason"].startswith(
        record["choice"]
    )
    # Every candidate is timed, or said untimed where this CPU emulates bf16.
    assert set(record["candidates"]) | set(record.get("not_timed", {})) == set(precision.CANDIDATES)
    timed_rounds = 2 if len(record["candidates"]) > 1 else 1
    for timing in record["candidates"].values():
        assert len(timing["seconds_per_step"]) == timed_rounds
        assert all(t > 0 for t in timing["seconds_per_step"])
    assert record["matmul_gflops"]["float32"] > 0 and record["torch"] == torch.__version__


def test_emulated_bf16_is_not_timed_and_compiling_is_decided(
    workspace, one_thread, monkeypatch, tmp_path
):
    """On a CPU whose bf16 matmuls crawl (as an AVX2-only one's do) only fp32 is timed; with a
    compile plan the record also says, from real eager and compiled steps, whether to compile."""
    from adaptune.hardware import precision as acceleration

    rates = {torch.float32: 100.0, torch.bfloat16: 1.0}
    monkeypatch.setattr(acceleration, "matmul_gflops", lambda dtype, **_: rates[dtype])
    plan = {"study_steps": 10, "approaches": 1, "cache": str(tmp_path / "cache")}
    record = step_timing.measure_and_decide(
        settings(quantization="none"),
        workspace["train"],
        workspace["model"],
        threads=1,
        rounds=2,
        steps=1,
        compile_plan=plan,
    )
    assert set(record["not_timed"]) == {"bf16-base", "bf16-mixed"}
    assert list(record["candidates"]) == ["32-true"] and record["choice"] == "32-true"
    compiled = record["compile"]
    assert compiled["study_steps"] == 10 and compiled["graphs"] == 2 * len(compiled["buckets"])
    assert compiled["eager_s_per_step"] > 0 and compiled["compiled_s_per_step"] > 0
    # Ten steps never pay for a compile.
    assert compiled["choice"] is False and compiled["reason"].startswith("eager:")


@pytest.mark.parametrize("arch", ["tiny_llama", "tiny_gptj"])
def test_bf16_base_keeps_trainables_fp32_and_leaves_int8_alone(arch, request, one_thread):
    from adaptune.approaches.adapters import make_trainable

    for quantization, frozen in (
        ("none", {torch.bfloat16}),
        ("8bit", {torch.int8, torch.bfloat16}),
    ):
        model, _ = load_model(request.getfixturevalue(arch), quantization)
        entry = {"attention_modules": ["q_proj", "v_proj"], "mlp_modules": []}
        model = prepare_for_training(
            make_trainable(model, settings(quantization=quantization), entry), "bf16-base"
        )
        assert {p.dtype for p in model.parameters() if not p.requires_grad} == frozen
        assert {p.dtype for p in model.parameters() if p.requires_grad} == {torch.float32}


def test_evaluation_reuses_the_final_validation_pass(workspace, one_thread):
    """Training scores the val split with the final adapter once; evaluation takes those scores
    (the scorer's own, to float precision) instead of scoring the split again."""
    forced = decision(workspace["root"] / "fp32.json", "32-true")
    out = workspace["root"] / "fp32"
    summary = train(
        settings(),
        workspace["train"],
        workspace["val"],
        workspace["model"],
        out,
        precision_file=forced,
    )
    scores = pd.read_csv(out / "val_scores.csv", dtype={"id": str})
    assert sorted(scores["id"]) == [str(i) for i in range(100, 106)]
    curves = pd.read_csv(out / "curves.csv")
    assert (
        curves.dropna(subset=["val_loss"])["step"].max() == summary["steps"] == 2
    )  # the curve ends at the adapter
    ev = EvaluationSettings(batch_size=4, bootstrap_samples=10)
    reused = evaluate_adapter(
        workspace["model"],
        out / "adapter",
        {"val": workspace["val"]},
        {"val": workspace["root"] / "reused"},
        ev,
        "x",
        {},
        val_scores=out / "val_scores.csv",
        val_examples_per_second=summary["final_val_examples_per_second"],
    )
    fresh = evaluate_adapter(
        workspace["model"],
        out / "adapter",
        {"val": workspace["val"]},
        {"val": workspace["root"] / "fresh"},
        ev,
        "x",
        {},
    )
    assert reused["val"]["provenance"]["config"]["scored_by"] == "training's final validation pass"
    assert "scored_by" not in fresh["val"]["provenance"]["config"]
    a = pd.read_csv(workspace["root"] / "reused" / "predictions.csv")
    b = pd.read_csv(workspace["root"] / "fresh" / "predictions.csv")
    columns = [f"loglik_{label}" for label in LABELS]
    assert np.allclose(a[columns], b[columns], atol=1e-4)
    assert a["predicted"].tolist() == b["predicted"].tolist()
    assert a["predicted_vocab"].fillna("").tolist() == b["predicted_vocab"].fillna("").tolist()
    # Scores of another split's prompts are not taken for the val split.
    other = workspace["root"] / "other.jsonl"
    write_jsonl(other, rows(6, start=200))
    again = evaluate_adapter(
        workspace["model"],
        out / "adapter",
        {"val": other},
        {"val": workspace["root"] / "o"},
        ev,
        "x",
        {},
        val_scores=out / "val_scores.csv",
    )
    assert "scored_by" not in again["val"]["provenance"]["config"]
