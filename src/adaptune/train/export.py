"""Merge a trained adapter into its base and save a plain transformers model folder.

`export_model` loads the base unquantized (a merge into int8/NF4 weights would round the
adapter away), puts the adapter on it and lets PEFT fold it in (`merge_and_unload`): LoRA's
low-rank product is added to each target weight, LN tuning's tuned norm copies replace the
norms, norms kept beside LoRA (`modules_to_save`) replace theirs, and trained biases (LoRA's
`bias="all"`, or the layernorm approach's linear_biases.safetensors, which `load_trained` puts
back) are the model's own parameters already. The result is saved in float32 or bfloat16 with
the tokenizer and the adapter record (adaptune_adapter.json,
with an `exported` section), so that

    AutoModelForCausalLM.from_pretrained(folder)

alone gives the trained classifier, and `adaptune predict --adapter folder` reads it directly.
A classification head (adaptune.approaches.head) is exported as a sequence classifier with its
labels as id2label: `AutoModelForSequenceClassification.from_pretrained(folder)`.
"""

from __future__ import annotations

import os
from pathlib import Path

from adaptune.approaches.adapters import (
    ADAPTER_FILE,
    AdapterError,
    is_exported,
    load_trained,
    norms_accepted,
    read_record,
)
from adaptune.core.io import atomic_dir, write_json

DTYPES = ("float32", "bfloat16")


def export_model(
    adapter_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    dtype: str = "float32",
    model_dir: str | os.PathLike | None = None,
) -> Path:
    """Write the adapter in `adapter_dir` merged into its base (default: the recorded one) to
    `out_dir`, whole or not at all; returns out_dir."""
    import torch

    if dtype not in DTYPES:
        raise ValueError(f"dtype: got {dtype!r}, expected one of {list(DTYPES)}")
    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    if is_exported(adapter_dir):
        raise AdapterError(f"{adapter_dir}: already an exported model, not an adapter folder")
    record = read_record(adapter_dir)
    # Unquantized, on the CPU, in the saved dtype: the merge adds the adapter to unrounded
    # weights, and host memory holds the base once at that size (GPT-J-6B: about 24 GB in
    # float32, 12 GB in bfloat16).
    model, tokenizer, _ = load_trained(
        adapter_dir, model_dir, quantization="none", device="cpu", dtype=getattr(torch, dtype)
    )
    with norms_accepted(), torch.no_grad():
        merged = model.merge_and_unload()
    merged = merged.to(getattr(torch, dtype))
    # Only an earlier export is replaced: never the working directory, an adapter or a model.
    with atomic_dir(out_dir, replaceable=is_exported) as tmp:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        exported = {
            "from_adapter": str(adapter_dir.resolve()),
            "dtype": dtype,
            "trained_quantization": record.get("quantization"),
        }
        # The base is inside the folder now: the record no longer points to one.
        write_json(
            tmp / ADAPTER_FILE,
            {
                **{k: v for k, v in record.items() if k != "base_model_dir"},
                "quantization": "none",
                "exported": exported,
            },
        )
    return out_dir
