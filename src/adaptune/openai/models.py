"""What the endpoint still serves, asked before anything is uploaded or paid, and which error
answers are refusals (a result: the system is "not run") rather than failures of the run.

OpenAI retires models on fixed dates and has been winding self-serve fine-tuning down, so the
configured models may stop working under a study at any time; the stage finds out at run time.
"""

from __future__ import annotations

import datetime as dt
import logging

log = logging.getLogger(__name__)

# Answers that mean "not this model / not for you", as opposed to a broken run (401: a wrong key;
# 429 and 5xx: try again later), which stays an error.
REFUSAL_STATUSES = (400, 403, 404, 422)


class Refused(Exception):
    """The endpoint will not run a system; str(error) is the reason the report shows."""


def refusal_reason(error: BaseException) -> str | None:
    """The reason of an API error that is a refusal, else None."""
    import openai

    if not isinstance(error, openai.APIStatusError) or error.status_code not in REFUSAL_STATUSES:
        return None
    body = error.body if isinstance(error.body, dict) else {}
    message = (
        body.get("message") or body.get("detail") or error.message
    )  # "detail": FastAPI servers
    code = body.get("code") or body.get("type")
    return f"HTTP {error.status_code}{f' {code}' if code else ''}: {message}"


def unavailable(client, model: str, today: dt.date | None = None) -> str | None:
    """Why `model` cannot be used on this endpoint (missing, no access, or its shutdown date has
    passed), or None when it can. GET /models/{id} first; a server that lacks that route but lists
    the model in GET /models (some compatible servers) counts as serving it."""
    import openai

    today = today or dt.date.today()
    try:
        info = client.models.retrieve(model)
    except openai.NotFoundError as error:
        if model in _listed(client):
            return None
        return f"model {model} is not available on this endpoint ({refusal_reason(error)})"
    except openai.APIStatusError as error:
        reason = refusal_reason(error)
        if reason is None:
            raise
        return f"model {model} is not available to this key ({reason})"
    shutdown = _date(
        getattr(info, "shutdown_date", None) or (info.model_extra or {}).get("shutdown_date")
    )
    if shutdown is not None and shutdown <= today:
        return f"model {model} was shut down on {shutdown.isoformat()}"
    if shutdown is not None:
        log.warning("model %s is scheduled to shut down on %s", model, shutdown.isoformat())
    return None


def finetuning_refused(client) -> str | None:
    """Why this key may not fine-tune at all, where the API tells (listing jobs is refused), else
    None. Whether one model may be fine-tuned shows only when its job is created."""
    try:
        client.fine_tuning.jobs.list(limit=1)
    except Exception as error:
        reason = refusal_reason(error)
        if reason is None:
            raise
        return f"fine-tuning is not available to this key ({reason})"
    return None


def _listed(client) -> set[str]:
    try:
        return {m.id for m in client.models.list()}
    except Exception as error:  # a server without GET /models: the model is not listed
        if refusal_reason(error) is None:
            raise
        return set()


def _date(value) -> dt.date | None:
    """A shutdown date given as a Unix time or an ISO date (or date-time) string."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc).date()
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        log.warning("unreadable shutdown_date %r; the model is treated as served", value)
        return None
