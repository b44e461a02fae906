"""`adaptune predict` on an adapter trained for a few steps on a tiny model."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from adaptune.cli import main
from adaptune.core.io import write_jsonl
from adaptune.data.prompts import completion, render

LABELS = ["hate", "offensive", "neutral"]
TEMPLATE = "Classify the tweet as one of: {labels}.\n\nTweet: {text}\nCategory:"
TEXTS = ["you stupid idiot", "lovely weather today", "those people are vermin"]
ADAPTUNE = shutil.which("adaptune") or os.path.join(os.path.dirname(sys.executable), "adaptune")


pytestmark = pytest.mark.usefixtures("one_thread")


def prompt_records(n):
    words = {
        "hate": "those people are vermin",
        "offensive": "you stupid idiot",
        "neutral": "lovely weather",
    }
    return [
        {
            "id": f"{label}-{i}",
            "text": f"{words[label]} {i}",
            "prompt": render(TEMPLATE, f"{words[label]} {i}", LABELS),
            "completion": completion(label),
            "label": label,
        }
        for i in range(n)
        for label in LABELS
    ]


def prepared(source, name, out):
    from adaptune.lm.prepare import prepare_model

    return prepare_model(
        {
            "name": name,
            "source": "local",
            "path": str(source),
            "attention_modules": ["q_proj", "v_proj"],
            "mlp_modules": ["fc_in"],
        },
        out,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_gptj):
    from adaptune.train.run import LoraSettings, TrainSettings, train

    root = tmp_path_factory.mktemp("predict")
    model_dir = prepared(tiny_gptj, "tiny-gptj", root / "models" / "tiny-gptj")
    write_jsonl(root / "train.jsonl", prompt_records(4))
    write_jsonl(root / "val.jsonl", prompt_records(2))
    settings = TrainSettings(
        approach="lora_attention",
        learning_rate=1e-3,
        epochs=1,
        batch_size=4,
        lora=LoraSettings(),
        quantization="none",
        template=TEMPLATE,
        labels=tuple(LABELS),
        max_length=64,
        max_steps=2,
        validate_first=False,
        model={"name": "tiny-gptj"},
        precision="32-true",
    )
    out = root / "train" / "tiny-gptj" / "lora_attention" / "instruction"
    train(settings, root / "train.jsonl", root / "val.jsonl", model_dir, out)
    return model_dir, out / "adapter", root


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_three_texts(trained, capsys):
    model_dir, adapter, _ = trained
    code, out, err = run(
        ["predict", "--model-dir", str(model_dir), "--adapter", str(adapter), *TEXTS], capsys
    )
    assert code == 0, err
    lines = out.strip().split("\n")
    assert lines[0].split("\t") == [
        "predicted",
        "prob_hate",
        "prob_offensive",
        "prob_neutral",
        "text",
    ]
    assert len(lines) == 4
    for line, text in zip(lines[1:], TEXTS):
        predicted, *probs, echoed = line.split("\t")
        assert predicted in LABELS and echoed == text
        probs = [float(p) for p in probs]
        assert sum(probs) == pytest.approx(1.0, abs=1e-3)
        assert LABELS[int(np.argmax(probs))] == predicted


def test_five_hundred_line_file_to_csv(trained, capsys):
    model_dir, adapter, root = trained
    lines = [f"{TEXTS[i % 3]} number {i}" for i in range(500)]
    (root / "texts.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = root / "out.csv"
    code, _, err = run(
        [
            "predict",
            "--model-dir",
            str(model_dir),
            "--adapter",
            str(adapter),
            "--file",
            str(root / "texts.txt"),
            "--batch-size",
            "64",
            "--output",
            str(output),
        ],
        capsys,
    )
    assert code == 0, err
    frame = pd.read_csv(output, dtype={"text": str})
    assert len(frame) == 500 and frame["text"].tolist() == lines
    assert frame["predicted"].isin(LABELS).all()
    probs = frame[[f"prob_{label}" for label in LABELS]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # The same texts through a CSV with a text column give the same answers.
    pd.DataFrame({"id": range(3), "text": lines[:3]}).to_csv(root / "texts.csv", index=False)
    code, out, err = run(
        [
            "predict",
            "--model-dir",
            str(model_dir),
            "--adapter",
            str(adapter),
            "--file",
            str(root / "texts.csv"),
        ],
        capsys,
    )
    assert code == 0, err
    assert [line.split("\t")[0] for line in out.strip().split("\n")[1:]] == frame["predicted"][
        :3
    ].tolist()


def test_stdin(trained, monkeypatch, capsys):
    import io

    model_dir, adapter, _ = trained
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(TEXTS) + "\n"))
    code, out, err = run(
        ["predict", "--model-dir", str(model_dir), "--adapter", str(adapter), "-"], capsys
    )
    assert code == 0, err
    assert len(out.strip().split("\n")) == 4


@pytest.mark.parametrize(
    "case, message",
    [
        ("no input", "no input"),
        ("empty file", "no texts"),
        ("csv without text", "no 'text' column"),
        ("missing adapter", "no such adapter directory"),
        ("not an adapter", "not an adaptune adapter"),
        ("other base model", "was trained on base model 'tiny-gptj'"),
    ],
)
def test_bad_input_exits_non_zero_with_a_clear_message(trained, tiny_llama, capsys, case, message):
    model_dir, adapter, root = trained
    argv = ["predict", "--model-dir", str(model_dir), "--adapter", str(adapter)]
    if case == "no input":
        pass
    elif case == "empty file":
        (root / "empty.txt").write_text("\n\n", encoding="utf-8")
        argv += ["--file", str(root / "empty.txt")]
    elif case == "csv without text":
        pd.DataFrame({"tweet": ["a", "b"]}).to_csv(root / "bad.csv", index=False)
        argv += ["--file", str(root / "bad.csv")]
    elif case == "missing adapter":
        argv[4] = str(root / "nowhere")
        argv += TEXTS
    elif case == "not an adapter":
        (root / "empty-dir").mkdir(exist_ok=True)
        argv[4] = str(root / "empty-dir")
        argv += TEXTS
    elif case == "other base model":
        other = root / "models" / "tiny-llama"
        if not other.exists():
            prepared(tiny_llama, "tiny-llama", other)
        argv[2] = str(other)
        argv += TEXTS
    code, out, err = run(argv, capsys)
    assert code != 0
    assert message in err and err.startswith("adaptune predict: error:")
    assert out == ""


def test_console_script_reports_errors(tmp_path):
    assert os.path.exists(ADAPTUNE), (
        "the adaptune console script is not installed (pip install -e .)"
    )
    result = subprocess.run(
        [ADAPTUNE, "predict", "--model-dir", str(tmp_path), "--adapter", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "adaptune predict: error: no input" in result.stderr


def test_jsonl_from_a_tweet_column_on_the_cpu(trained, capsys):
    """The dataset's own file names its column `tweet`; programs read one JSON object a line."""
    import json

    model_dir, adapter, root = trained
    pd.DataFrame({"count": [3, 3, 3], "tweet": TEXTS}).to_csv(root / "tweets.csv", index=False)
    base = [
        "predict",
        "--model-dir",
        str(model_dir),
        "--adapter",
        str(adapter),
        "--file",
        str(root / "tweets.csv"),
        "--text-column",
        "tweet",
        "--device",
        "cpu",
    ]
    code, out, err = run(base + ["--format", "jsonl"], capsys)
    assert code == 0, err
    records = [json.loads(line) for line in out.strip().split("\n")]
    assert [r["text"] for r in records] == TEXTS
    code, table, err = run(base, capsys)
    assert code == 0, err
    for record, line in zip(records, table.strip().split("\n")[1:]):
        predicted, *probs, _ = line.split("\t")
        assert record["label"] == predicted and list(record["probabilities"]) == LABELS
        assert [round(p, 4) for p in record["probabilities"].values()] == pytest.approx(
            [float(p) for p in probs], abs=1e-4
        )
    code, _, err = run(base + ["--format", "jsonl", "--output", str(root / "out.jsonl")], capsys)
    assert code == 0, err
    assert [json.loads(line) for line in (root / "out.jsonl").read_text().splitlines()] == records


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--device", "gpu"], "expected cpu, cuda or cuda:N"),
        (["--format", "xml"], "invalid choice"),
    ],
)
def test_bad_device_or_format_is_a_usage_error(trained, capsys, argv, message):
    model_dir, adapter, _ = trained
    with pytest.raises(SystemExit) as exit:
        main(["predict", "--adapter", str(adapter), *argv, TEXTS[0]])
    assert exit.value.code == 2 and message in capsys.readouterr().err


