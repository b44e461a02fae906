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
