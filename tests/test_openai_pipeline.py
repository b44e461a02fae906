"""The OpenAI stage inside the real workflow: real `snakemake` runs against the fake server on
127.0.0.1 (tests/fake_openai.py). One study: a run interrupted while its jobs train pays one job
per model on rerun; a model whose fine-tuning the endpoint refuses, and a chat model it has shut
down, are listed by the report as not run with the reason while the rest of the study completes;
no written file holds the key."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from conftest import LABELS, REPO, WORDS, job_stats
from fake_openai import FakeOpenAI
from openai_helpers import KEY

# --- the pipeline -----------------------------------------------------------------------------

FINETUNED = ["babbage-002", "gpt-4o-mini-2024-07-18"]


def openai_on(base_url: str) -> dict:
    """OpenAI enabled against the fake server; the local systems reduced to the TF-IDF baseline
    so that the default target (prompts, OpenAI systems, report) builds in seconds."""
    off = {"enabled": False}
    return {
        "openai": {
            "enabled": True,
            "base_url": base_url,
            "finetune_models": FINETUNED,
            "chat_models": ["gpt-4o-mini"],
            "chat_k": [0, 1],
            "epochs": 2,
            "poll_interval_s": 0.05,
            "max_poll_interval_s": 0.2,
            "max_retries": 2,
            "timeout_s": 20,
        },
        "training": {"approaches": {"layernorm": off, "lora_attention": off, "lora_all": off}},
        "evaluation": {"fewshot": {"k": []}, "baseline": {"enabled": True}},
    }


def snakemake_command(pipeline, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2", *args]


def finished_jobs(pipeline) -> list[str]:
    """The rules of the jobs that Snakemake's log of the running run says have finished."""
    logs = sorted(pipeline.path(".snakemake/log").glob("*.snakemake.log"))
    return re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", logs[-1].read_text()) if logs else []


def wait_for_records(pipeline, process, models, finished=(), timeout: float = 180) -> None:
    """Until every model's fine-tuning job is recorded and a job of each rule in `finished` has
    finished."""
    deadline = time.monotonic() + timeout
    records = [pipeline.path(f"results/openai/{m}/job.json") for m in models]
    while time.monotonic() < deadline:
        recorded = all(r.exists() and json.loads(r.read_text()).get("job_id") for r in records)
        if recorded and set(finished) <= set(finished_jobs(pipeline)):
            return
        if process.poll() is not None:
            raise AssertionError(
                f"snakemake ended ({process.returncode}) before both jobs were recorded:\n"
                + process.stdout.read()
                + process.stderr.read()
            )
        time.sleep(0.2)
    raise AssertionError(f"the fine-tuning jobs were never recorded, or {list(finished)} finished")


