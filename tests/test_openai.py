"""The OpenAI stage's fine-tuning against a real HTTP server on 127.0.0.1 (tests/fake_openai.py),
through the real openai client: jobs that succeed, fail, are refused or interrupted and resumed
(exactly one paid job per model, whatever the network does), models the endpoint no longer
serves, uploaded files deleted, and the key kept out of every file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO
from openai_helpers import KEY, LABELS, fake_server, settings_for, write_prompts

from adaptune.openai.client import api_key, endpoint
from adaptune.openai.finetune import finetune
from adaptune.openai.settings import OpenAISettings

MODEL = "gpt-4o-mini-2024-07-18"


@pytest.fixture
def prompts(tmp_path) -> dict[str, Path]:
    return write_prompts(tmp_path)


@pytest.fixture
def server(monkeypatch):
    yield from fake_server(monkeypatch)


def run_finetune(prompts, tmp_path, settings, model=MODEL):
    return finetune(
        model,
        prompts["train"],
        prompts["val"],
        tmp_path / "openai" / model / "model.json",
        tmp_path / "openai" / model / "job.json",
        LABELS,
        settings,
    )


def creates(server) -> int:
    return server.count("POST", "/v1/fine_tuning/jobs")


# --- fine-tuning ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, line_keys",
    [
        ("babbage-002", {"prompt", "completion"}),
        ("gpt-4o-mini-2024-07-18", {"messages"}),
    ],
)
def test_a_job_that_succeeds_gives_the_fine_tuned_model(
    server, prompts, tmp_path, model, line_keys
):
    result = run_finetune(prompts, tmp_path, settings_for(server), model)

    assert creates(server) == 1
    assert server.count("POST", "/v1/files") == 2
    assert server.count("GET", f"/v1/models/{model}") == 1  # asked before anything was uploaded
    job = next(iter(server.jobs.values())).data
    assert result["status"] == "ran" and result["endpoint"] == server.base_url
    assert result["fine_tuned_model"] == job["fine_tuned_model"] and result[
        "fine_tuned_model"
    ].startswith("ft:")
    assert result["trained_tokens"] == job["trained_tokens"] > 0
    assert (
        json.loads((tmp_path / "openai" / model / "model.json").read_text())["job_id"] == job["id"]
    )
    record = json.loads((tmp_path / "openai" / model / "job.json").read_text())
    assert record["job_id"] == job["id"] and record["status"] == "succeeded"
    assert record["endpoint"] == server.base_url
    assert job["metadata"]["adaptune_record"] == record["adaptune_record"]
    # The uploaded data was in the model's format, and the job got the configured epochs.
    training = server.jobs[job["id"]].data["training_file"]
    lines = [
        json.loads(line)
        for line in (tmp_path / "openai" / model / f"train.{result['kind']}.jsonl").open()
    ]
    assert len(lines) == 12 and all(set(line) == line_keys for line in lines)
    if "messages" in line_keys:
        assert [m["role"] for m in lines[0]["messages"]] == ["system", "user", "assistant"]
        assert lines[0]["messages"][-1]["content"] in LABELS
    else:
        assert lines[0]["completion"] == " hate"
    assert job["hyperparameters"]["n_epochs"] == 3
    # Both uploads were deleted from the account once the job had ended.
    assert (
        sorted(server.deleted_files) == sorted([training, job["validation_file"]])
        and not server.files
    )
    assert record["files_deleted"] is True
    assert all(r.authorization == f"Bearer {KEY}" for r in server.requests)
    # The estimate (characters / 4 without tiktoken) is the per-epoch count times epochs.
    assert result["estimated_training_tokens"] % 3 == 0 and result["estimated_training_tokens"] > 0


def test_uploads_stay_when_delete_files_is_off(server, prompts, tmp_path):
    run_finetune(prompts, tmp_path, settings_for(server, delete_files=False))
    assert server.deleted_files == [] and len(server.files) == 2


@pytest.mark.parametrize(
    "outcome, reason",
    [
        ("failed", "failed: invalid_training_file: The training file has too few examples"),
        ("moderation", "failed: invalid_training_file: .*blocked by our moderation system"),
    ],
)
def test_a_failed_job_is_a_not_run_result_and_never_retried(
    server, prompts, tmp_path, outcome, reason
):
    server.outcomes[MODEL] = outcome
    settings = settings_for(server)
    result = run_finetune(prompts, tmp_path, settings)
    assert result["status"] == "not_run" and "fine_tuned_model" not in result
    assert result["reason"].startswith("fine-tuning job ftjob-0001 ")
    assert __import__("re").search(reason, result["reason"])
    written = json.loads((tmp_path / "openai" / MODEL / "model.json").read_text())
    assert written["status"] == "not_run" and written["reason"] == result["reason"]
    assert len(server.deleted_files) == 2

    # Rerun (model.json deleted, the record kept): the same failed job is reported, none created.
    (tmp_path / "openai" / MODEL / "model.json").unlink()
    again = run_finetune(prompts, tmp_path, settings)
    assert again["reason"] == result["reason"]
    assert creates(server) == 1 and server.count("POST", "/v1/files") == 2


@pytest.mark.parametrize(
    "refuse, reason",
    [
        (
            "missing",
            "model gpt-4o-mini-2024-07-18 is not available on this endpoint "
            "(HTTP 404 model_not_found",
        ),
        ("shut down", "model gpt-4o-mini-2024-07-18 was shut down on 2025-01-14"),
        ("no fine-tuning", "fine-tuning is not available to this key (HTTP 403 permission_denied"),
    ],
)
def test_a_model_the_endpoint_does_not_serve_is_not_run_and_nothing_is_uploaded(
    server, prompts, tmp_path, refuse, reason
):
    if refuse == "missing":
        server.missing.add(MODEL)
    elif refuse == "shut down":
        server.shutdown_dates[MODEL] = "2025-01-14"
    else:
        server.finetuning_forbidden = True
    result = run_finetune(prompts, tmp_path, settings_for(server))
    assert result["status"] == "not_run" and result["reason"].startswith(reason)
    assert server.count("POST", "/v1/files") == 0 and creates(server) == 0


def test_a_future_shutdown_date_is_only_a_warning(server, prompts, tmp_path, caplog):
    server.shutdown_dates[MODEL] = "2999-01-14"
    assert run_finetune(prompts, tmp_path, settings_for(server))["status"] == "ran"
    assert "scheduled to shut down on 2999-01-14" in caplog.text


@pytest.mark.parametrize(
    "status, code, message",
    [
        (
            400,
            "model_not_available",
            "Model gpt-4o-mini-2024-07-18 is not available for fine-tuning",
        ),
        (403, "permission_denied", "Your organization may not create fine-tuning jobs"),
    ],
)
def test_a_refused_job_is_a_not_run_result_and_its_uploads_are_deleted(
    server, prompts, tmp_path, status, code, message
):
    server.refuse_finetune[MODEL] = (status, code, message)
    result = run_finetune(prompts, tmp_path, settings_for(server))
    assert result["status"] == "not_run"
    assert result["reason"] == f"fine-tuning job refused: HTTP {status} {code}: {message}"
    assert server.jobs == {} and creates(server) == 1  # one request, never retried
    assert len(server.deleted_files) == 2 and not server.files


def test_a_create_whose_answer_is_lost_makes_one_job_across_retry_and_rerun(
    server, prompts, tmp_path
):
    # The server creates the job and drops the connection: the client gets no answer and does not
    # retry by itself; the stage finds the job before it would create another.
    server.outcomes[MODEL] = "hang"
    server.drop_after_create(1)
    settings = settings_for(server, create_attempts=3)
    record_path = tmp_path / "openai" / MODEL / "job.json"
    finished = {}

    def run():
        try:
            finished["result"] = run_finetune(prompts, tmp_path, settings)
        except Exception as error:  # noqa: BLE001 - reported below
            finished["error"] = error

    import threading

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 30
    while not (record_path.exists() and json.loads(record_path.read_text()).get("job_id")):
        assert time.monotonic() < deadline and thread.is_alive(), finished
        time.sleep(0.02)
    (job_id,) = server.jobs
    assert json.loads(record_path.read_text())["job_id"] == job_id
    server.finish(job_id)
    thread.join(30)
    assert finished.get("result", {}).get("job_id") == job_id, finished
    assert creates(server) == 1

    # A rerun that lost its record of the job id (killed before writing it) finds the same job.
    record = json.loads(record_path.read_text())
    record.pop("job_id")
    record.update(files_deleted=False, training_file=server.jobs[job_id].data["training_file"])
    record_path.write_text(json.dumps(record))
    (tmp_path / "openai" / MODEL / "model.json").unlink()
    assert run_finetune(prompts, tmp_path, settings)["job_id"] == job_id
    assert creates(server) == 1 and len(server.jobs) == 1


def test_an_endpoint_without_metadata_filters_still_finds_the_job_by_its_file(
    server, prompts, tmp_path
):
    server.filters_metadata = False
    server.drop_after_create(1)
    result = run_finetune(prompts, tmp_path, settings_for(server))
    assert result["status"] == "ran" and creates(server) == 1 and len(server.jobs) == 1


def test_a_create_that_keeps_failing_looks_for_the_job_each_time_and_creates_none(
    server, prompts, tmp_path
):
    server.fail_next(2, 503, "/v1/fine_tuning/jobs", method="POST")
    with pytest.raises(
        RuntimeError, match="could not be created .InternalServerError.*a rerun looks again"
    ):
        run_finetune(prompts, tmp_path, settings_for(server, create_attempts=2))
    assert server.jobs == {}
    # Each attempt looked for the job first (by metadata, then among the latest jobs).
    assert server.count("GET", "/v1/fine_tuning/jobs") >= 1 + 2 * 2
    # The rerun reuses the uploads, looks again, and creates the one job.
    result = run_finetune(prompts, tmp_path, settings_for(server))
    assert (
        result["status"] == "ran"
        and creates(server) == 1
        and server.count("POST", "/v1/files") == 2
    )


CRASHING_RUN = """
import sys
from pathlib import Path
from adaptune.openai.finetune import finetune
from adaptune.openai.settings import OpenAISettings
base_url, train, val, out = sys.argv[1:5]
settings = OpenAISettings(base_url=base_url, poll_interval_s=0.01, max_poll_interval_s=0.02,
                          epochs=3)
