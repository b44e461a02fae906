"""Adapters: what each approach trains, standard PEFT folders, and loading them back (with and
without adaptune), on tiny GPT-J and Llama models built in the test."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import pytest
import torch

from tiny_model import build_tiny_model

from adaptune.approaches import adapters
from adaptune.core.io import write_json
from adaptune.lm.models import count_parameters, load_model
from adaptune.train.run import LoraSettings, TrainSettings

pytestmark = pytest.mark.usefixtures("one_thread")

LABELS = ("hate", "offensive", "neutral")
TEMPLATE = "Classify the tweet as one of: {labels}.\n\nTweet: {text}\nCategory:"
ENTRIES = {
    "gptj": {
        "name": "tiny-gptj",
        "source": "local",
        "path": "",
        "attention_modules": ["q_proj", "k_proj", "v_proj", "out_proj"],
        "mlp_modules": ["fc_in", "fc_out"],
    },
    "llama": {
        "name": "tiny-llama",
        "source": "local",
        "path": "",
        "attention_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
        "mlp_modules": ["gate_proj", "up_proj", "down_proj"],
    },
}


@dataclass(frozen=True)
class ReferenceLora(LoraSettings):
    """LoRA settings with the reference study's options (config keys
    training.approaches.*.lora.*)."""

    lm_head: bool | None = None
    norms: bool | None = None
    biases: bool | None = None


@dataclass(frozen=True)
class ReferenceSettings(TrainSettings):
    """Training settings with layernorm's `biases` option (training.approaches.layernorm.biases)."""

    biases: bool | None = None


def settings(approach, quantization="none", **overrides):
    values = dict(
        approach=approach,
        learning_rate=1e-3,
        epochs=1,
        quantization=quantization,
        lora=None if approach == "layernorm" else LoraSettings(),
        labels=LABELS,
        template=TEMPLATE,
        max_length=64,
    )
    values.update(overrides)
    return ReferenceSettings(**values)


REFERENCE_LAYERNORM = dict(approach="layernorm", biases=True)
REFERENCE_LORA_ALL = dict(
    approach="lora_all",
    lora=ReferenceLora(
        r=2, alpha=4, dropout=0.0, embedding=True, lm_head=True, norms=True, biases=True
    ),
)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny models of two blocks, as COUNTS were recorded on, prepared (adaptune_model.json)."""
    root = tmp_path_factory.mktemp("adapters")
    prepared = {}
    for arch in ("gptj", "llama"):
        directory = build_tiny_model(root / "models" / arch, arch, layers=2)
        write_json(directory / "adaptune_model.json", {**ENTRIES[arch], "path": str(directory)})
        prepared[arch] = directory
    return prepared


def trainable_count(model_dir, arch, s):
    model, _ = load_model(model_dir, s.quantization)
    return count_parameters(adapters.make_trainable(model, s, ENTRIES[arch]), trainable_only=True)


# The counts each approach trained (on two-block models) before the approaches became PEFT
# configs.
COUNTS = {
    ("gptj", "layernorm", False): 384,
    ("gptj", "lora_attention", False): 8192,
    ("gptj", "lora_all", False): 18432,
    ("gptj", "lora_all", True): 22144,
    ("llama", "layernorm", False): 320,
    ("llama", "lora_attention", False): 7168,
    ("llama", "lora_all", False): 16384,
    ("llama", "lora_all", True): 20096,
}


@pytest.mark.parametrize("quantization", ["none", "8bit"])
@pytest.mark.parametrize("arch, approach, embedding", sorted(COUNTS))
def test_trainable_counts_are_unchanged(models, arch, approach, embedding, quantization):
    lora = None if approach == "layernorm" else LoraSettings(embedding=embedding)
    s = settings(approach, quantization, lora=lora)
    assert trainable_count(models[arch], arch, s) == COUNTS[(arch, approach, embedding)]


def independent_counts(model):
    """Sizes computed from the model's modules, without PEFT: norms, Linear biases, r=2 LoRA
    (r * (in + out) per Linear, r * (vocab + hidden) for the embedding)."""
    norms = sum(p.numel() for m in model.modules() if adapters.is_norm(m) for p in m.parameters())
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    biases = sum(m.bias.numel() for m in linears if m.bias is not None)
    lora = sum(2 * (m.in_features + m.out_features) for m in linears)
    embedding = model.get_input_embeddings()
    lora += 2 * (embedding.num_embeddings + embedding.embedding_dim)
    return norms, biases, lora


@pytest.mark.parametrize("quantization", ["none", "8bit"])
def test_reference_trainable_sets_match_an_independent_count(models, quantization):
    plain, _ = load_model(models["gptj"], "none")
    norms, biases, lora = independent_counts(plain)
    assert (
        isinstance(plain.lm_head, torch.nn.Linear) and biases > 0
    )  # GPT-J's MLP and head have biases
    layernorm = settings(quantization=quantization, **REFERENCE_LAYERNORM)
    assert trainable_count(models["gptj"], "gptj", layernorm) == norms + biases
    lora_all = settings(quantization=quantization, **REFERENCE_LORA_ALL)
    assert trainable_count(models["gptj"], "gptj", lora_all) == lora + norms + biases


def perturbed(model_dir, arch, s, seed=1):
    """The adapter of `s` on the base with every trainable parameter moved off its start, so a
    load that dropped any of them would show."""
    model, _ = load_model(model_dir, s.quantization)
    model = adapters.make_trainable(model, s, ENTRIES[arch])
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.05 * torch.randn(param.shape, generator=generator))
    return model.eval()


INPUT = torch.tensor([[5, 17, 33, 90, 120, 7, 250, 3]])

CASES = {
    "layernorm": dict(approach="layernorm"),
    "lora_attention": dict(approach="lora_attention"),
    "lora_all": dict(approach="lora_all", lora=LoraSettings(embedding=True)),
    "reference_lora_all": REFERENCE_LORA_ALL,
}


@pytest.mark.parametrize("arch", ["gptj", "llama"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_saved_adapter_is_a_standard_peft_folder(models, tmp_path, arch, case):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    s = settings(**CASES[case])
    trained = perturbed(models[arch], arch, s)
    folder = tmp_path / "adapter"
    adapters.save_adapter(
        trained, s, models[arch], folder, {label: " " + label for label in LABELS}
    )
    assert (folder / "adapter_config.json").is_file() and (
        folder / "adapter_model.safetensors"
    ).is_file()
    assert not (folder / adapters.LINEAR_BIASES_FILE).exists()

    # plain transformers + plain PEFT, no adaptune
    base = AutoModelForCausalLM.from_pretrained(models[arch], dtype=torch.float32)
    plain = PeftModel.from_pretrained(base, str(folder)).eval()
    loaded, _, record = adapters.load_trained(folder)
    fresh, _ = load_model(models[arch], "none")
    with torch.no_grad():
        expected = trained(input_ids=INPUT).logits
        assert torch.allclose(plain(input_ids=INPUT).logits, expected, atol=1e-5)
        assert torch.allclose(loaded(input_ids=INPUT).logits, expected, atol=1e-5)
        assert not torch.allclose(fresh(input_ids=INPUT).logits, expected, atol=1e-3)
    assert record["approach"] == s.approach and record["labels"] == list(LABELS)
    assert record["template"] == TEMPLATE and record["max_length"] == 64
    assert record["truncation_side"] == "left" and record["precision"] == s.precision
    assert (
        record["base_model"] == ENTRIES[arch]["name"]
        and len(record["base_model_config_hash"]) == 64
    )


def test_layernorm_with_biases_keeps_them_beside_the_peft_folder(models, tmp_path):
    """PEFT's LN tuning cannot hold the Linear biases: plain PEFT loads the norms, adaptune both."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    s = settings(**REFERENCE_LAYERNORM)
    trained = perturbed(models["gptj"], "gptj", s)
    folder = tmp_path / "adapter"
    adapters.save_adapter(trained, s, models["gptj"], folder, {})
    assert (folder / adapters.LINEAR_BIASES_FILE).is_file()
    loaded, _, _ = adapters.load_trained(folder)
    base = AutoModelForCausalLM.from_pretrained(models["gptj"], dtype=torch.float32)
    plain = PeftModel.from_pretrained(base, str(folder)).eval()
    with torch.no_grad():
        expected = trained(input_ids=INPUT).logits
        assert torch.allclose(loaded(input_ids=INPUT).logits, expected, atol=1e-5)
        assert not torch.allclose(plain(input_ids=INPUT).logits, expected, atol=1e-3)


