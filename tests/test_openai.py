"""The OpenAI stage against a real HTTP server on 127.0.0.1 (tests/fake_openai.py), through the
real openai client: fine-tuning jobs that succeed, fail, or are interrupted and resumed (one
paid job per model), retried 429/500 answers, answers that are no label, the response cache,
and the pipeline with OpenAI enabled writing the key into no file."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, WORDS
from fake_openai import FakeOpenAI

from adaptune.io import write_jsonl
from adaptune.openai_client import OpenAISettings, chat_messages, guard_secret
from adaptune.openai_eval import (
    EvaluationSettings,
    System,
    demonstrations,
    evaluate,
    parse_answer,
    token_label,
    word_label,
)
from adaptune.openai_finetune import finetune

LABELS = ["hate", "offensive", "neutral"]
KEY = "sk-test-" + os.urandom(12).hex()
TEMPLATE = "Classify the tweet as one of: hate, offensive, neutral.\n\nTweet: {text}\nCategory:"
TWEETS = {"hate": "those people are hate vermin", "offensive": "you offensive idiot",
          "neutral": "lovely weather today"}


def prompt_records(n_per_label: int, prefix: str) -> list[dict]:
    records = []
    for number in range(n_per_label):
        for label in LABELS:
            text = f"{TWEETS[label]} #{prefix}{number}"
            records.append({"id": f"{prefix}{number}-{label}", "text": text,
                            "prompt": TEMPLATE.format(text=text), "completion": " " + label, "label": label})
    return records


@pytest.fixture
def prompts(tmp_path) -> dict[str, Path]:
    paths = {}
    for split, n in (("train", 4), ("val", 2), ("test", 3)):
        paths[split] = tmp_path / "prompts" / f"{split}.jsonl"
        write_jsonl(paths[split], prompt_records(n, split))
    return paths


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeOpenAI(key=KEY) as fake:
        yield fake


def settings_for(server, **overrides) -> OpenAISettings:
    values = dict(base_url=server.base_url, poll_interval_s=0.01, max_poll_interval_s=0.02,
                  max_retries=2, timeout_s=10, epochs=3)
    return OpenAISettings(**{**values, **overrides})


def run_finetune(prompts, tmp_path, settings, model="babbage-002"):
    return finetune(model, prompts["train"], prompts["val"], tmp_path / "openai" / model / "model.json",
                    tmp_path / "openai" / model / "job.json", LABELS, settings)


# --- fine-tuning ------------------------------------------------------------------------------

@pytest.mark.parametrize("model, line_keys", [
    ("babbage-002", {"prompt", "completion"}),
    ("gpt-4o-mini-2024-07-18", {"messages"}),
])
def test_a_job_that_succeeds_gives_the_fine_tuned_model(server, prompts, tmp_path, model, line_keys):
    result = run_finetune(prompts, tmp_path, settings_for(server), model)

    assert server.count("POST", "/v1/fine_tuning/jobs") == 1
    assert server.count("POST", "/v1/files") == 2
    job = next(iter(server.jobs.values())).data
    assert result["fine_tuned_model"] == job["fine_tuned_model"] and result["fine_tuned_model"].startswith("ft:")
    assert result["trained_tokens"] == job["trained_tokens"] > 0
    assert json.loads((tmp_path / "openai" / model / "model.json").read_text())["job_id"] == job["id"]
    record = json.loads((tmp_path / "openai" / model / "job.json").read_text())
    assert record["job_id"] == job["id"] and record["status"] == "succeeded"
    # The uploaded data is in the model's format, and the job got the configured epochs.
    training = server.files[job["training_file"]]["lines"]
    assert len(training) == 12 and all(set(line) == line_keys for line in training)
    if "messages" in line_keys:
        assert [m["role"] for m in training[0]["messages"]] == ["system", "user", "assistant"]
        assert training[0]["messages"][-1]["content"] in LABELS
    else:
        assert training[0]["completion"] == " hate"
    assert job["hyperparameters"]["n_epochs"] == 3
    assert server.files[job["validation_file"]]["purpose"] == "fine-tune"
    assert all(r.authorization == f"Bearer {KEY}" for r in server.requests)
    # The estimate (characters / 4 without tiktoken) is the per-epoch count times epochs.
    assert result["estimated_training_tokens"] % 3 == 0 and result["estimated_training_tokens"] > 0


def test_a_job_that_fails_raises_its_error_and_a_rerun_pays_nothing(server, prompts, tmp_path):
    server.outcomes["babbage-002"] = "failed"
    settings = settings_for(server)
    with pytest.raises(RuntimeError, match="failed .invalid_training_file: The training file has too few"):
        run_finetune(prompts, tmp_path, settings)
    assert not (tmp_path / "openai" / "babbage-002" / "model.json").exists()

    with pytest.raises(RuntimeError, match="delete the record to start a new"):
        run_finetune(prompts, tmp_path, settings)
    assert server.count("POST", "/v1/fine_tuning/jobs") == 1
    assert server.count("POST", "/v1/files") == 2


CRASHING_RUN = """
import sys
from pathlib import Path
from adaptune.openai_client import OpenAISettings
from adaptune.openai_finetune import finetune
base_url, train, val, out = sys.argv[1:5]
settings = OpenAISettings(base_url=base_url, poll_interval_s=0.01, max_poll_interval_s=0.02, epochs=3)
finetune("babbage-002", train, val, Path(out) / "model.json", Path(out) / "job.json",
         ["hate", "offensive", "neutral"], settings)
