"""The one scorer: classify by label likelihood.

For each prompt and each candidate label, the score is the log-likelihood of the completion
" <label>" after the prompt (summed over its tokens); the highest score wins. Nothing is
generated. Prompt and completion are tokenized separately and concatenated, the way the
completion follows the prompt in training.

Speed (against one prompt at a time with full logits, as the reference study did):
- prompts are sorted by length and batched, left-padded, with position ids that skip the padding;
- `logits_to_keep` keeps the LM head on the last positions only;
- fast path: when every label is one token, one forward per prompt scores all labels from the
  last position; general path: one prompt+completion sequence per (prompt, label) pair.
Long prompts are cut from the left, keeping their end (where the question is) and the BOS the
tokenizer puts in front, by the same function that encodes them for training.

Scores are summed, not length-normalised (a label of several tokens pays for each), and the
log-softmax runs in float64, so batched scores match one-at-a-time ones to ~1e-7 on an fp32
model. With bitsandbytes int8 the outlier columns are picked per batch, so scores may differ in
their last digits with the batch a prompt lands in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np

from adaptune.data.prompts import completion
from adaptune.lm.encoding import encode_completion, encode_prompts
from adaptune.lm.probabilities import label_probabilities  # noqa: F401  (part of the scorer's interface)


@dataclass(frozen=True)
class ScoringSettings:
    batch_size: int = 16  # sequences per forward pass
    max_length: int = 96  # prompt tokens kept, special tokens included
    truncation_side: str | None = None  # which end of a long prompt is cut (unset: the start)
    precision: str = "32-true"  # a resolved precision; mixed ones score under autocast

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.max_length < 2:
            raise ValueError(f"max_length must be at least 2, got {self.max_length}")


def completion_ids(
    tokenizer, labels: Sequence[str], completions: Sequence[str] | None = None
) -> list[list[int]]:
    """Token ids of each label's completion (default " <label>")."""
    completions = completions or [completion(label) for label in labels]
    if len(completions) != len(labels):
        raise ValueError(f"{len(labels)} labels but {len(completions)} completions")
    ids = [encode_completion(tokenizer, text) for text in completions]
    if len({tuple(t) for t in ids}) != len(ids):
        raise ValueError(f"labels {list(labels)} do not all tokenize differently")
    return ids


def score_labels(
    model, tokenizer, prompts: Sequence[str], labels: Sequence[str], *options, **named
) -> np.ndarray:
    """Log-likelihood of each label's completion (default " <label>") after each prompt: array
    (len(prompts), len(labels)), float64. The options are score_with_vocab's (settings, progress,
    completions); `progress(n)` is called after each batch with the number of prompts done."""
    return score_with_vocab(model, tokenizer, prompts, labels, *options, **named)[0]


