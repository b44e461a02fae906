"""PEFT LoRA on the attention and MLP projections; options add the input embedding and the LM
head to the targets."""

from __future__ import annotations

from adaptune.approaches.base import Approach
from adaptune.approaches.lora import all_linear_targets, lora_config


def peft_config(model, settings, entry: dict):
    return lora_config(model, settings, entry, all_linear_targets(model, settings, entry))


APPROACH = Approach(
    name="lora_all",
    label="LoRA, all linear layers",
    colour="#0173b2",
    peft_config=peft_config,
    uses_lora=True,
)