def test_base_model_found_from_the_record_after_a_move(models, tmp_path):
    s = settings("lora_attention")
    trained = perturbed(models["gptj"], "gptj", s)
    project = tmp_path / "project"
    shutil.copytree(models["gptj"], project / "models" / "gptj")
    adapters.save_adapter(
        trained, s, project / "models" / "gptj", project / "results" / "adapter", {}
    )
    moved = tmp_path / "moved"
    shutil.move(project, moved)
    loaded, _, record = adapters.load_trained(moved / "results" / "adapter")
    assert record["base_model_dir"] == "../../models/gptj"
    assert record["model_dir"] == str((moved / "models" / "gptj").resolve())
    with torch.no_grad():
        assert torch.allclose(
            loaded(input_ids=INPUT).logits, trained(input_ids=INPUT).logits, atol=1e-5
        )


def test_a_missing_base_is_named_with_both_paths(models, tmp_path):
    s = settings("lora_attention")
    folder = tmp_path / "results" / "adapter"
    adapters.save_adapter(perturbed(models["gptj"], "gptj", s), s, models["gptj"], folder, {})
    record = adapters.read_record(folder)
    record["base_model_dir"] = "../models/elsewhere"
    write_json(folder / adapters.ADAPTER_FILE, record)
    with pytest.raises(
        ValueError,
        match=r"'tiny-gptj' was recorded at \.\./models/elsewhere.*holds no prepared model",
    ):
        adapters.load_trained(folder)
    # an explicit base still works
    model, _, _ = adapters.load_trained(folder, models["gptj"])
    assert not model.training


def test_a_corrupt_record_is_named(tmp_path):
    (tmp_path / adapters.ADAPTER_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"adaptune_adapter\.json: not valid JSON"):
        adapters.read_record(tmp_path)


def test_the_approaches_do_not_import_lightning():
    import subprocess
    import sys

    code = (
        "import sys, adaptune.approaches.adapters, adaptune.cli; "
        "print('pytorch_lightning' in sys.modules, 'lightning' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]