"""


def start_and_kill(server, prompts, out: Path) -> dict:
    """Run a fine-tuning in another process and kill it (SIGKILL) once its job is recorded."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-c", CRASHING_RUN, server.base_url, str(prompts["train"]),
                                str(prompts["val"]), str(out)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
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
    server.outcomes["babbage-002"] = "hang"
    out = tmp_path / "openai" / "babbage-002"
    record = start_and_kill(server, prompts, out)
    assert not (out / "model.json").exists()
    assert server.count("POST", "/v1/fine_tuning/jobs") == 1
    assert server.jobs[record["job_id"]].data["status"] in ("validating_files", "queued", "running")

    server.finish(record["job_id"])
    result = run_finetune(prompts, tmp_path, settings_for(server))
    assert result["job_id"] == record["job_id"]
    assert server.count("POST", "/v1/fine_tuning/jobs") == 1
    assert server.count("POST", "/v1/files") == 2


def test_a_job_created_but_not_yet_recorded_is_found_not_created_again(server, prompts, tmp_path):
    # Killed between the create request and writing its id: the record has the uploads only.
    server.outcomes["babbage-002"] = "hang"
    out = tmp_path / "openai" / "babbage-002"
    record = start_and_kill(server, prompts, out)
    job_id = record.pop("job_id")
    (out / "job.json").write_text(json.dumps(record))

    server.finish(job_id)
    result = run_finetune(prompts, tmp_path, settings_for(server))
    assert result["job_id"] == job_id
    assert server.count("POST", "/v1/fine_tuning/jobs") == 1
    assert server.count("POST", "/v1/files") == 2


def test_the_token_limit_stops_before_any_request(server, prompts, tmp_path):
    with pytest.raises(ValueError, match=r"estimated training tokens \d+ exceed config openai.max_training_tokens = 10"):
        run_finetune(prompts, tmp_path, settings_for(server, max_training_tokens=10))
    assert server.requests == []


def test_a_record_of_other_settings_is_not_silently_replaced(server, prompts, tmp_path):
    run_finetune(prompts, tmp_path, settings_for(server))
    with pytest.raises(RuntimeError, match="other training data or settings"):
        run_finetune(prompts, tmp_path, settings_for(server, epochs=5))
    assert server.count("POST", "/v1/fine_tuning/jobs") == 1


