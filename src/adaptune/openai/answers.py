"""Reading a label out of a model's answer, as a person would.

The most probable first token decides when log-probabilities come back; otherwise (or when that
token names no label, a lone space say) the first word of the answer does. Either is compared
case-insensitively with punctuation and whitespace stripped, and may be the label or the start of
exactly one label, at least MIN_PREFIX characters long ("off" is offensive; "o" is nothing). An
answer that names no label ("Sorry, ...") is a wrong prediction, counted as invalid, even when a
label is among the less likely tokens.
"""

from __future__ import annotations

import math
import string
from typing import Sequence

MIN_PREFIX = 3
_STRIP = string.punctuation + string.whitespace + "“”‘’«»"


def match_label(word: str, labels: Sequence[str]) -> str | None:
    """The label `word` names: the label itself, or an unambiguous prefix of >= MIN_PREFIX
    characters."""
    cleaned = word.strip(_STRIP).lower()
    if not cleaned:
        return None
    for label in labels:
        if cleaned == label.lower():
            return label
    if len(cleaned) < MIN_PREFIX:
        return None
    starts = [label for label in labels if label.lower().startswith(cleaned)]
    return starts[0] if len(starts) == 1 else None


def word_label(text: str, labels: Sequence[str]) -> str | None:
    """The label the first word of an answer names."""
    words = text.split()
    return match_label(words[0], labels) if words else None


def parse_answer(response: dict, kind: str, labels: Sequence[str]):
    """(label or None, {label: probability} or None, answer text) of one response.

    The probabilities are the summed probability of the top tokens that name each label (0 for a
    label not among them); None where the endpoint returned no log-probabilities."""
    choice = response["choices"][0]
    logprobs = choice.get("logprobs") or {}
    if kind == "completion":
        text = choice.get("text") or ""
        tops = logprobs.get("top_logprobs") or []
        top = tops[0] if tops else None
    else:
        text = (choice.get("message") or {}).get("content") or ""
        content = logprobs.get("content") or []
        top = (
            {t["token"]: t["logprob"] for t in content[0].get("top_logprobs") or []}
            if content
            else None
        )
        if content and not top:  # the generated token alone, without alternatives
            top = {content[0]["token"]: content[0]["logprob"]}
    scores = None
    if top:
        scores = {label: 0.0 for label in labels}
        for token, logprob in top.items():
            label = match_label(token, labels)
            if label is not None:
                scores[label] += math.exp(logprob)
        label = match_label(max(top, key=top.get), labels)
        if label is not None:
            return label, scores, text
    return word_label(text, labels), scores, text
