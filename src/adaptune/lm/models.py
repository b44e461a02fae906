"""Base models as prepared by adaptune.lm.prepare (resources/models/{model}/, Hugging Face format,
with `adaptune_model.json`: the config entry plus its "name"): which model a folder holds, and
loading it quantized (bitsandbytes int8 or NF4) or as it is."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from adaptune.core.names import QUANTIZATIONS
from adaptune.hardware.precision import cuda_compute_dtype

ENTRY_FILE = "adaptune_model.json"
# Keys of config.json that say how a copy was written, not which model it is.
_VOLATILE_CONFIG_KEYS = {"transformers_version", "_name_or_path", "dtype", "torch_dtype"}


# ---------------------------------------------------------------------------- reading


def model_entry(model_dir: str | os.PathLike) -> dict:
    """The `models` entry (with "name") that prepared `model_dir`."""
    path = Path(model_dir) / ENTRY_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing; {model_dir} was not made by prepare_model "
            "(run the prepare_model rule)"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def model_fingerprint(model_dir: str | os.PathLike) -> dict:
    """What identifies a base model: its name and a hash of its architecture config."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing; {model_dir} is not a model in Hugging Face format"
        )
    config = json.loads(path.read_text(encoding="utf-8"))
    stable = {k: v for k, v in config.items() if k not in _VOLATILE_CONFIG_KEYS}
    digest = hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()
    return {"base_model": model_entry(model_dir).get("name"), "base_model_config_hash": digest}


# ---------------------------------------------------------------------------- loading


def quantization_config(quantization: str, compute_dtype=None):
    """transformers' BitsAndBytesConfig for "8bit" (int8) or "4bit" (NF4); None for "none"."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"quantization: got {quantization!r}, expected one of {list(QUANTIZATIONS)}"
        )
    if quantization == "none":
        return None
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute_dtype
    )


def load_model(
    model_dir: str | os.PathLike, quantization: str = "8bit", dtype=None, device: str | None = None
):
    """Load (model, tokenizer) from a prepared directory.

    quantization: "8bit" (bitsandbytes int8 Linear layers), "4bit" (NF4) or "none".
    dtype: of the weights that are not quantized (norms, embeddings, lm_head); default float32,
    which is what training upcasts them to anyway. device: "cpu", "cuda" or "cuda:N"; default the
    first visible GPU when there is one (adaptune.hardware.devices narrows what is visible to
    the job's own), else the CPU (bitsandbytes' CPU backend). The tokenizer pads on the left, so a
    batch's last position is every row's last token, and always has a pad token.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # bitsandbytes warns on every int8 matmul that it casts its input to fp16.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{model_dir}: not a model directory (no config.json); run prepare_model"
        )
    dtype = dtype or torch.float32
    device = device or ("cuda:0" if torch.cuda.is_available() else "cpu")
    device = "cuda:0" if device == "cuda" else device  # device_map wants an index
    cuda = device.startswith("cuda")
    # NF4 computes in bf16 on a GPU with native bf16, fp16 below compute capability 8.0.
    compute_dtype = cuda_compute_dtype() if cuda and dtype == torch.float32 else dtype
    model = AutoModelForCausalLM.from_pretrained(
        model_dir,
        dtype=dtype,
        quantization_config=quantization_config(quantization, compute_dtype),
        device_map={"": torch.device(device)} if cuda else "cpu",
    )
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    tokenizer.truncation_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def count_parameters(model, trainable_only: bool = False) -> int:
    """Parameters by element, each shared tensor once. An int8 weight (bitsandbytes Int8Params)
    holds one element per weight, so its numel is the true count; an NF4 weight (Params4bit) packs
    two per byte, so its count comes from the shape it was quantized from."""
    total = 0
    for param in model.parameters():
        if trainable_only and not param.requires_grad:
            continue
        if param.__class__.__name__ == "Params4bit":
            state = getattr(param, "quant_state", None)
            total += int(_prod(state.shape)) if state is not None else param.numel() * 2
        else:
            total += param.numel()
    return total


def _prod(shape) -> int:
    result = 1
    for size in shape:
        result *= int(size)
    return result
