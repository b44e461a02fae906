"""The one batch layout of training and scoring: rows LEFT padded, so every row's completion
sits in the last positions of the batch (the LM head then runs on those positions only), with
position ids that start at 0 at each row's first real token, so a padded row is computed as if
it stood alone."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def pad_token_id(tokenizer) -> int:
    """The tokenizer's padding id, else its end-of-sequence id, else 0 (masked out either way)."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def left_padded(sequences: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """input_ids, attention_mask and position_ids of `sequences` (token id lists), left padded
    to the longest."""
    width = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        if ids:
            input_ids[row, width - len(ids) :] = torch.tensor(list(ids), dtype=torch.long)
            attention_mask[row, width - len(ids) :] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "position_ids": position_ids(attention_mask),
    }


def last_logits(model, batch: dict[str, torch.Tensor], keep: int) -> torch.Tensor:
    """The model's logits at the last `keep` positions of a left-padded batch."""
    device = model.get_input_embeddings().weight.device
    output = model(
        input_ids=batch["input_ids"].to(device),
        attention_mask=batch["attention_mask"].to(device),
        position_ids=batch["position_ids"].to(device),
        use_cache=False,
        logits_to_keep=keep,
    )
    return output.logits
