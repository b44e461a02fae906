"""The workflow's files are formatted as snakefmt formats them (its settings: pyproject.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def snakefmt() -> str:
    beside = Path(sys.executable).with_name("snakefmt")
    return str(beside) if beside.exists() else shutil.which("snakefmt") or "snakefmt"


def test_workflow_files_are_snakefmt_formatted():
    result = subprocess.run([snakefmt(), "--check", "--diff", "Snakefile", "workflow/"],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, (
        "run `snakefmt Snakefile workflow/` to format:\n" + (result.stdout + result.stderr)[-6000:])


def test_no_test_file_imports_another():
    """Shared test helpers live in conftest.py or a helper module (tiny_model, training_helpers),
    so a test file runs alone and its helpers have one home."""
    import re

    offenders = [f"{path.name}:{number}" for path in sorted((REPO / "tests").glob("*.py"))
                 for number, line in enumerate(path.read_text().splitlines(), start=1)
                 if re.match(r"\s*(from test_\w+ import|import test_\w+)", line)]
    assert not offenders, offenders
