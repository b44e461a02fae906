"""What the OpenAI stage shares: its settings, the client, the secret guard and the formats
in which an example is shown to a model (prompt/completion for legacy completion models,
chat messages for chat models).

The API key is read from OPENAI_API_KEY here, inside the job, and nowhere else: it never
travels through config, params, logs or outputs.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import os
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

log = logging.getLogger(__name__)

KEY_VARIABLE = "OPENAI_API_KEY"


@dataclass(frozen=True)
class OpenAISettings:
    """The part of config `openai` that the scripts use (see workflow/schemas/config.schema.yaml)."""

    base_url: str = ""
    style: str = "instruction"
    epochs: int = 4
    max_training_tokens: int = 2_000_000
    max_concurrency: int = 4
    max_retries: int = 5
    timeout_s: float = 120.0
    poll_interval_s: float = 15.0
    max_poll_interval_s: float = 300.0
    seed: int = 42
    completion_models: tuple[str, ...] = ("babbage-002", "davinci-002")

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "max_training_tokens": self.max_training_tokens >= 1,
            "max_concurrency": self.max_concurrency >= 1,
            "max_retries": self.max_retries >= 0,
            "timeout_s": self.timeout_s > 0,
            "poll_interval_s": self.poll_interval_s > 0,
            "max_poll_interval_s": self.max_poll_interval_s >= self.poll_interval_s,
        }
        for key, ok in checks.items():
            if not ok:
                raise ValueError(f"config openai.{key}: invalid value {getattr(self, key)!r}")
        object.__setattr__(self, "completion_models", tuple(self.completion_models))

    @classmethod
    def from_config(cls, section: dict) -> "OpenAISettings":
        """Build from (part of) config `openai`; keys that are not settings are ignored
        (enabled, finetune_models, ...), unknown spellings of settings are not."""
        names = {f.name for f in dataclasses.fields(cls)}
        known_other = {"enabled", "finetune_models", "chat_models", "chat_k"}
        unknown = set(section) - names - known_other
        if unknown:
            raise ValueError(f"config openai: unknown keys {sorted(unknown)}; expected some of {sorted(names)}")
        return cls(**{k: v for k, v in section.items() if k in names})

    def kind(self, model: str) -> str:
        """'completion' or 'chat': the API a model (or a fine-tuned `ft:<base>:...` id) speaks."""
        base = model.split(":")[1] if model.startswith("ft:") else model
        return "completion" if base in self.completion_models else "chat"


def api_key() -> str:
    key = os.environ.get(KEY_VARIABLE, "")
    if not key:
        raise RuntimeError(
            f"the environment variable {KEY_VARIABLE} is not set; the OpenAI rules read the key "
            "from it (never from config.yaml)"
        )
    return key


def make_client(settings: OpenAISettings):
    """The official client, on openai.base_url when set; it retries 408/409/429/5xx itself,
    with exponential backoff (or the server's Retry-After), up to settings.max_retries times."""
    import openai  # the installed package: this module is adaptune.openai_client

    return openai.OpenAI(
        api_key=api_key(),
        base_url=settings.base_url or None,
        max_retries=settings.max_retries,
        timeout=settings.timeout_s,
    )


class _Redacting(io.TextIOBase):
    """A text stream that replaces a secret before it reaches the wrapped stream."""

    def __init__(self, stream, secret: str) -> None:
        self._stream, self._secret = stream, secret

    def write(self, text: str) -> int:
        self._stream.write(text.replace(self._secret, "[OPENAI_API_KEY]"))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


def guard_secret() -> None:
    """Mask the API key in anything this job writes to stderr or the log (a traceback that
    quotes a request, say). Call right after adaptune.logs.log_to."""
    key = os.environ.get(KEY_VARIABLE, "")
    if not key or isinstance(sys.stderr, _Redacting):
        return
    original = sys.stderr
    sys.stderr = _Redacting(original, key)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is original:
            handler.setStream(sys.stderr)


# --- how an example is shown to a model ------------------------------------------------------

def system_message(labels: Sequence[str]) -> str:
    # The prompt styles ("raw" has no instruction at all) are written for completion models;
    # a chat model also needs to be told the answer format.
    return f"Answer with exactly one of these words, in lower case, and nothing else: {', '.join(labels)}."


def chat_messages(prompt: str, labels: Sequence[str], demonstrations: Sequence[dict] = ()) -> list[dict]:
    """System instruction, then each demonstration as a user/assistant turn, then the prompt."""
    messages = [{"role": "system", "content": system_message(labels)}]
    for demo in demonstrations:
        messages.append({"role": "user", "content": demo["prompt"]})
        messages.append({"role": "assistant", "content": demo["label"]})
    messages.append({"role": "user", "content": prompt})
    return messages


def completion_prompt(prompt: str, demonstrations: Sequence[dict] = ()) -> str:
    """Demonstrations as prompt + completion + blank line, then the prompt (as the local fewshot)."""
    return "".join(d["prompt"] + d["completion"] + "\n\n" for d in demonstrations) + prompt


def training_example(record: dict, kind: str, labels: Sequence[str]) -> dict:
    """One line of an OpenAI fine-tuning file."""
    if kind == "completion":
        return {"prompt": record["prompt"], "completion": record["completion"]}
    messages = chat_messages(record["prompt"], labels)
    return {"messages": messages + [{"role": "assistant", "content": record["label"]}]}


# --- token counts ----------------------------------------------------------------------------

def token_counter(model: str) -> tuple[Callable[[str], int], str]:
    """A function counting the tokens of a text, and how it counts: tiktoken's encoding for the
    model when tiktoken is installed and its vocabulary loads, else ceil(characters / 4), the
    rule of thumb OpenAI documents for English text."""
    try:
        import tiktoken

        try:
            encoding = tiktoken.encoding_for_model(model.split(":")[1] if model.startswith("ft:") else model)
        except KeyError:
            encoding = tiktoken.get_encoding("o200k_base")
        return (lambda text: len(encoding.encode(text, disallowed_special=()))), f"tiktoken {encoding.name}"
    except Exception as error:  # not installed, or its vocabulary cannot be fetched offline
        log.info("token counts are estimated as characters / 4 (tiktoken unavailable: %s)", error)
        return (lambda text: math.ceil(len(text) / 4)), "characters / 4"


def example_tokens(example: dict, count: Callable[[str], int]) -> int:
    """Tokens of one fine-tuning line; chat lines pay about 4 tokens per message and 3 per example."""
    if "messages" in example:
        return 3 + sum(4 + count(m["content"]) for m in example["messages"])
    return count(example["prompt"]) + count(example["completion"])
