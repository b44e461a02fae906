"""Fine-tune one model of the endpoint on the training prompts: exactly one paid job per model,
whatever the network does, and a refusal recorded as a result.

The job is recorded in a job record (results/openai/{model}/job.json) as soon as it exists; the
record is no output of the rule, so Snakemake leaves it in place when a job fails or is
interrupted, and a rerun waits on the same job instead of paying for a second one. The steps,
each recorded before the next:

1. write the training and validation files in the model's format, estimate the training tokens
   (per epoch x epochs) and refuse to go on above openai.max_training_tokens;
2. ask the endpoint whether the model is served (not missing, not shut down) and whether this
   key may fine-tune; if not, the model is "not run", with nothing uploaded;
3. upload both files (the record gets their ids);
4. create the job, sent once with no automatic retry. Before every attempt, and after any error
   or timeout, look for a job this record already made (by its training file and by its
   metadata), so an answer lost on the way back never leads to a second job. A refusal (400,
   403, 404: model not fine-tunable, no permission) makes the model "not run";
5. poll with backoff until the job ends; delete the uploaded files (openai.delete_files); write
   model.json with the fine-tuned model id, or, for a job that failed (moderation in
   validating_files, say) or was cancelled, with "status": "not_run" and the job's error. A
   failed paid job is never retried: the rerun finds the record and reports the same failure.

A record made from other data or settings (its fingerprint differs) stops the run: starting
another paid job is left to the user, who deletes the record (and model.json).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from pathlib import Path
from typing import Callable, Sequence

from adaptune.core.io import write_json, write_text
from adaptune.core.provenance import Stopwatch, provenance
from adaptune.data.prompts import read_prompts
from adaptune.openai.client import endpoint, make_client
from adaptune.openai.formats import example_tokens, token_counter, training_example
from adaptune.openai.models import Refused, finetuning_refused, refusal_reason, unavailable
from adaptune.openai.settings import OpenAISettings

log = logging.getLogger(__name__)

TERMINAL = ("succeeded", "failed", "cancelled")
SUFFIX = "adaptune"
# How many of the account's most recent jobs to look through for one already created.
JOB_LOOKBACK = 100
# The metadata key that ties a job to the record that created it.
RECORD_KEY = "adaptune_record"


def finetune(
    model: str,
    train: str | Path,
    val: str | Path,
    output: str | Path,
    job_record: str | Path,
    labels: Sequence[str],
    settings: OpenAISettings,
    client=None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """Fine-tune `model` on the prompts in `train` (validated on `val`); write and return the
    model record at `output`: {"status": "ran", "fine_tuned_model", "job_id", ...}, or
    {"status": "not_run", "reason", ...} when the endpoint refused or the job failed."""
    stopwatch = Stopwatch()
    record_path = Path(job_record)
    kind = settings.kind(model)
    url = endpoint(settings)
    train_lines = [training_example(r, kind, labels) for r in read_prompts(train, labels)]
    val_lines = [training_example(r, kind, labels) for r in read_prompts(val, labels)]
    contents = {"train": _jsonl(train_lines), "val": _jsonl(val_lines)}

    count, method = token_counter(model)
    per_epoch = sum(example_tokens(line, count) for line in train_lines)
    estimate = per_epoch * settings.epochs
    log.info(
        "%s: %d training and %d validation examples (%s format); estimated training tokens "
        "%d per epoch x %d epochs = %d (%s; limit openai.max_training_tokens = %d)",
        model,
        len(train_lines),
        len(val_lines),
        kind,
        per_epoch,
        settings.epochs,
        estimate,
        method,
        settings.max_training_tokens,
    )
    print(f"{model}: estimated training tokens {estimate} ({method})", flush=True)

    fingerprint = _fingerprint(model, kind, settings, url, contents)
    record = _load_record(record_path, model, fingerprint, url)
    # The files as uploaded, kept beside the record (after its check, so they match it).
    files = {name: record_path.parent / f"{name}.{kind}.jsonl" for name in contents}
    for name, path in files.items():
        write_text(path, contents[name])
    client = client or make_client(settings)
    summary = {
        "base_model": model,
        "kind": kind,
        "endpoint": url,
        "epochs": settings.epochs,
        "estimated_training_tokens": estimate,
        "token_estimate_method": method,
        "train_examples": len(train_lines),
        "val_examples": len(val_lines),
    }

    def not_run(reason: str) -> dict:
        record.update(outcome="not_run", reason=reason)
        _save(record_path, record)
        return _write(
            output,
            {"status": "not_run", "reason": reason, **summary, "job_id": record.get("job_id")},
            settings,
            stopwatch,
        )

    if record.get("job_id"):
        log.info("%s: resuming job %s from %s", model, record["job_id"], record_path)
        job = client.fine_tuning.jobs.retrieve(record["job_id"])
    else:
        _check_limit(model, estimate, settings)  # the limit guards the job; fail before any request
        reason = unavailable(client, model) or finetuning_refused(client)
        if reason:
            return not_run(reason)
        if not record.get("training_file") or record.get("files_deleted"):
            record.update(_upload(client, files), files_deleted=False)
            _save(record_path, record)
        try:
            job = _create_once(client, model, record, settings, sleep)
        except Refused as refused:
            _delete_files(client, record, record_path, settings)
            return not_run(f"fine-tuning job refused: {refused}")
        record.update(job_id=job.id, status=job.status)
        _save(record_path, record)

    job = wait(client, job, record_path, record, settings, sleep)
    _delete_files(client, record, record_path, settings)
    if job.status != "succeeded":
        error = job.error
        why = (
            f"{error.code}: {error.message}"
            if error and (error.code or error.message)
            else "no error given"
        )
        log.error(
            "%s: job %s %s (%s). The record %s keeps it; delete the record and %s to start a "
            "new (paid) job.",
            model,
            job.id,
            job.status,
            why,
            record_path,
            output,
        )
        return not_run(f"fine-tuning job {job.id} {job.status}: {why}")
    if not job.fine_tuned_model:
        raise RuntimeError(f"{model}: job {job.id} succeeded but names no fine-tuned model")
    log.info(
        "%s: fine-tuned model %s (%s trained tokens)",
        model,
        job.fine_tuned_model,
        job.trained_tokens,
    )
    return _write(
        output,
        {
            "status": "ran",
            **summary,
            "fine_tuned_model": job.fine_tuned_model,
            "job_id": job.id,
            "trained_tokens": job.trained_tokens,
            "training_file": record["training_file"],
            "validation_file": record["validation_file"],
        },
        settings,
        stopwatch,
    )


def wait(
    client,
    job,
    record_path: Path,
    record: dict,
    settings: OpenAISettings,
    sleep: Callable[[float], None] = time.sleep,
):
    """Poll until the job ends, backing off from poll_interval_s to max_poll_interval_s; log
    status changes, trained tokens and the job's new events."""
    interval = settings.poll_interval_s
    seen: set[str] = set()
    while True:
        _log_events(client, job.id, seen)
        if job.status != record.get("status"):
            record["status"] = job.status
            _save(record_path, record)
        log.info("job %s: %s; trained tokens %s", job.id, job.status, job.trained_tokens)
        if job.status in TERMINAL:
            return job
        sleep(interval)
        interval = min(interval * 1.5, settings.max_poll_interval_s)
        job = client.fine_tuning.jobs.retrieve(job.id)


