"""Fine-tune one OpenAI model on the training prompts, at most one paid job per model.

The job is recorded in a job record (results/openai/{model}/job.json) as soon as it exists,
and the record is not an output of the rule, so Snakemake leaves it in place when a job
fails or is interrupted. A rerun reads the record and waits on the same job instead of
paying for a second one. The steps, each recorded before the next:

1. write the training and validation files in the model's format, estimate the training
   tokens (per epoch x epochs) and refuse to go on above openai.max_training_tokens;
2. upload both files (the record gets their ids);
3. create the job (the record gets its id) - unless a job on the recorded training file
   already exists, which closes the gap between "created" and "recorded";
4. poll with backoff until the job ends; write model.json with the fine-tuned model id,
   or fail with the job's error.

A record made from other data or settings (its fingerprint differs) stops the run: starting
another paid job is left to the user, who deletes the record.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Callable, Sequence

from adaptune.io import write_json, write_text
from adaptune.openai_client import (
    OpenAISettings,
    example_tokens,
    make_client,
    token_counter,
    training_example,
)
from adaptune.prompts import read_prompts
from adaptune.provenance import Stopwatch, provenance

log = logging.getLogger(__name__)

TERMINAL = ("succeeded", "failed", "cancelled")
SUFFIX = "adaptune"
# How many of the account's most recent jobs to look through for one already created.
JOB_LOOKBACK = 100


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
    model record ({"fine_tuned_model", "job_id", "trained_tokens", ...}) at `output`."""
    stopwatch = Stopwatch()
    record_path = Path(job_record)
    kind = settings.kind(model)
    train_lines = [training_example(r, kind, labels) for r in read_prompts(train, labels)]
    val_lines = [training_example(r, kind, labels) for r in read_prompts(val, labels)]

    contents = {"train": _jsonl(train_lines), "val": _jsonl(val_lines)}

    count, method = token_counter(model)
    per_epoch = sum(example_tokens(line, count) for line in train_lines)
    estimate = per_epoch * settings.epochs
    log.info(
        "%s: %d training and %d validation examples (%s format); estimated training tokens "
        "%d per epoch x %d epochs = %d (%s; limit openai.max_training_tokens = %d)",
        model, len(train_lines), len(val_lines), kind, per_epoch, settings.epochs, estimate,
        method, settings.max_training_tokens,
    )
    print(f"{model}: estimated training tokens {estimate} ({method})", flush=True)

    fingerprint = _fingerprint(model, kind, settings, contents)
    record = _load_record(record_path, model, fingerprint)
    # The files as uploaded, kept beside the record (after its check, so they match it).
    files = {name: record_path.parent / f"{name}.{kind}.jsonl" for name in contents}
    for name, path in files.items():
        write_text(path, contents[name])
    client = client or make_client(settings)

    if record.get("job_id"):
        log.info("%s: resuming job %s from %s", model, record["job_id"], record_path)
        job = client.fine_tuning.jobs.retrieve(record["job_id"])
    else:
        if not record.get("training_file"):
            # Uploads cost nothing; the limit guards the job, but fail before any request.
            _check_limit(model, estimate, settings)
            record.update(_upload(client, files))
            _save(record_path, record)
        job = _find_job(client, record["training_file"])
        if job is not None:
            log.info("%s: found job %s on training file %s; not creating another",
                     model, job.id, record["training_file"])
        else:
            _check_limit(model, estimate, settings)
            job = client.fine_tuning.jobs.create(
                model=model,
                training_file=record["training_file"],
                validation_file=record["validation_file"],
                method={"type": "supervised",
                        "supervised": {"hyperparameters": {"n_epochs": settings.epochs}}},
                seed=settings.seed,
                suffix=SUFFIX,
                metadata={"adaptune_fingerprint": fingerprint[:64]},
            )
            log.info("%s: created job %s", model, job.id)
        record.update(job_id=job.id, status=job.status)
        _save(record_path, record)

    job = wait(client, job, record_path, record, settings, sleep)
    if job.status != "succeeded":
        error = job.error
        reason = f"{error.code}: {error.message}" if error else "no error given"
        raise RuntimeError(
            f"{model}: fine-tuning job {job.id} {job.status} ({reason}). The record {record_path} "
            "keeps it; delete the record to start a new (paid) job."
        )
    if not job.fine_tuned_model:
        raise RuntimeError(f"{model}: job {job.id} succeeded but names no fine-tuned model")

    result = {
        "base_model": model,
        "kind": kind,
        "fine_tuned_model": job.fine_tuned_model,
        "job_id": job.id,
        "status": job.status,
        "trained_tokens": job.trained_tokens,
        "estimated_training_tokens": estimate,
        "token_estimate_method": method,
        "epochs": settings.epochs,
        "training_file": record["training_file"],
        "validation_file": record["validation_file"],
        "train_examples": len(train_lines),
        "val_examples": len(val_lines),
        "provenance": provenance(
            {"model": model, "style": settings.style, "epochs": settings.epochs,
             "base_url": settings.base_url}, settings.seed, stopwatch),
    }
    write_json(output, result)
    log.info("%s: fine-tuned model %s (%s trained tokens)", model, job.fine_tuned_model, job.trained_tokens)
    return result


def wait(client, job, record_path: Path, record: dict, settings: OpenAISettings,
         sleep: Callable[[float], None] = time.sleep):
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


def _find_job(client, training_file: str):
    """A job of this account already made on `training_file` (a file uploaded by this run)."""
    for index, job in enumerate(client.fine_tuning.jobs.list(limit=50)):
        if job.training_file == training_file:
            return job
        if index + 1 >= JOB_LOOKBACK:
            break
    return None


def _upload(client, files: dict[str, Path]) -> dict:
    ids = {}
    for name, path in files.items():
        with open(path, "rb") as handle:
            uploaded = client.files.create(file=handle, purpose="fine-tune")
        log.info("uploaded %s as %s", path, uploaded.id)
        ids["training_file" if name == "train" else "validation_file"] = uploaded.id
    return ids


def _check_limit(model: str, estimate: int, settings: OpenAISettings) -> None:
    if estimate > settings.max_training_tokens:
        raise ValueError(
            f"{model}: estimated training tokens {estimate} exceed config openai.max_training_tokens "
            f"= {settings.max_training_tokens}; raise the limit or train on less data or fewer epochs"
        )


def _jsonl(lines: list[dict]) -> str:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def _fingerprint(model: str, kind: str, settings: OpenAISettings, contents: dict[str, str]) -> str:
    """What makes a job this job: the model, the settings it was made with, and its data."""
    digest = hashlib.sha256()
    what = {"model": model, "kind": kind, "epochs": settings.epochs, "seed": settings.seed,
            "suffix": SUFFIX, "base_url": settings.base_url}
    digest.update(json.dumps(what, sort_keys=True).encode())
    for name in ("train", "val"):
        digest.update(contents[name].encode())
    return digest.hexdigest()


def _load_record(path: Path, model: str, fingerprint: str) -> dict:
    if not path.exists():
        return {"model": model, "fingerprint": fingerprint}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error.msg}); it records a fine-tuning job - "
                         "repair it, or delete it to start a new (paid) job") from None
    if record.get("fingerprint") != fingerprint:
        raise RuntimeError(
            f"{path} records job {record.get('job_id')} for other training data or settings "
            f"(model, epochs, seed, base_url or the prompts changed). Restore them to resume that "
            "job, or delete the record to start a new (paid) job."
        )
    return record


def _save(path: Path, record: dict) -> None:
    write_json(path, record)
