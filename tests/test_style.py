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
    result = subprocess.run(
        [snakefmt(), "--check", "--diff", "Snakefile", "workflow/"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, (
        "run `snakefmt Snakefile workflow/` to format:\n" + (result.stdout + result.stderr)[-6000:]
    )


def test_no_test_file_imports_another():
    """Shared test helpers live in conftest.py or a helper module (tiny_model, training_helpers),
    so a test file runs alone and its helpers have one home."""
    import re

    offenders = [
        f"{path.name}:{number}"
        for path in sorted((REPO / "tests").glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.match(r"\s*(from test_\w+ import|import test_\w+)", line)
    ]
    assert not offenders, offenders


def test_no_private_name_is_imported_from_another_module():
    """A name that starts with "_" is its module's own: code elsewhere (the package, the
    workflow's scripts, the benchmarks, the tests) imports only public names."""
    import ast

    offenders = []
    for folder in ("src", "workflow", "bench", "tests"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("adaptune"):
                    offenders += [
                        f"{path.relative_to(REPO)}:{node.lineno}: {alias.name}"
                        for alias in node.names
                        if alias.name.startswith("_") and alias.name != "__version__"
                    ]
    assert not offenders, offenders


def test_python_passes_ruff_within_100_columns():
    """pyproject's [tool.ruff] rules (its line length, pyflakes' unused imports and undefined
    names) over the package, its scripts, bench and tests."""
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "src", "tests", "bench", "workflow/scripts"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]