def test_poll_errors_crash_the_run_and_the_rerun_resumes(server, prompts, tmp_path):
    # Every retry of a poll fails: the run fails with the job recorded; the rerun resumes it.
    server.fail_next(3, 500, r"/v1/fine_tuning/jobs/[^/]+")
    with pytest.raises(Exception, match="scripted failure 500"):
        run_finetune(prompts, tmp_path, settings_for(server, max_retries=2))
    run_finetune(prompts, tmp_path, settings_for(server))
    assert server.count("POST", "/v1/fine_tuning/jobs") == 1


def test_a_missing_key_is_a_clear_error(prompts, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(RuntimeError, match="OPENAI_API_KEY is not set"):
        run_finetune(prompts, tmp_path, OpenAISettings(base_url="http://127.0.0.1:9/v1"))


# --- evaluation -------------------------------------------------------------------------------

def run_evaluate(server, prompts, tmp_path, system, splits=("test",), **overrides):
    return evaluate(system, {s: prompts[s] for s in splits}, prompts["train"], tmp_path / "eval" / system.name,
                    LABELS, settings_for(server, **overrides), EvaluationSettings(bootstrap_samples=50, seed=1),
                    tmp_path / "cache")


CHAT = System(name="gpt-4o-mini-k3", model="gpt-4o-mini", method="openai_chat", k=3, base_model="gpt-4o-mini")


def test_chat_evaluation_writes_the_contract_format_and_counts_non_labels(server, prompts, tmp_path):
    # Right on hate and neutral; on offensive tweets it refuses, which is no label.
    def answer(model, prompt):
        tweet = prompt.rsplit("Tweet:", 1)[-1]
        return "Sorry, I cannot help" if "offensive" in tweet else ("hate" if "hate" in tweet else "neutral")

    server.answer = answer
    metrics = run_evaluate(server, prompts, tmp_path, CHAT, splits=("test", "val"))

    test = json.loads((tmp_path / "eval" / CHAT.name / "metrics.json").read_text())
    assert test == json.loads(json.dumps(metrics["test"]))
    assert test["n"] == 9 and test["invalid"] == 3 and test["accuracy"] == pytest.approx(6 / 9)
    assert test["system"]["method"] == "openai_chat" and test["system"]["k"] == 3
    assert test["system"]["name"] == "openai/gpt-4o-mini-k3" and test["system"]["openai_model"] == "gpt-4o-mini"
    assert test["confusion_matrix"][1] == [0, 0, 0]  # invalid answers fall in no column
    assert len(test["provenance"]["config"]["demonstrations"]) == 3
    val = json.loads((tmp_path / "eval" / CHAT.name / "val" / "metrics.json").read_text())
    assert val["split"] == "val" and val["n"] == 6

    predictions = pd.read_csv(tmp_path / "eval" / CHAT.name / "predictions.csv", keep_default_na=False)
    assert list(predictions.columns) == ["id", "text", "gold", "predicted", "score_hate", "score_offensive",
                                         "score_neutral"]
    refused = predictions[predictions["gold"] == "offensive"]
    assert (refused["predicted"] == "").all()
    right = predictions[predictions["gold"] == "hate"].iloc[0]
    assert right["predicted"] == "hate" and float(right["score_hate"]) == pytest.approx(math.exp(-0.05))

    # The requests: temperature 0, top log-probabilities, 3 demonstrations as chat turns.
    chat = [r.body for r in server.requests if r.path == "/v1/chat/completions"]
    assert len(chat) == 15
    assert all(b["temperature"] == 0 and b["logprobs"] and b["top_logprobs"] == 5 for b in chat)
    assert [m["role"] for m in chat[0]["messages"]] == ["system"] + ["user", "assistant"] * 3 + ["user"]


def test_429_and_500_answers_are_retried(server, prompts, tmp_path):
    server.fail_next(2, 429, "/v1/chat/completions")
    server.fail_next(1, 500, "/v1/chat/completions")
    metrics = run_evaluate(server, prompts, tmp_path, CHAT, max_concurrency=1, max_retries=3)
    assert metrics["test"]["n"] == 9 and metrics["test"]["accuracy"] == 1.0
    assert server.count("POST", "/v1/chat/completions") == 9


def test_a_request_that_keeps_failing_names_its_example(server, prompts, tmp_path):
    server.fail_next(100, 500, "/v1/chat/completions")
    with pytest.raises(RuntimeError, match="gpt-4o-mini-k3: test example id .* request failed"):
        run_evaluate(server, prompts, tmp_path, CHAT, max_retries=1, max_concurrency=1)
    assert not (tmp_path / "eval" / CHAT.name / "metrics.json").exists()


def test_a_rerun_is_answered_from_the_cache(server, prompts, tmp_path):
    first = run_evaluate(server, prompts, tmp_path, CHAT)
    before = len(server.requests)
    second = run_evaluate(server, prompts, tmp_path, CHAT)
    assert len(server.requests) == before
    assert second["test"]["accuracy"] == first["test"]["accuracy"]
    # Another k is another request: it is not answered from the cache.
    run_evaluate(server, prompts, tmp_path, System("gpt-4o-mini-k0", "gpt-4o-mini", "openai_chat", 0))
    assert server.count("POST", "/v1/chat/completions") == 18


def test_a_fine_tuned_completion_model_is_asked_on_the_completions_endpoint(server, prompts, tmp_path):
    server.logprobs = False  # an endpoint without log-probabilities: the first word decides
    server.answer = lambda model, text: "Neutral." if "lovely" in text else text.split("#")[0].split()[-2] + "."
    system = System("ft-babbage-002", "ft:babbage-002:org::abc", "openai_finetune", base_model="babbage-002")
    metrics = run_evaluate(server, prompts, tmp_path, system)["test"]
    bodies = [r.body for r in server.requests if r.path == "/v1/completions"]
    assert len(bodies) == 9 and all(b["prompt"].endswith("Category:") and b["logprobs"] == 5 for b in bodies)
    assert bodies[0]["prompt"].startswith("Classify")  # no demonstrations
    # "hate." and "offensive." are labels once stripped of punctuation; "Neutral." is not (case).
    assert metrics["invalid"] == 3 and metrics["accuracy"] == pytest.approx(6 / 9)
    assert metrics["system"]["k"] is None and metrics["system"]["method"] == "openai_finetune"
    predictions = pd.read_csv(tmp_path / "eval" / system.name / "predictions.csv")
    assert predictions["score_hate"].isna().all()


# --- reading answers --------------------------------------------------------------------------

def test_labels_are_read_from_the_top_tokens_then_the_first_word():
    chat = {"choices": [{"message": {"content": "I think offensive"}, "logprobs": {"content": [
        {"token": "I", "logprob": -0.1, "top_logprobs": [
            {"token": "I", "logprob": -0.1}, {"token": " off", "logprob": -2.5}, {"token": "hate", "logprob": -3.0}]}]}}]}
    # The top token is no label: an invalid answer, though labels are among the other tokens.
    label, scores, text = parse_answer(chat, "chat", LABELS)
    assert label is None and scores["offensive"] == pytest.approx(math.exp(-2.5))
    assert scores["hate"] == pytest.approx(math.exp(-3.0)) and scores["neutral"] == 0.0
    assert text == "I think offensive"
    split = {"choices": [{"message": {"content": "offensive"}, "logprobs": {"content": [
        {"token": "off", "logprob": -0.2, "top_logprobs": [
            {"token": "off", "logprob": -0.2}, {"token": "neutral", "logprob": -1.9}]}]}}]}
    assert parse_answer(split, "chat", LABELS)[0] == "offensive"  # a label split into tokens
    space = {"choices": [{"text": " neutral", "logprobs": {"top_logprobs": [{" ": -0.1, " hate": -3.0}]}}]}
    assert parse_answer(space, "completion", LABELS)[0] == "neutral"  # a lone space: the word decides

    completion = {"choices": [{"text": " The tweet", "logprobs": {"top_logprobs": [{" The": -0.1, " This": -1.0}]}}]}
    assert parse_answer(completion, "completion", LABELS)[0] is None
    no_logprobs = {"choices": [{"text": " neutral\n", "logprobs": None}]}
    assert parse_answer(no_logprobs, "completion", LABELS)[:2] == ("neutral", None)

    assert token_label(" hate", LABELS) == "hate" and token_label("ne", LABELS) == "neutral"
    assert token_label(" ", LABELS) is None and token_label("Hate", LABELS) is None
    assert word_label("offensive, clearly", LABELS) == "offensive"
    assert word_label("", LABELS) is None and word_label("hateful", LABELS) is None


def test_demonstrations_are_balanced_and_seeded():
    train = prompt_records(5, "t")
    three = demonstrations(train, 3, LABELS, seed=7)
    assert sorted(d["label"] for d in three) == sorted(LABELS)
    assert three == demonstrations(train, 3, LABELS, seed=7)
    assert demonstrations(train, 0, LABELS, seed=7) == []
    with pytest.raises(ValueError, match="only 15 examples"):
        demonstrations(train, 16, LABELS, seed=7)
    messages = chat_messages("q", LABELS, three)
    assert messages[-1] == {"role": "user", "content": "q"} and len(messages) == 8


def test_the_key_is_masked_in_the_log(tmp_path, monkeypatch):
    import logging

    from adaptune.logs import log_to

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    log_path = tmp_path / "job.log"
    try:
        log_to(str(log_path))
        guard_secret()
        logging.getLogger("adaptune").warning("request with Bearer %s failed", KEY)
        print(f"Traceback: key={KEY}", file=sys.stderr)
        sys.stderr.flush()
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], root.level = handlers, level
    text = log_path.read_text()
    assert KEY not in text and text.count("[OPENAI_API_KEY]") == 2


