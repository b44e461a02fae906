"""The key, the endpoint and the official client of the OpenAI stage.

The API key is read from OPENAI_API_KEY here, inside the job, and nowhere else: it never travels
through config, params, logs or outputs. It is stripped (a CRLF `.env` file leaves a `\\r`) and
checked before use, and guard_secret() masks it in everything the job's log and console get.
"""

from __future__ import annotations

import os

from adaptune.core import logs
from adaptune.openai.settings import OpenAISettings

KEY_VARIABLE = "OPENAI_API_KEY"
BASE_URL_VARIABLE = "OPENAI_BASE_URL"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
PLACEHOLDER = "[OPENAI_API_KEY]"


def api_key() -> str:
    """The key from the environment, stripped of surrounding whitespace; a key with whitespace or
    control characters inside is refused (an HTTP header cannot carry it, and the error the
    HTTP layer would raise quotes it)."""
    raw = os.environ.get(KEY_VARIABLE, "")
    key = raw.strip()
    if not key:
        raise RuntimeError(
            f"the environment variable {KEY_VARIABLE} is not set; the OpenAI rules read the key "
            "from it (never from config.yaml)"
        )
    bad = sorted({f"U+{ord(c):04X}" for c in key if c.isspace() or not c.isprintable()})
    if bad:
        raise ValueError(
            f"the environment variable {KEY_VARIABLE} contains whitespace or control characters "
            f"({', '.join(bad)}) inside the key; set it to the key alone"
        )
    return key


def endpoint(settings: OpenAISettings) -> str:
    """The endpoint requests go to: openai.base_url, else OPENAI_BASE_URL, else OpenAI's API.
    Whatever it is, it is what the cache key and the job record name."""
    chosen = settings.base_url or os.environ.get(BASE_URL_VARIABLE, "").strip() or DEFAULT_BASE_URL
    return chosen.rstrip("/")


def make_client(settings: OpenAISettings):
    """The official client on endpoint(settings). It retries 408/409/429/5xx itself, with
    exponential backoff (or the server's Retry-After), up to settings.max_retries times; the
    one request that must not be repeated (creating a paid job) turns that off per call."""
    import openai  # the installed client: absolute import, never this package

    return openai.OpenAI(
        api_key=api_key(),
        base_url=endpoint(settings),
        max_retries=settings.max_retries,
        timeout=settings.timeout_s,
    )


def guard_secret() -> None:
    """Mask the API key (as set, and stripped) in anything this job writes to its log or the
    console, uncaught tracebacks included. Call right after adaptune.core.logs.log_to."""
    raw = os.environ.get(KEY_VARIABLE, "")
    logs.hide(raw, PLACEHOLDER)
    logs.hide(raw.strip(), PLACEHOLDER)