finetune("gpt-4o-mini-2024-07-18", train, val, Path(out) / "model.json", Path(out) / "job.json",
         ["hate", "offensive", "neutral"], settings)
"""


def start_and_kill(server, prompts, out: Path) -> dict:
    """Run a fine-tuning in another process and kill it (SIGKILL) once its job is recorded."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CRASHING_RUN,
            server.base_url,
            str(prompts["train"]),
            str(prompts["val"]),
            str(out),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    record_path = out / "job.json"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if record_path.exists() and json.loads(record_path.read_text()).get("job_id"):
                break
            assert process.poll() is None, process.stdout.read().decode()
            time.sleep(0.05)
        else:
            raise AssertionError("the job was never recorded")
        time.sleep(0.2)  # let it poll a little: killed mid-wait
    finally:
        process.kill()
        process.wait()
    return json.loads(record_path.read_text())


def test_a_run_killed_while_waiting_resumes_the_same_job(server, prompts, tmp_path):
    server.outcomes[MODEL] = "hang"
    out = tmp_path / "openai" / MODEL
    record = start_and_kill(server, prompts, out)
    assert not (out / "model.json").exists()
    assert creates(server) == 1
    assert server.jobs[record["job_id"]].data["status"] in ("validating_files", "queued", "running")

    server.finish(record["job_id"])
    result = run_finetune(prompts, tmp_path, settings_for(server))
    assert result["job_id"] == record["job_id"]
    assert creates(server) == 1
    assert server.count("POST", "/v1/files") == 2


