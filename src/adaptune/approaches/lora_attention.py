"""PEFT LoRA on the attention projections (the model entry's attention_modules)."""

from __future__ import annotations

from adaptune.approaches.base import Approach
from adaptune.approaches.lora import lora_config


def peft_config(model, settings, entry: dict):
    return lora_config(model, settings, entry, list(entry["attention_modules"]))


def check(settings) -> None:
    if settings.lora.embedding:
        raise ValueError(
            "training settings: lora.embedding: got True, expected false for "
            "lora_attention (lora_all only)"
        )


APPROACH = Approach(
    name="lora_attention",
    label="LoRA, attention layers",
    colour="#029e73",
    peft_config=peft_config,
    uses_lora=True,
    check=check,
)
