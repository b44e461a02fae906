"""The PEFT LoRA config the LoRA approaches share; each names its own target modules."""

from __future__ import annotations


def lora_config(
    model,
    settings,
    entry: dict,
    targets: list[str],
    task_type: str = "CAUSAL_LM",
    save: list[str] | None = None,
):
    """LoraConfig on `targets` (full module names) with settings.lora's rank, alpha, dropout and
    options: `norms` keeps the normalization layers trainable beside LoRA (modules_to_save, with
    `save`), `biases` trains every parameter named *bias."""
    from peft import LoraConfig

    from adaptune.approaches.adapters import norm_module_names

    lora = settings.lora
    with_norms = bool(getattr(lora, "norms", None))
    norms = norm_module_names(model) if with_norms else []
    if with_norms and not norms:
        raise ValueError(
            f"model {entry.get('name')!r} has no LayerNorm/RMSNorm layers to train (lora.norms)"
        )
    kept = norms + list(save or [])
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        # "all": every parameter named *bias trains: every Linear layer's bias, and the norms'
        # biases too (which lora.norms trains anyway; the reference study set both).
        bias="all" if getattr(lora, "biases", None) else "none",
        modules_to_save=kept or None,
        task_type=task_type,
    )


def all_linear_targets(model, settings, entry: dict) -> list[str]:
    """The attention and MLP projections, and with the options the input embedding and the LM
    head."""
    from adaptune.approaches.adapters import embedding_module_name, lm_head_name

    targets = list(entry["attention_modules"]) + list(entry["mlp_modules"])
    if settings.lora.embedding:
        targets.append(embedding_module_name(model))
    if getattr(settings.lora, "lm_head", None):
        targets.append(lm_head_name(model))
    return targets
