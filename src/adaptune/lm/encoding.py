"""How prompts and completions become token ids and batches: one place, so that scoring sees a
prompt exactly as training did. No Lightning here, so scoring and prediction do not pay for it.

The one batch layout of training and scoring: rows LEFT padded, so every row's completion
sits in the last positions of the batch (the LM head then runs on those positions only), with
position ids that start at 0 at each row's first real token, so a padded row is computed as if
it stood alone."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def bos_prefix(tokenizer) -> list[int]:
    """[bos] when the tokenizer puts a BOS in front of a text by itself (Llama-style), else []."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return []
    probe = tokenizer("a", add_special_tokens=True)["input_ids"]
    return [bos] if probe and probe[0] == bos else []


def encode_prompts(
    tokenizer, prompts: Sequence[str], max_length: int, truncation_side: str | None = None
) -> list[list[int]]:
    """Token ids of each prompt, at most `max_length`, cut from the left (the end of the message
    and the template's tail survive; unset means left) or, with truncation_side "right", from the
    right (the reference study's way); the tokenizer's BOS, if it adds one, is kept in front. No
    end-of-sequence token: the completion follows."""
    if truncation_side not in (None, "left", "right"):
        raise ValueError(f"truncation_side must be left or right, got {truncation_side!r}")
    bos = bos_prefix(tokenizer)
    keep = max_length - len(bos)
    if keep < 1:
        raise ValueError(f"max_length {max_length} leaves no room for the prompt")
    if not prompts:
        return []
    encoded = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    if truncation_side == "right":
        return [bos + ids[:keep] for ids in encoded]
    return [bos + ids[-keep:] for ids in encoded]


def encode_completion(tokenizer, completion: str) -> list[int]:
    ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"completion {completion!r} encodes to no tokens")
    return ids


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
