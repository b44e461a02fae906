"""The `adaptune` command line: version, help, python -m, stdin, the base model from the
adapter's record, exit codes and the progress bar, on an adapter saved on a tiny model."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adaptune import __version__
from adaptune.cli import PROGRESS_MIN_TEXTS, main
from adaptune.core.io import write_json
from adaptune.train.run import LoraSettings, TrainSettings

pytestmark = pytest.mark.usefixtures("one_thread")

LABELS = ("hate", "offensive", "neutral")
TEMPLATE = "Classify the tweet as one of: {labels}.\n\nTweet: {text}\nCategory:"
TEXTS = ["you stupid idiot", "lovely weather today", "those people are vermin"]
ENTRY = {
    "name": "tiny-gptj",
    "source": "local",
    "path": "",
    "attention_modules": ["q_proj", "v_proj"],
    "mlp_modules": ["fc_in"],
}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def adapter(tiny_gptj, tmp_path_factory):
    """A LoRA adapter (its B matrices moved off zero, so it changes the model) saved beside a
    prepared copy of the tiny GPT-J: project/models/tiny-gptj and project/results/adapter."""
    import torch

    from adaptune.approaches import adapters
    from adaptune.lm.models import load_model

    project = tmp_path_factory.mktemp("cli")
    model_dir = project / "models" / "tiny-gptj"
    shutil.copytree(tiny_gptj, model_dir)
    write_json(model_dir / "adaptune_model.json", {**ENTRY, "path": str(model_dir)})
    settings = TrainSettings(
        approach="lora_attention",
        learning_rate=1e-3,
        epochs=1,
        lora=LoraSettings(),
        quantization="none",
        template=TEMPLATE,
        labels=LABELS,
        max_length=64,
    )
    model, _ = load_model(model_dir, "none")
    model = adapters.make_trainable(model, settings, ENTRY)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.05, generator=torch.Generator().manual_seed(0))
    folder = project / "results" / "adapter"
    adapters.save_adapter(
        model, settings, model_dir, folder, {label: " " + label for label in LABELS}
    )
    return folder, model_dir


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def rows(out):
    return [line.split("\t") for line in out.strip().split("\n")[1:]]


def test_base_model_comes_from_the_adapter_record(adapter, capsys):
    folder, model_dir = adapter
    code, recorded, err = run(["predict", "--adapter", str(folder), *TEXTS], capsys)
    assert code == 0, err
    code, explicit, err = run(
        ["predict", "--adapter", str(folder), "--model-dir", str(model_dir), *TEXTS], capsys
    )
    assert code == 0, err
    assert recorded == explicit and len(rows(recorded)) == 3


def test_file_dash_reads_stdin(adapter, monkeypatch, capsys):
    folder, _ = adapter
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(TEXTS) + "\n\n"))
    code, from_stdin, err = run(["predict", "--adapter", str(folder), "--file", "-"], capsys)
    assert code == 0, err
    code, from_args, _ = run(["predict", "--adapter", str(folder), *TEXTS], capsys)
    assert from_stdin == from_args
    assert [row[-1] for row in rows(from_stdin)] == TEXTS


def test_version():
    result = subprocess.run(
        [sys.executable, "-m", "adaptune", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert result.returncode == 0 and result.stdout.strip() == f"adaptune {__version__}"


def test_python_dash_m_runs_predict(adapter):
    folder, _ = adapter
    result = subprocess.run(
        [sys.executable, "-m", "adaptune", "predict", "--adapter", str(folder), TEXTS[0]],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.strip().split("\n")
    assert header.split("\t")[0] == "predicted" and row.split("\t")[0] in LABELS


def test_help_shows_examples(capsys):
    for argv in (["--help"], ["predict", "--help"]):
        with pytest.raises(SystemExit) as exit:
            main(argv)
        assert exit.value.code == 0
        out = capsys.readouterr().out
        assert "examples:" in out and "adaptune predict --adapter" in out and "--file -" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "--adapter", "{adapter}"], "no input"),
        (["predict", "--adapter", "{adapter}", "--file", "x.txt", "a text"], "not both"),
        (
            ["predict", "--adapter", "{adapter}", "--batch-size", "0", "a text"],
            "--batch-size must be at least 1",
        ),
        (["predict", "--adapter", "{root}/nowhere", "a text"], "no such adapter directory"),
        (
            ["predict", "--adapter", "{adapter}", "--model-dir", "{root}", "a text"],
            "not a prepared model directory",
        ),
    ],
)
def test_usage_errors_exit_2(adapter, capsys, argv, message):
    folder, _ = adapter
    argv = [a.format(adapter=folder, root=folder.parent) for a in argv]
    code, out, err = run(argv, capsys)
    assert code == 2 and out == ""
    assert err.startswith("adaptune predict: error:") and message in err


def test_malformed_command_line_exits_2(capsys):
    for argv in (["predict", "--no-such-option"], ["predict", "--model-dir", "m", "text"], []):
        with pytest.raises(SystemExit) as exit:
            main(argv)
        assert exit.value.code == 2
    assert "--adapter" in capsys.readouterr().err


@pytest.mark.parametrize(
    "case, message",
    [
        ("not an adapter", "not an adaptune adapter"),
        ("unreadable csv", "no 'text' column"),
        ("missing file", "no such file"),
        ("moved base", "holds no prepared model"),
    ],
)
def test_runtime_failures_exit_1(adapter, tmp_path, capsys, case, message):
    folder, _ = adapter
    argv = ["predict", "--adapter", str(folder)]
    if case == "not an adapter":
        argv = ["predict", "--adapter", str(tmp_path), "a text"]
    elif case == "unreadable csv":
        (tmp_path / "bad.csv").write_text("tweet\nhello\n", encoding="utf-8")
        argv += ["--file", str(tmp_path / "bad.csv")]
    elif case == "missing file":
        argv += ["--file", str(tmp_path / "absent.txt")]
    elif case == "moved base":
        copy = tmp_path / "lonely" / "adapter"
        shutil.copytree(folder, copy)
        argv = ["predict", "--adapter", str(copy), "a text"]
    code, out, err = run(argv, capsys)
    assert code == 1 and out == ""
    assert err.startswith("adaptune predict: error:") and message in err and "Traceback" not in err


def test_debug_shows_the_traceback_of_an_input_error(adapter, tmp_path, capsys):
    folder, _ = adapter
    for flag in ("--debug", "-v"):
        code, out, err = run(
            ["predict", flag, "--adapter", str(folder), "--file", str(tmp_path / "absent.txt")],
            capsys,
        )
        assert code == 1 and "Traceback" in err and err.rstrip().endswith("no such file")


def test_an_error_that_is_no_input_error_keeps_its_traceback(adapter, monkeypatch):
    """A ValueError from inside a library (here: the scorer) is a bug, not bad input: it is not
    turned into a one-line message."""
    import adaptune.lm.scoring

    def broken(*args, **kwargs):
        raise ValueError("a bug deep in a library")

    monkeypatch.setattr(adaptune.lm.scoring, "score_with_vocab", broken)
    with pytest.raises(ValueError, match="a bug deep in a library"):
        main(["predict", "--adapter", str(adapter[0]), "a text"])


def test_progress_bar_only_on_a_terminal_and_for_large_inputs(
    adapter, tmp_path, monkeypatch, capsys
):
    folder, _ = adapter
    many = tmp_path / "many.txt"
    many.write_text(
        "\n".join(f"{TEXTS[i % 3]} {i}" for i in range(PROGRESS_MIN_TEXTS)) + "\n", encoding="utf-8"
    )
    few = ["predict", "--adapter", str(folder), *TEXTS]
    large = ["predict", "--adapter", str(folder), "--file", str(many), "--batch-size", "32"]

    code, _, err = run(large, capsys)  # stderr captured: not a terminal
    assert (
        code == 0
        and "text/s" not in err
        and f"{PROGRESS_MIN_TEXTS}/{PROGRESS_MIN_TEXTS}" not in err
    )

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    code, out, err = run(large, capsys)
    assert code == 0 and f"{PROGRESS_MIN_TEXTS}/{PROGRESS_MIN_TEXTS}" in err
    assert len(rows(out)) == PROGRESS_MIN_TEXTS
    code, _, err = run(few, capsys)
    assert code == 0 and "/3" not in err


# --- the same adapter evaluated as the pipeline does ---------------------------------------------


def test_metrics_carry_the_training_seed_and_predictions_say_their_scores_are_log_likelihoods(
    adapter, tmp_path
):
    """A fine-tuned system's metrics.json carries its training seed; its predictions.csv says
    its scores are log-likelihoods (loglik_<label>)."""
    import json

    import pandas as pd

    from adaptune.evaluate.run import EvaluationSettings, evaluate_adapter
    from adaptune.core.io import write_jsonl
    from adaptune.data.prompts import completion, render

    folder, model_dir = adapter
    texts = ["you stupid idiot", "lovely weather today", "those people are vermin"]
    write_jsonl(
        tmp_path / "test.jsonl",
        [
            {
                "id": str(i),
                "text": text,
                "prompt": render(TEMPLATE, text, list(LABELS)),
                "completion": completion(label),
                "label": label,
            }
            for i, (text, label) in enumerate(zip(texts, LABELS))
        ],
    )
    name = "tiny-gptj/lora_attention/instruction/none/seed42"
    evaluate_adapter(
        model_dir,
        folder,
        {"test": tmp_path / "test.jsonl"},
        {"test": tmp_path / "eval"},
        EvaluationSettings(batch_size=2, bootstrap_samples=100),
        name=name,
        config_section={},
    )
    record = json.loads((folder / "adaptune_adapter.json").read_text())
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["system"]["seed"] == record["settings"]["seed"] == 42
    predictions = pd.read_csv(tmp_path / "eval" / "predictions.csv")
    columns = [f"loglik_{label}" for label in LABELS]
    assert [
        c for c in predictions.columns if c.startswith(("loglik_", "prob_", "score_"))
    ] == columns
    assert (predictions[columns].to_numpy() < 0).all()  # log-likelihoods of a probability below 1