def score_with_vocab(
    model,
    tokenizer,
    prompts: Sequence[str],
    labels: Sequence[str],
    settings: ScoringSettings = ScoringSettings(),
    progress: Callable[[int], None] | None = None,
    completions: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(scores as score_labels gives them, vocabulary argmax): where every label is one token,
    the second is, per prompt, the index of the label whose token is the most likely token of the
    whole vocabulary at the label position, or -1 where it is no label's; None otherwise."""
    if not prompts:
        return np.zeros((0, len(labels))), None
    from adaptune.lm.encoding import pad_token_id

    prompt_ids = encode_prompts(tokenizer, prompts, settings.max_length, settings.truncation_side)
    label_ids = completion_ids(tokenizer, labels, completions)
    with _autocast(model, settings.precision):
        return score_ids(
            model, pad_token_id(tokenizer), prompt_ids, label_ids, settings.batch_size, progress
        )


def score_ids(
    model,
    pad_id: int,
    prompt_ids: list[list[int]],
    label_ids: list[list[int]],
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(scores, vocabulary argmax) as score_with_vocab gives them, of prompts and label
    completions already in token ids: the scorer itself, which training's validation accuracy
    also uses."""
    if all(len(ids) == 1 for ids in label_ids):
        return _score_single_token(
            model, pad_id, prompt_ids, [ids[0] for ids in label_ids], batch_size, progress
        )
    return _score_sequences(model, pad_id, prompt_ids, label_ids, batch_size, progress), None


def _autocast(model, precision: str):
    """torch.autocast for a bf16/fp16 precision on the model's device type; else nothing."""
    import torch

    from adaptune.hardware.precision import autocast_dtype

    dtype = autocast_dtype(precision)
    if dtype is None:
        return nullcontext()
    device_type = model.get_input_embeddings().weight.device.type
    return torch.autocast(device_type=device_type, dtype=dtype)


def predicted_labels(scores: np.ndarray, labels: Sequence[str]) -> list[str]:
    """The best-scoring label of each row (the first one on a tie)."""
    return [labels[i] for i in np.argmax(scores, axis=1)]


def label_log_probs(logits, label_tokens):
    """(log-softmax over the vocabulary in float64, its columns of `label_tokens`) of logits at
    label positions, shape (rows, vocabulary): the scores where every label is one token (also
    training's validation accuracy then, on the logits its loss already computed)."""
    import torch

    log_probs = torch.log_softmax(logits.double(), dim=-1)
    return log_probs, log_probs[:, label_tokens.to(log_probs.device)]


def _score_single_token(model, pad_id, prompt_ids, label_tokens, batch_size, progress):
    import torch

    scores = np.zeros((len(prompt_ids), len(label_tokens)))
    vocab_choice = np.full(len(prompt_ids), -1)
    order = _by_length([len(ids) for ids in prompt_ids])
    targets = torch.tensor(label_tokens)
    with torch.inference_mode():
        for done, batch in _batches(order, batch_size):
            logits = _forward(model, pad_id, [prompt_ids[i] for i in batch], keep=1)
            log_probs, label_scores = label_log_probs(logits[:, -1, :], targets)
            scores[batch] = label_scores.cpu().numpy()
            top = log_probs.argmax(-1).cpu()
            vocab_choice[batch] = [
                label_tokens.index(t) if t in label_tokens else -1 for t in top.tolist()
            ]
            if progress:
                progress(done)
    return scores, vocab_choice


def _score_sequences(model, pad_id, prompt_ids, label_ids, batch_size, progress):
    import torch

    n_labels = len(label_ids)
    pairs = [(p, j) for p in range(len(prompt_ids)) for j in range(n_labels)]
    sequences = [prompt_ids[p] + label_ids[j] for p, j in pairs]
    scores = np.zeros((len(prompt_ids), n_labels))
    order = _by_length([len(s) for s in sequences])
    with torch.inference_mode():
        for done, batch in _batches(order, batch_size):
            lengths = [len(label_ids[pairs[i][1]]) for i in batch]
            # Keep the logits that predict each completion token: the last m+1 positions but one.
            keep = max(lengths) + 1
            logits = _forward(model, pad_id, [sequences[i] for i in batch], keep=keep)
            log_probs = torch.log_softmax(logits.double(), dim=-1)
            for row, i in enumerate(batch):
                p, j = pairs[i]
                m = lengths[row]
                targets = torch.tensor(label_ids[j], device=log_probs.device)
                window = log_probs[row, keep - 1 - m : keep - 1]
                scores[p, j] = window.gather(1, targets[:, None]).sum().item()
            if progress:
                progress(done // n_labels)
    return scores


def _forward(model, pad_id: int, sequences: list[list[int]], keep: int):
    """Logits of the last `keep` positions of `sequences` in the training batch layout."""
    from adaptune.lm.encoding import last_logits, left_padded

    return last_logits(model, left_padded(sequences, pad_id), keep)


def _by_length(lengths: list[int]) -> list[int]:
    # Longest first: similar lengths share a batch (little padding), and memory peaks at once.
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


def _batches(order: list[int], batch_size: int):
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        yield start + len(batch), batch
