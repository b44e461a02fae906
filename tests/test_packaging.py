"""`pip install .` without extras gives a working `adaptune predict`.

The wheel is built from this checkout and installed into a fresh virtual environment that holds
exactly the distributions its core requirements pull in (linked from this machine's installed
copies, so nothing is downloaded): no Snakemake, Lightning, OpenAI, seaborn or scikit-learn.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

from conftest import REPO
from import_graph import third_party_imports

WORKFLOW_ONLY = {
    "snakemake",
    "pytorch_lightning",
    "lightning",
    "openai",
    "seaborn",
    "sklearn",
    "gguf",
}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def build_wheel(out: Path) -> Path:
    """The wheel of this checkout, built from a copy (the build leaves folders behind)."""
    source = out / "source"
    shutil.copytree(
        REPO / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--quiet",
            "--wheel-dir",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
        env=clean_environ(),
    )
    (wheel,) = out.glob("adaptune-*.whl")
    return wheel


def core_requirements(wheel: Path) -> list[Requirement]:
    """The wheel's Requires-Dist that apply without any extra."""
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode().splitlines()
    requirements = [
        Requirement(line.split(":", 1)[1]) for line in lines if line.startswith("Requires-Dist:")
    ]
    environment = {**default_environment(), "extra": ""}
    return [r for r in requirements if r.marker is None or r.marker.evaluate(environment)]


def closure(requirements: list[Requirement]) -> dict[str, importlib.metadata.Distribution]:
    """The installed distributions that `requirements` pull in, transitively."""
    found: dict[str, importlib.metadata.Distribution] = {}
    pending = list(requirements)
    while pending:
        requirement = pending.pop()
        name = normalize(requirement.name)
        if name in found:
            continue
        distribution = importlib.metadata.distribution(requirement.name)
        assert distribution.version in requirement.specifier or not requirement.specifier, (
            f"{requirement}: installed here is {distribution.version}"
        )
        found[name] = distribution
        for text in distribution.requires or []:
            dependency = Requirement(text)
            environment = {**default_environment(), "extra": ""}
            if dependency.marker is None or dependency.marker.evaluate(environment):
                pending.append(dependency)
    return found


def link_distributions(distributions, site_packages: Path) -> None:
    """Make each distribution's installed files visible in `site_packages`, by their top-level
    entries (packages, modules, .dist-info, bundled libraries)."""
    for distribution in distributions:
        root = Path(distribution.locate_file(""))
        for top in {Path(str(f)).parts[0] for f in distribution.files or []}:
            source = root / top
            target = site_packages / top
            if (
                top.startswith("..")
                or top == "__pycache__"
                or not source.exists()
                or target.exists()
            ):
                continue
            target.symlink_to(source)


@pytest.fixture(scope="module")
def core_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("core-install")
    wheel = build_wheel(root / "wheel")
    requirements = core_requirements(wheel)
    distributions = closure(requirements)
    env = root / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    (site_packages,) = env.glob("lib/python*/site-packages")
    link_distributions(distributions.values(), site_packages)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(env / "bin" / "python"),
            "install",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            "--quiet",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        env=clean_environ(),
    )
    return env, requirements, distributions


def clean_environ() -> dict[str, str]:
    """This environment without the paths that point at the checkout or the test's interpreter."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def run_in(env: Path, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=env,
        env={**clean_environ(), "HF_HUB_OFFLINE": "1"},
    )


def test_core_requirements_hold_no_workflow_package(core_env):
    _, requirements, distributions = core_env
    names = {normalize(r.name) for r in requirements}
    assert names >= {"torch", "transformers", "peft", "bitsandbytes", "accelerate", "safetensors"}
    assert (
        not {"snakemake", "pytorch-lightning", "openai", "seaborn", "scikit-learn", "requests"}
        & names
    )
    assert not {"snakemake", "pytorch-lightning", "openai", "seaborn"} & set(distributions)


def test_the_installed_command_answers_help(core_env):
    env, _, _ = core_env
    result = run_in(env, str(env / "bin" / "adaptune"), "predict", "--help")
    assert result.returncode == 0, result.stderr
    assert "--adapter" in result.stdout


def test_the_fresh_environment_lacks_the_workflow_packages(core_env):
    env, _, _ = core_env
    probe = "import importlib.util as u; print(sorted(n for n in %r if u.find_spec(n)))" % sorted(
        WORKFLOW_ONLY
    )
    result = run_in(env, str(env / "bin" / "python"), "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


CLI = REPO / "src" / "adaptune" / "cli.py"


def test_predict_reaches_no_workflow_package():
    """Everything the command's module imports, anywhere in it or in the adaptune modules it
    reaches (function-level imports too), is a core requirement's, not the workflow's."""
    required, _ = third_party_imports(CLI)
    assert not required & WORKFLOW_ONLY, (
        f"adaptune predict reaches {sorted(required & WORKFLOW_ONLY)}"
    )


def test_the_modules_predict_uses_import_in_the_core_install(core_env):
    env, _, _ = core_env
    required, _ = third_party_imports(CLI)
    modules = sorted(
        set(re.findall(r"from (adaptune[\w.]*) import", CLI.read_text())) | {"adaptune.cli"}
    )
    packages = sorted(required - WORKFLOW_ONLY)
    result = run_in(
        env,
        str(env / "bin" / "python"),
        "-c",
        f"import importlib; [importlib.import_module(m) for m in {modules + packages!r}]",
    )
    assert result.returncode == 0, result.stderr[-3000:]