def test_a_cuda_device_the_machine_lacks_is_refused(trained, capsys):
    import torch

    model_dir, adapter, _ = trained
    code, _, err = run(
        [
            "predict",
            "--adapter",
            str(adapter),
            "--device",
            f"cuda:{torch.cuda.device_count()}",
            TEXTS[0],
        ],
        capsys,
    )
    assert code == 2 and "CUDA device(s)" in err


@pytest.mark.parametrize("form", ["tsv", "csv", "jsonl"])
def test_every_format_goes_to_the_output_file(trained, tmp_path, capsys, form):
    model_dir, adapter, _ = trained
    target = tmp_path / f"predictions.{form}"
    code, out, err = run(
        [
            "predict",
            "--model-dir",
            str(model_dir),
            "--adapter",
            str(adapter),
            "--format",
            form,
            "--output",
            str(target),
            *TEXTS,
        ],
        capsys,
    )
    assert code == 0, err
    assert out == "" and f"wrote 3 predictions to {target}" in err
    lines = target.read_text(encoding="utf-8").strip().split("\n")
    assert len(lines) == (3 if form == "jsonl" else 4)
    assert "lovely weather today" in lines[-2 if form != "jsonl" else 1]


@pytest.mark.parametrize("source", ["stdin", "file"])
def test_text_that_is_not_utf8_is_a_clear_error(trained, tmp_path, source):
    model_dir, adapter, _ = trained
    data = b"caf\xe9 \xff\xfe bad\n"
    argv = [ADAPTUNE, "predict", "--model-dir", str(model_dir), "--adapter", str(adapter)]
    if source == "file":
        (tmp_path / "texts.txt").write_bytes(data)
        argv += ["--file", str(tmp_path / "texts.txt")]
    else:
        argv += ["-"]
    result = subprocess.run(argv, input=data, capture_output=True, timeout=120)
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert stderr.startswith("adaptune predict: error:") and "not UTF-8" in stderr
    assert ("stdin" if source == "stdin" else "texts.txt") in stderr and "0xe9" in stderr


