"""The part of config `openai` that the OpenAI scripts use; defaults come from the schema."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from adaptune.core.config import schema_fields


@dataclass(frozen=True)
@schema_fields("openai")  # the defaults
class OpenAISettings:
    """See workflow/schemas/config.schema.yaml, section `openai`, for what each key means."""

    base_url: str
    style: str
    epochs: int
    max_training_tokens: int
    max_concurrency: int
    max_retries: int
    timeout_s: float
    poll_interval_s: float
    max_poll_interval_s: float
    seed: int
    completion_models: tuple[str, ...]
    create_attempts: int
    delete_files: bool

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "max_training_tokens": self.max_training_tokens >= 1,
            "max_concurrency": self.max_concurrency >= 1,
            "max_retries": self.max_retries >= 0,
            "timeout_s": self.timeout_s > 0,
            "poll_interval_s": self.poll_interval_s > 0,
            "max_poll_interval_s": self.max_poll_interval_s >= self.poll_interval_s,
            "create_attempts": self.create_attempts >= 1,
            "delete_files": isinstance(self.delete_files, bool),
        }
        for key, ok in checks.items():
            if not ok:
                raise ValueError(f"config openai.{key}: invalid value {getattr(self, key)!r}")
        object.__setattr__(self, "completion_models", tuple(self.completion_models))

    @classmethod
    def from_config(cls, section: dict) -> "OpenAISettings":
        """Build from (part of) config `openai`; keys that are not settings of a job are ignored
        (enabled, finetune_models, ...), unknown spellings of settings are not."""
        names = {f.name for f in dataclasses.fields(cls)}
        known_other = {"enabled", "finetune_models", "chat_models", "chat_k"}
        unknown = set(section) - names - known_other
        if unknown:
            raise ValueError(
                f"config openai: unknown keys {sorted(unknown)}; expected some of {sorted(names)}"
            )
        return cls(**{k: v for k, v in section.items() if k in names})

    def kind(self, model: str) -> str:
        """'completion' or 'chat': the API a model (or a fine-tuned `ft:<base>:...` id) speaks."""
        base = model.split(":")[1] if model.startswith("ft:") else model
        return "completion" if base in self.completion_models else "chat"
