"""How an example is shown to a model (prompt/completion for legacy completion models, chat
messages for chat models), and how many tokens a fine-tuning file holds."""

from __future__ import annotations

import logging
import math
from typing import Callable, Sequence

from adaptune.data.prompts import completion

log = logging.getLogger(__name__)


def system_message(labels: Sequence[str]) -> str:
    # The prompt styles ("raw" has no instruction at all) are written for completion models;
    # a chat model also needs to be told the answer format.
    return (
        "Answer with exactly one of these words, in lower case, and nothing else: "
        f"{', '.join(labels)}."
    )


def chat_messages(
    prompt: str, labels: Sequence[str], demonstrations: Sequence[dict] = ()
) -> list[dict]:
    """System instruction, then each demonstration as a user/assistant turn, then the prompt."""
    messages = [{"role": "system", "content": system_message(labels)}]
    for demo in demonstrations:
        messages.append({"role": "user", "content": demo["prompt"]})
        messages.append({"role": "assistant", "content": demo["label"]})
    messages.append({"role": "user", "content": prompt})
    return messages


def completion_prompt(prompt: str, demonstrations: Sequence[dict] = ()) -> str:
    """Demonstrations as prompt + completion + blank line, then the prompt (as the local
    fewshot)."""
    return "".join(d["prompt"] + completion(d["label"]) + "\n\n" for d in demonstrations) + prompt


def training_example(record: dict, kind: str, labels: Sequence[str]) -> dict:
    """One line of an OpenAI fine-tuning file."""
    if kind == "completion":
        return {"prompt": record["prompt"], "completion": completion(record["label"])}
    messages = chat_messages(record["prompt"], labels)
    return {"messages": messages + [{"role": "assistant", "content": record["label"]}]}


def token_counter(model: str) -> tuple[Callable[[str], int], str]:
    """A function counting the tokens of a text, and how it counts: tiktoken's encoding for the
    model when tiktoken is installed and its vocabulary loads, else ceil(characters / 4), the
    rule of thumb OpenAI documents for English text."""
    try:
        import tiktoken

        try:
            encoding = tiktoken.encoding_for_model(
                model.split(":")[1] if model.startswith("ft:") else model
            )
        except KeyError:
            encoding = tiktoken.get_encoding("o200k_base")
        return (
            lambda text: len(encoding.encode(text, disallowed_special=()))
        ), f"tiktoken {encoding.name}"
    except Exception as error:  # not installed, or its vocabulary cannot be fetched offline
        log.info("token counts are estimated as characters / 4 (tiktoken unavailable: %s)", error)
        return (lambda text: math.ceil(len(text) / 4)), "characters / 4"


def example_tokens(example: dict, count: Callable[[str], int]) -> int:
    """Tokens of one fine-tuning line; chat lines pay about 4 tokens per message and 3 per
    example."""
    if "messages" in example:
        return 3 + sum(4 + count(m["content"]) for m in example["messages"])
    return count(example["prompt"]) + count(example["completion"])