# --- the pipeline -----------------------------------------------------------------------------

FINETUNED = ["babbage-002", "gpt-4o-mini-2024-07-18"]


def openai_on(base_url: str) -> dict:
    """OpenAI enabled against the fake server; the local systems reduced to the TF-IDF baseline
    so that the default target (prompts, OpenAI systems, report) builds in seconds."""
    off = {"enabled": False}
    return {
        "openai": {"enabled": True, "base_url": base_url, "finetune_models": FINETUNED,
                   "chat_models": ["gpt-4o-mini"], "chat_k": [0, 1], "epochs": 2,
                   "poll_interval_s": 0.05, "max_poll_interval_s": 0.2, "max_retries": 2, "timeout_s": 20},
        "training": {"approaches": {"layernorm": off, "lora_attention": off, "lora_all": off}},
        "evaluation": {"fewshot": {"k": []}, "baseline": {"enabled": True}},
    }


def snakemake_command(pipeline, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
            str(pipeline.workdir), "--cores", "2", *args]


def wait_for_records(pipeline, process, models, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    records = [pipeline.path(f"results/openai/{m}/job.json") for m in models]
    while time.monotonic() < deadline:
        if all(r.exists() and json.loads(r.read_text()).get("job_id") for r in records):
            return
        if process.poll() is not None:
            raise AssertionError(f"snakemake ended ({process.returncode}) before both jobs were recorded:\n"
                                 + process.stdout.read() + process.stderr.read())
        time.sleep(0.2)
    raise AssertionError("the fine-tuning jobs were never recorded")


def right_answer(model: str, prompt: str) -> str:
    """The label of a synthetic tweet of tests/conftest.py (each carries a phrase of its class)."""
    tweet = prompt.rsplit("Tweet:", 1)[-1]
    return next(LABELS[c] for c, phrases in WORDS.items() if any(p in tweet for p in phrases))


@pytest.mark.slow
def test_pipeline_with_openai_interrupted_then_rerun_pays_one_job_per_model_and_leaks_no_key(
        pipeline, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeOpenAI(key=KEY) as server:
        overrides = openai_on(server.base_url)
        for model in FINETUNED:
            server.outcomes[model] = "hang"
        server.answer = right_answer
        pipeline.write_config(overrides)

        # Ctrl-C while both fine-tuning jobs are running.
        process = subprocess.Popen(snakemake_command(pipeline), cwd=pipeline.workdir, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            wait_for_records(pipeline, process, FINETUNED)
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: to snakemake and its jobs
            process.wait(timeout=120)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
        assert process.returncode != 0
        assert server.count("POST", "/v1/fine_tuning/jobs") == 2
        for model in FINETUNED:
            assert not pipeline.path(f"results/openai/{model}/model.json").exists()

        # The jobs finish while nobody watches; the rerun picks them up.
        for job_id in list(server.jobs):
            server.finish(job_id)
        pipeline.run(config=overrides)
        pipeline.run("--report", "report.html", config=overrides)

        assert server.count("POST", "/v1/fine_tuning/jobs") == 2
        models = {json.loads(pipeline.path(f"results/openai/{m}/model.json").read_text())["fine_tuned_model"]
                  for m in FINETUNED}
        assert models == {job.data["fine_tuned_model"] for job in server.jobs.values()}
        systems = [f"ft-{m}" for m in FINETUNED] + ["gpt-4o-mini-k0", "gpt-4o-mini-k1"]
        for system in systems:
            for prefix in ("", "val/"):
                metrics = json.loads(pipeline.path(f"results/eval/openai/{system}/{prefix}metrics.json").read_text())
                assert metrics["n"] == 12 and metrics["system"]["model"] == "openai"
                assert metrics["accuracy"] == 1.0 and metrics["invalid"] == 0  # the fake answers right
        # The report lists every OpenAI system as run.
        summary = pd.read_csv(pipeline.path("results/report/summary.csv"))
        openai_rows = summary[summary["name"].str.startswith("openai/")]
        assert sorted(openai_rows["name"]) == sorted(f"openai/{s}" for s in systems)
        assert (openai_rows["status"] == "ran").all() and (openai_rows["accuracy"] == 1.0).all()
        # The fine-tuned completion model was asked on /v1/completions by its ft: id.
        asked = {r.body["model"] for r in server.requests if r.path == "/v1/completions"}
        assert asked == {m for m in models if m.startswith("ft:babbage-002")}

        # A rerun does nothing, and asks the API nothing.
        before = len(server.requests)
        again = pipeline.run(config=overrides)
        assert "Nothing to be done" in again.stdout + again.stderr
        assert len(server.requests) == before

    # The key was sent with every request, and written to no file of the run.
    assert server.requests and all(r.authorization == f"Bearer {KEY}" for r in server.requests)
    written = [p for p in pipeline.workdir.rglob("*") if p.is_file()]
    assert any(".snakemake" in p.parts for p in written) and pipeline.path("report.html").exists()
    leaks = [str(p) for p in written if KEY.encode() in p.read_bytes()]
    assert leaks == []


def planned_jobs(plan: str) -> dict[str, int]:
    """The "Job stats" table of a dry run: rule -> number of jobs."""
    rows = plan.split("Job stats:", 1)[1].split("total", 1)[0].splitlines()[3:]
    return {row.split()[0]: int(row.split()[1]) for row in rows if row.strip()}


def test_without_openai_the_plan_has_no_openai_job_and_with_it_one_per_system(pipeline, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    plan = planned_jobs(pipeline.run("-n", "--quiet", "rules").stdout)
    assert "report" in plan and not [rule for rule in plan if "openai" in rule]
    plan = planned_jobs(pipeline.run("-n", "--quiet", "rules", config=openai_on("http://127.0.0.1:9/v1")).stdout)
    assert {rule: n for rule, n in plan.items() if "openai" in rule} == {"openai_finetune": 2, "openai_evaluate": 4}


def test_openai_enabled_without_a_key_stops_before_any_job(pipeline, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = pipeline.run("-n", config=openai_on("http://127.0.0.1:9/v1"), check=False)
    assert result.returncode != 0
    assert "openai.enabled is true, but the environment variable OPENAI_API_KEY is not set" in \
        result.stdout + result.stderr
    assert not pipeline.path("results").exists()