def _create_once(client, model: str, record: dict, settings: OpenAISettings, sleep):
    """Create the job of `record`, or find the one it already made. The create request goes out
    without the client's automatic retries; after a lost answer (timeout, dropped connection,
    5xx) the next attempt first looks for the job, and only a job that is not there is created."""
    import openai

    last_error: Exception | None = None
    for attempt in range(settings.create_attempts):
        job = find_job(client, record)
        if job is not None:
            log.info(
                "%s: found job %s made from record %s; not creating another",
                model,
                job.id,
                record[RECORD_KEY],
            )
            return job
        if attempt:
            sleep(min(settings.poll_interval_s * 2**attempt, settings.max_poll_interval_s))
            job = find_job(client, record)  # a job created late by a slow server
            if job is not None:
                return job
        try:
            job = client.with_options(max_retries=0).fine_tuning.jobs.create(
                model=model,
                training_file=record["training_file"],
                validation_file=record["validation_file"],
                method={
                    "type": "supervised",
                    "supervised": {"hyperparameters": {"n_epochs": settings.epochs}},
                },
                seed=settings.seed,
                suffix=SUFFIX,
                metadata={
                    RECORD_KEY: record[RECORD_KEY],
                    "adaptune_fingerprint": record["fingerprint"][:64],
                },
            )
            log.info("%s: created job %s", model, job.id)
            return job
        except openai.APIStatusError as error:
            reason = refusal_reason(error)
            if reason is not None:
                raise Refused(reason) from None
            if error.status_code not in (408, 409, 429) and error.status_code < 500:
                raise
            last_error = error
        except openai.APIConnectionError as error:  # timeouts included
            last_error = error
        log.warning(
            "%s: creating the job failed (%s: %s); looking for it before any new attempt",
            model,
            last_error.__class__.__name__,
            last_error,
        )
    job = find_job(client, record)
    if job is not None:
        return job
    raise RuntimeError(
        f"{model}: the fine-tuning job could not be created "
        f"({last_error.__class__.__name__}: {last_error}) "
        f"and no job made from {record.get('training_file')} exists; "
        "a rerun looks again before creating one"
    )


