"""Normalization layers only: PEFT LN tuning on every LayerNorm/RMSNorm (found by module type).

Option `biases` also trains every Linear layer's bias; PEFT's LN tuning has no option for them,
so they are freed here and written beside the PEFT folder (linear_biases.safetensors)."""

from __future__ import annotations

from adaptune.approaches.base import Approach


def peft_config(model, settings, entry: dict):
    from peft import LNTuningConfig

    from adaptune.approaches.adapters import norm_module_names

    norms = norm_module_names(model)
    if not norms:
        raise ValueError(f"model {entry.get('name')!r} has no LayerNorm/RMSNorm layers to train")
    # LN tuning trains a copy of each norm layer.
    return LNTuningConfig(target_modules=norms, task_type="CAUSAL_LM")


def free(model, settings) -> None:
    """With `biases`: every Linear bias of the base trains too (in float32)."""
    import torch

    from adaptune.approaches.adapters import linear_bias_names

    if not getattr(settings, "biases", None):
        return
    base = model.get_base_model()
    for name in linear_bias_names(base):
        param = base.get_parameter(name)
        if param.dtype != torch.float32:
            param.data = param.data.float()
        param.requires_grad = True


def save_beside(model, folder) -> None:
    from adaptune.approaches.adapters import save_linear_biases

    save_linear_biases(model, folder)


def load_beside(model, folder) -> None:
    from adaptune.approaches.adapters import load_linear_biases

    load_linear_biases(model, folder)


APPROACH = Approach(
    name="layernorm",
    label="Normalization layers only",
    colour="#cc78bc",
    peft_config=peft_config,
    free=free,
    save_beside=save_beside,
    load_beside=load_beside,
)
