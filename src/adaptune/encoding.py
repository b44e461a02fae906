"""How prompts and completions become token ids: one place, so that scoring sees a prompt
exactly as training did. No torch here, so scoring and prediction do not pay for Lightning."""

from __future__ import annotations

from collections.abc import Sequence


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