def find_job(client, record: dict):
    """A job of this account made from `record`: by its metadata (where the endpoint filters on
    it), then among the latest jobs by its training file or metadata; always one for the
    record's base model (a file id names one upload, but a job of another model is never ours)."""

    def ours(job) -> bool:
        return job.model == record["model"] and (
            job.training_file == record["training_file"]
            or (job.metadata or {}).get(RECORD_KEY) == record[RECORD_KEY]
        )

    for query in ({"metadata": {RECORD_KEY: record[RECORD_KEY]}}, {}):
        for index, job in enumerate(_jobs(client, query)):
            if ours(job):
                return job
            if index + 1 >= JOB_LOOKBACK:
                break
    return None


def _jobs(client, query: dict):
    """The account's jobs, newest first; none for a metadata filter the endpoint rejects."""
    import openai

    try:
        yield from client.fine_tuning.jobs.list(limit=50, **query)
    except openai.BadRequestError:
        if not query:
            raise
        log.info("the endpoint does not filter jobs by metadata; looking through the latest jobs")


def _log_events(client, job_id: str, seen: set[str]) -> None:
    import openai

    try:
        events = client.fine_tuning.jobs.list_events(job_id, limit=50).data
    except openai.APIError as error:  # events are for the log only; never fail the wait on them
        log.warning("job %s: could not list events (%s)", job_id, error.__class__.__name__)
        return
    for event in reversed(events):  # the API lists newest first
        if event.id not in seen:
            seen.add(event.id)
            log.info("job %s event [%s] %s", job_id, event.level, event.message)


def _upload(client, files: dict[str, Path]) -> dict:
    ids = {}
    for name, path in files.items():
        with open(path, "rb") as handle:
            uploaded = client.files.create(file=handle, purpose="fine-tune")
        log.info("uploaded %s as %s", path, uploaded.id)
        ids["training_file" if name == "train" else "validation_file"] = uploaded.id
    return ids


def _delete_files(client, record: dict, record_path: Path, settings: OpenAISettings) -> None:
    """Remove the uploaded files from the account once their job has ended (or was refused)."""
    import openai

    if not settings.delete_files or record.get("files_deleted") or not record.get("training_file"):
        return
    for key in ("training_file", "validation_file"):
        try:
            client.files.delete(record[key])
            log.info("deleted uploaded file %s", record[key])
        except openai.NotFoundError:
            pass  # already gone
        except openai.APIError as error:  # the result stands; the file stays in the account
            log.warning(
                "could not delete uploaded file %s (%s); delete it by hand", record[key], error
            )
            return
    record["files_deleted"] = True
    _save(record_path, record)


def _check_limit(model: str, estimate: int, settings: OpenAISettings) -> None:
    if estimate > settings.max_training_tokens:
        raise ValueError(
            f"{model}: estimated training tokens {estimate} "
            f"exceed config openai.max_training_tokens = {settings.max_training_tokens}; "
            "raise the limit or train on less data or fewer epochs"
        )


def _write(output, result: dict, settings: OpenAISettings, stopwatch: Stopwatch) -> dict:
    result["provenance"] = provenance(
        {
            "model": result["base_model"],
            "style": settings.style,
            "epochs": settings.epochs,
            "endpoint": result["endpoint"],
        },
        settings.seed,
        stopwatch,
    )
    write_json(output, result)
    return result


def _jsonl(lines: list[dict]) -> str:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def _fingerprint(
    model: str, kind: str, settings: OpenAISettings, url: str, contents: dict[str, str]
) -> str:
    """What makes a job this job: the model, the endpoint, the settings it was made with, its
    data."""
    digest = hashlib.sha256()
    what = {
        "model": model,
        "kind": kind,
        "epochs": settings.epochs,
        "seed": settings.seed,
        "suffix": SUFFIX,
        "endpoint": url,
    }
    digest.update(json.dumps(what, sort_keys=True).encode())
    for name in ("train", "val"):
        digest.update(contents[name].encode())
    return digest.hexdigest()


def _load_record(path: Path, model: str, fingerprint: str, url: str) -> dict:
    if not path.exists():
        # A new record gets its own id, which its job carries as metadata: a user who deletes
        # the record on purpose gets a new job, not the old one found again.
        return {
            "model": model,
            "endpoint": url,
            "fingerprint": fingerprint,
            RECORD_KEY: uuid.uuid4().hex,
        }
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path}: not valid JSON ({error.msg}); it records a fine-tuning job - "
            "repair it, or delete it to start a new (paid) job"
        ) from None
    if record.get("fingerprint") != fingerprint:
        raise RuntimeError(
            f"{path} records job {record.get('job_id')} for other training data or settings "
            f"(model, epochs, seed, endpoint or the prompts changed). Restore them to resume that "
            "job, or delete the record to start a new (paid) job."
        )
    record.setdefault(RECORD_KEY, uuid.uuid4().hex)
    return record


def _save(path: Path, record: dict) -> None:
    write_json(path, record)