def test_predict_scores_a_bf16_base_adapter_as_evaluation_does(trained, tmp_path, capsys):
    """A bf16-base adapter is scored on a bfloat16 base in evaluation (prepare_for_inference);
    predict gives the same probabilities, not those of the float32 base."""
    import json

    from adaptune.hardware.precision import prepare_for_inference
    from adaptune.approaches.adapters import ADAPTER_FILE, load_trained
    from adaptune.lm.scoring import ScoringSettings, label_probabilities, score_labels

    model_dir, adapter, _ = trained
    bf16 = shutil.copytree(adapter, tmp_path / "adapter")
    record = json.loads((bf16 / ADAPTER_FILE).read_text())
    (bf16 / ADAPTER_FILE).write_text(json.dumps({**record, "precision": "bf16-base"}))

    def probabilities(prepare):
        model, tokenizer, meta = load_trained(bf16, model_dir, device="cpu")
        if prepare:
            prepare_for_inference(model, meta["precision"])
        settings = ScoringSettings(max_length=int(meta["max_length"]), precision=meta["precision"])
        prompts = [render(meta["template"], text, LABELS) for text in TEXTS]
        return label_probabilities(score_labels(model, tokenizer, prompts, LABELS, settings))

    code, out, err = run(
        [
            "predict",
            "--model-dir",
            str(model_dir),
            "--adapter",
            str(bf16),
            "--format",
            "jsonl",
            *TEXTS,
        ],
        capsys,
    )
    assert code == 0, err
    predicted = np.array(
        [list(json.loads(line)["probabilities"].values()) for line in out.strip().split("\n")]
    )
    np.testing.assert_allclose(predicted, probabilities(prepare=True), atol=2e-6)
    assert np.abs(predicted - probabilities(prepare=False)).max() > 1e-5


def test_the_output_is_never_the_input_file(trained, tmp_path, capsys):
    model_dir, adapter, _ = trained
    tweets = tmp_path / "tweets.csv"
    pd.DataFrame({"text": TEXTS, "note": ["keep"] * 3}).to_csv(tweets, index=False)
    before = tweets.read_bytes()
    code, out, err = run(
        [
            "predict",
            "--model-dir",
            str(model_dir),
            "--adapter",
            str(adapter),
            "--file",
            str(tweets),
            "--output",
            str(tweets),
        ],
        capsys,
    )
    assert code == 2 and "is the input file" in err
    assert tweets.read_bytes() == before
    for folder in (".", str(tmp_path)):  # a folder, the working directory included
        code, out, err = run(
            [
                "predict",
                "--model-dir",
                str(model_dir),
                "--adapter",
                str(adapter),
                "--output",
                folder,
                *TEXTS,
            ],
            capsys,
        )
        assert code == 2 and "is a folder; expected a file path" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tweets.csv"]