def test_a_job_created_but_not_yet_recorded_is_found_not_created_again(server, prompts, tmp_path):
    # Killed between the create request and writing its id: the record has the uploads only.
    server.outcomes[MODEL] = "hang"
    out = tmp_path / "openai" / MODEL
    record = start_and_kill(server, prompts, out)
    job_id = record.pop("job_id")
    (out / "job.json").write_text(json.dumps(record))

    server.finish(job_id)
    result = run_finetune(prompts, tmp_path, settings_for(server))
    assert result["job_id"] == job_id
    assert creates(server) == 1
    assert server.count("POST", "/v1/files") == 2


def test_the_token_limit_stops_before_any_request(server, prompts, tmp_path):
    with pytest.raises(
        ValueError,
        match=r"estimated training tokens \d+ exceed config openai.max_training_tokens = 10",
    ):
        run_finetune(prompts, tmp_path, settings_for(server, max_training_tokens=10))
    assert server.requests == []


def test_a_record_of_other_settings_is_not_silently_replaced(server, prompts, tmp_path):
    run_finetune(prompts, tmp_path, settings_for(server))
    with pytest.raises(RuntimeError, match="other training data or settings"):
        run_finetune(prompts, tmp_path, settings_for(server, epochs=5))
    assert creates(server) == 1


def test_poll_errors_crash_the_run_and_the_rerun_resumes(server, prompts, tmp_path):
    # Every retry of a poll fails: the run fails with the job recorded; the rerun resumes it.
    server.fail_next(3, 500, r"/v1/fine_tuning/jobs/[^/]+")
    with pytest.raises(Exception, match="scripted failure 500"):
        run_finetune(prompts, tmp_path, settings_for(server, max_retries=2))
    run_finetune(prompts, tmp_path, settings_for(server))
    assert creates(server) == 1