def default_sigint() -> None:
    """A shell running the suite in the background ignores SIGINT, and its children inherit that:
    Ctrl-C is simulated on a process that takes SIGINT as a terminal's foreground job does."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def right_answer(model: str, prompt: str) -> str:
    """The label of a synthetic tweet of tests/conftest.py (each carries a phrase of its class)."""
    tweet = prompt.rsplit("Tweet:", 1)[-1]
    return next(LABELS[c] for c, phrases in WORDS.items() if any(p in tweet for p in phrases))


REFUSED = "gpt-4.1-mini-2025-04-14"
REFUSAL = "Model gpt-4.1-mini-2025-04-14 is not available for fine-tuning or does not exist."
RETIRED = "gpt-3.5-turbo"


@pytest.mark.slow
def test_openai_interrupted_then_rerun_pays_one_job_per_model_reports_refusals_and_leaks_no_key(
    pipeline, monkeypatch
):
    """One study with two models whose fine-tuning runs, one the endpoint refuses and a chat model
    it has shut down: Ctrl-C while the two jobs train, then a rerun."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY + "\r\n")  # as read from a CRLF .env file
    with FakeOpenAI(key=KEY) as server:
        overrides = openai_on(server.base_url)
        overrides["openai"].update(
            finetune_models=[*FINETUNED, REFUSED], chat_models=["gpt-4o-mini", RETIRED]
        )
        for model in FINETUNED:
            server.outcomes[model] = "hang"
        server.refuse_finetune[REFUSED] = (400, "model_not_available", REFUSAL)
        server.shutdown_dates[RETIRED] = "2026-10-23"
        server.answer = right_answer
        pipeline.write_config(overrides)

        # Ctrl-C while both fine-tuning jobs are running. They hold none of the 2 cores
        # (threads: 0): a local job runs to its end beside them, as does the refused model's.
        process = subprocess.Popen(
            snakemake_command(pipeline),
            cwd=pipeline.workdir,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=default_sigint,
        )
        try:
            wait_for_records(
                pipeline, process, FINETUNED, finished=["baseline_tfidf", "openai_finetune"]
            )
            for model in FINETUNED:  # both still waiting on the server
                assert not pipeline.path(f"results/openai/{model}/model.json").exists()
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: to snakemake and its jobs
            # Snakemake stops its running jobs first; on a loaded 2-core machine that can take
            # minutes.
            # Its output is read meanwhile: the tracebacks of the stopped jobs overfill a pipe.
            process.communicate(timeout=600)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
        assert process.returncode != 0
        assert (
            len(server.jobs) == 2
        )  # the refused model's attempt, before or after Ctrl-C, made none
        for model in FINETUNED:
            assert not pipeline.path(f"results/openai/{model}/model.json").exists()

        # The jobs finish while nobody watches; the rerun picks them up.
        for job_id in list(server.jobs):
            server.finish(job_id)
        pipeline.run(config=overrides)
        pipeline.run("--report", "report.html", config=overrides)

        # One job per model that trains; the refused model asked once and got no job.
        assert server.count("POST", "/v1/fine_tuning/jobs") == 3 and len(server.jobs) == 2
        assert not server.files  # every upload deleted: the trained models' and the refused one's
        models = {
            json.loads(pipeline.path(f"results/openai/{m}/model.json").read_text())[
                "fine_tuned_model"
            ]
            for m in FINETUNED
        }
        assert models == {job.data["fine_tuned_model"] for job in server.jobs.values()}
        record = json.loads(pipeline.path(f"results/openai/{REFUSED}/model.json").read_text())
        reason = f"fine-tuning job refused: HTTP 400 model_not_available: {REFUSAL}"
        assert record["status"] == "not_run" and record["reason"] == reason
        asked_chat = {r.body["model"] for r in server.requests if r.path == "/v1/chat/completions"}
        assert RETIRED not in asked_chat
        systems = [f"ft-{m}" for m in FINETUNED] + ["gpt-4o-mini-k0", "gpt-4o-mini-k1"]
        for system in systems:
            for prefix in ("", "val/"):
                metrics = json.loads(
                    pipeline.path(f"results/eval/openai/{system}/{prefix}metrics.json").read_text()
                )
                assert metrics["n"] == 12 and metrics["system"]["model"] == "openai"
                assert (
                    metrics["accuracy"] == 1.0 and metrics["invalid"] == 0
                )  # the fake answers right
        # The report lists the OpenAI systems that ran, and the refused and retired ones with why.
        summary = pd.read_csv(pipeline.path("results/report/summary.csv"))
        status = dict(zip(summary["name"], summary["status"]))
        assert {name: status[name] for name in status if name.startswith("openai/")} == {
            **{f"openai/{s}": "ran" for s in systems},
            f"openai/ft-{REFUSED}": f"not run: {reason}",
            **{
                f"openai/{RETIRED}-k{k}": f"not run: model {RETIRED} was shut down on 2026-10-23"
                for k in (0, 1)
            },
        }
        ran = summary[summary["name"].isin(f"openai/{s}" for s in systems)]
        assert (ran["accuracy"] == 1.0).all() and status["baseline/tfidf"] == "ran"
        table = pipeline.path("results/report/summary.md").read_text()
        assert REFUSAL in table and "shut down on 2026-10-23" in table
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


planned_jobs = job_stats


def test_without_openai_the_plan_has_no_openai_job_and_with_it_one_per_system(
    pipeline, monkeypatch, default_plan
):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    plan = planned_jobs(default_plan.stdout)
    assert "report" in plan and not [rule for rule in plan if "openai" in rule]
    plan = planned_jobs(
        pipeline.run("-n", "--quiet", "rules", config=openai_on("http://127.0.0.1:9/v1")).stdout
    )
    assert {rule: n for rule, n in plan.items() if "openai" in rule} == {
        "openai_finetune": 2,
        "openai_evaluate": 4,
    }


def test_openai_enabled_without_a_key_stops_before_any_job(pipeline, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = pipeline.run("-n", config=openai_on("http://127.0.0.1:9/v1"), check=False)
    assert result.returncode != 0
    assert (
        "openai.enabled is true, but the environment variable OPENAI_API_KEY is not set"
        in result.stdout + result.stderr
    )
    assert not pipeline.path("results").exists()
