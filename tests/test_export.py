"""`adaptune export`: an adapter merged into its base and saved as a plain transformers folder
scores like base + adapter when loaded by AutoModelForCausalLM alone, for LoRA (with the norms
and biases it can train beside) and for norms-only tuning with Linear biases; `predict` reads
the folder directly. The adapters hold random trained values (no training needed to test a
merge), so each differs from its base."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adaptune.approaches.adapters import load_trained, make_trainable, save_adapter
from adaptune.cli import main
from adaptune.train.export import export_model
from adaptune.lm.models import load_model, model_entry
from adaptune.lm.prepare import prepare_model
from adaptune.data.prompts import render
from adaptune.lm.scoring import ScoringSettings, score_labels
from adaptune.train.run import LoraSettings, TrainSettings

LABELS = ("hate", "offensive", "neutral")
TEMPLATE = "Classify the tweet as one of: {labels}.\n\nTweet: {text}\nCategory:"
TEXTS = ["you stupid idiot", "lovely weather today", "those people are vermin", "go away forever"]
PROMPTS = [render(TEMPLATE, text, list(LABELS)) for text in TEXTS]
SCORING = ScoringSettings(batch_size=4, max_length=64, precision="32-true")
CASES = {
    "lora_all with norms and biases": dict(
        approach="lora_all", lora=LoraSettings(r=4, alpha=8, norms=True, biases=True)
    ),
    "layernorm with biases": dict(approach="layernorm", biases=True),
}

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def base(tmp_path_factory, tiny_gptj):
    return prepare_model(
        {
            "name": "tiny-gptj",
            "source": "local",
            "path": str(tiny_gptj),
            "attention_modules": ["q_proj", "k_proj", "v_proj", "out_proj"],
            "mlp_modules": ["fc_in", "fc_out"],
        },
        tmp_path_factory.mktemp("export") / "tiny-gptj",
    )


def make_adapter(base, out, case: str):
    """An adapter of `case` whose trainable values are random (as if trained)."""
    import torch

    settings = TrainSettings(
        learning_rate=1e-3,
        epochs=1,
        quantization="none",
        labels=LABELS,
        template=TEMPLATE,
        max_length=64,
        precision="32-true",
        **CASES[case],
    )
    model, _ = load_model(base, "none", device="cpu")
    model = make_trainable(model, settings, model_entry(base))
    torch.manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.2 * torch.randn_like(param))
    save_adapter(model, settings, base, out, {label: " " + label for label in LABELS})
    return out


def scores(model, tokenizer):
    return score_labels(model, tokenizer, PROMPTS, list(LABELS), SCORING)


@pytest.mark.parametrize("case", list(CASES))
def test_exported_model_scores_like_base_plus_adapter(base, tmp_path, case):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter = make_adapter(base, tmp_path / "adapter", case)
    with_adapter = scores(*load_trained(adapter, quantization="none", device="cpu")[:2])
    assert not np.allclose(with_adapter, scores(*load_model(base, "none", device="cpu")), atol=1e-3)

    out = export_model(adapter, tmp_path / "merged")
    assert not (out / "adapter_config.json").exists()  # a plain model folder, not a PEFT one
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(out)  # transformers alone
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert not any(
        "lora" in name or "modules_to_save" in name for name, _ in model.named_parameters()
    )
    np.testing.assert_allclose(scores(model.eval(), tokenizer), with_adapter, atol=1e-4)
    record = json.loads((out / "adaptune_adapter.json").read_text())
    assert record["exported"]["dtype"] == "float32" and record["labels"] == list(LABELS)
    assert "base_model_dir" not in record


def test_bf16_export_and_predict_reads_the_folder(base, tmp_path, capsys, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM

    from adaptune.lm import models

    adapter = make_adapter(base, tmp_path / "adapter", "lora_all with norms and biases")
    loaded = []  # the base is merged in the saved dtype: host memory holds it once, at that size
    real_load = models.load_model
    monkeypatch.setattr(
        models, "load_model", lambda *a, **k: loaded.append(k.get("dtype")) or real_load(*a, **k)
    )
    code = main(
        [
            "export",
            "--adapter",
            str(adapter),
            "--output",
            str(tmp_path / "bf16"),
            "--dtype",
            "bfloat16",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "bf16").dtype == torch.bfloat16
    assert loaded == [torch.bfloat16]
    export_model(adapter, tmp_path / "fp32")
    capsys.readouterr()

    def predicted(folder):
        assert (
            main(
                [
                    "predict",
                    "--adapter",
                    str(folder),
                    "--format",
                    "jsonl",
                    "--device",
                    "cpu",
                    *TEXTS,
                ]
            )
            == 0
        )
        return [json.loads(line) for line in capsys.readouterr().out.strip().split("\n")]

    from_adapter, from_export, from_bf16 = (
        predicted(adapter),
        predicted(tmp_path / "fp32"),
        predicted(tmp_path / "bf16"),
    )
    for a, b, c in zip(from_adapter, from_export, from_bf16):
        assert a["label"] == b["label"]
        assert list(a["probabilities"].values()) == pytest.approx(
            list(b["probabilities"].values()), abs=1e-4
        )
        assert list(a["probabilities"].values()) == pytest.approx(
            list(c["probabilities"].values()), abs=0.05
        )


def test_export_refuses_what_it_cannot_merge(base, tmp_path, capsys):
    adapter = make_adapter(base, tmp_path / "adapter", "layernorm with biases")
    export_model(adapter, tmp_path / "merged")
    with pytest.raises(ValueError, match="already an exported model"):
        export_model(tmp_path / "merged", tmp_path / "again")
    assert (
        main(["export", "--adapter", str(tmp_path / "nowhere"), "--output", str(tmp_path / "x")])
        == 2
    )
    assert "no such adapter directory" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_export_never_replaces_a_folder_it_did_not_write(base, tmp_path, monkeypatch, capsys):
    """Into the working directory, the adapter's own folder or any folder holding other files,
    export refuses before writing and deletes nothing; an earlier export it replaces."""
    adapter = make_adapter(base, tmp_path / "adapter", "lora_all with norms and biases")
    adapter_files = sorted(p.name for p in adapter.iterdir())
    work = tmp_path / "work"
    work.mkdir()
    (work / "important.txt").write_text("keep me")
    monkeypatch.chdir(work)
    for output in (".", str(adapter), str(work)):
        assert main(["export", "--adapter", str(adapter), "--output", output]) == 1
        assert "expected a new" in capsys.readouterr().err
    assert (work / "important.txt").read_text() == "keep me"
    assert sorted(p.name for p in work.iterdir()) == ["important.txt"]
    assert sorted(p.name for p in adapter.iterdir()) == adapter_files

    first = export_model(adapter, tmp_path / "merged")
    again = export_model(adapter, first)  # an earlier export of ours is replaced
    assert (again / "config.json").is_file()