def test_a_missing_key_is_a_clear_error(prompts, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(RuntimeError, match="OPENAI_API_KEY is not set"):
        run_finetune(prompts, tmp_path, OpenAISettings(base_url="http://127.0.0.1:9/v1"))


# --- the key ----------------------------------------------------------------------------------


def test_a_key_from_a_crlf_file_is_stripped_and_used(server, prompts, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY + "\r\n")
    assert api_key() == KEY
    assert run_finetune(prompts, tmp_path, settings_for(server))["status"] == "ran"
    assert all(r.authorization == f"Bearer {KEY}" for r in server.requests)


@pytest.mark.parametrize(
    "bad",
    [KEY[:10] + " " + KEY[10:], KEY[:10] + "\x7f" + KEY[10:], "  \r\n"],
    ids=["space", "control character", "blank"],
)  # ids: the key is random
def test_a_malformed_key_is_refused_without_quoting_it(bad, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", bad)
    with pytest.raises((ValueError, RuntimeError)) as error:
        api_key()
    assert KEY[:10] not in str(error.value) and KEY[10:] not in str(error.value)


def test_the_endpoint_is_the_setting_else_the_variable_else_openai(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert endpoint(OpenAISettings()) == "https://api.openai.com/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1/")
    assert endpoint(OpenAISettings()) == "http://127.0.0.1:8080/v1"
    assert endpoint(OpenAISettings(base_url="http://localhost:9/v1")) == "http://localhost:9/v1"


# A job as a rule runs it: log_to, guard_secret, then a client built straight from the raw key,
# whose "\r" makes the HTTP layer raise an error that quotes the key; the job dies uncaught.
CRASH_WITH_RAW_KEY = """
import os, sys
from adaptune.core.logs import log_to
log_to(sys.argv[2])
from adaptune.openai.client import guard_secret
guard_secret()
import logging, openai
logging.getLogger("job").info("starting with %s", os.environ["OPENAI_API_KEY"])
openai.OpenAI(api_key=os.environ["OPENAI_API_KEY"], base_url=sys.argv[1],
              max_retries=0).models.list()
"""


def test_a_crash_that_quotes_the_key_writes_it_nowhere(server, tmp_path):
    log = tmp_path / "logs" / "job.log"
    log.parent.mkdir()
    env = {
        **os.environ,
        "OPENAI_API_KEY": KEY + "\r",
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", CRASH_WITH_RAW_KEY, server.base_url, str(log)],
        env=env,
        capture_output=True,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    text = log.read_text()
    # The crash happened where the key is quoted, and its traceback is in the log, masked.
    assert "Traceback" in text and "Illegal header value" in text and "[OPENAI_API_KEY]" in text
    assert b"adaptune: error:" in result.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    leaks = [str(p) for p in written if KEY.encode() in p.read_bytes()]
    assert leaks == [] and KEY.encode() not in result.stdout + result.stderr


# --- one model's job is never another's ---------------------------------------------------------

OTHER_MODEL = "gpt-4.1-mini-2025-04-14"


def test_a_refused_model_after_another_models_run_is_not_run(server, prompts, tmp_path):
    """The first model's uploads are deleted once its job ends; the second model's uploads must
    not lead it to the first model's job."""
    first = run_finetune(prompts, tmp_path, settings_for(server))
    server.refuse_finetune[OTHER_MODEL] = (400, "model_not_available", "fine-tuning not available")
    second = run_finetune(prompts, tmp_path, settings_for(server), OTHER_MODEL)
    assert first["status"] == "ran"
    assert second["status"] == "not_run" and "fine_tuned_model" not in second
    assert creates(server) == 2


def test_the_fake_server_never_reuses_a_file_id(server):
    import io

    from adaptune.openai.client import make_client

    client = make_client(settings_for(server))
    first = client.files.create(file=("a.jsonl", io.BytesIO(b'{"a": 1}\n')), purpose="fine-tune").id
    client.files.delete(first)
    second = client.files.create(
        file=("b.jsonl", io.BytesIO(b'{"b": 1}\n')), purpose="fine-tune"
    ).id
    assert second != first


def test_a_job_found_by_its_training_file_must_be_for_the_requested_model(
    server, prompts, tmp_path
):
    from adaptune.openai.client import make_client
    from adaptune.openai.finetune import RECORD_KEY, find_job

    result = run_finetune(prompts, tmp_path, settings_for(server, delete_files=False))
    client = make_client(settings_for(server))
    same_file = {"training_file": result["training_file"], RECORD_KEY: "another-record"}
    assert find_job(client, {**same_file, "model": MODEL}).id == result["job_id"]
    assert find_job(client, {**same_file, "model": OTHER_MODEL}) is None
