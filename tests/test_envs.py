"""The conda environments of the rules (envs/*.yaml), checked where conda cannot run: each parses,
lists conda-forge packages with the version floors of pyproject.toml (the one source of floors),
and names exactly what its rules' scripts import, through the adaptune modules they use; and a
job in a per-rule environment sees that environment's packages only, not the host's."""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from conftest import REPO
from import_graph import SRC, third_party_imports

SCRIPTS = REPO / "workflow" / "scripts"
# conda-forge names where they differ from the PyPI distribution
CONDA_NAMES = {"torch": "pytorch", "matplotlib": "matplotlib-base"}
# Packages no adaptune module imports, that a library it calls loads at run time.
RUN_TIME_ONLY = {
    "accelerate": "transformers' from_pretrained(device_map=...) needs it",
    "tokenizers": "transformers' fast tokenizers",
    "gguf": "transformers reads the GGUF file of the embedded default model with it",
    "bitsandbytes": "transformers' BitsAndBytesConfig loads the 8-bit and 4-bit bases with it",
}
# Installed packages that reach a model hub when imported: none of adaptune's dependencies may
# pull one in. (`kernels` makes importing bitsandbytes on a CPU ask the Hub for a kernel.)
REACH_A_HUB = {"kernels"}
# Listed by every environment: the interpreter and the installer.
INFRASTRUCTURE = {"python", "pip"}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_requirements() -> dict[str, Requirement]:
    """Every requirement of pyproject.toml, core and extras, by conda-forge name."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    texts = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        texts += [t for t in extra if not t.startswith("adaptune")]
    requirements = {}
    for text in texts:
        requirement = Requirement(text)
        name = normalize(requirement.name)
        requirements[CONDA_NAMES.get(name, name)] = requirement
    return requirements


def env_packages(path: Path) -> dict[str, str]:
    """{conda name: version specifier} of an environment file (pip entries included)."""
    spec = yaml.safe_load(path.read_text())
    entries = []
    for item in spec["dependencies"]:
        if isinstance(item, dict):
            entries += item.get("pip", [])
        else:
            entries.append(item)
    packages = {}
    for entry in entries:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", entry.strip())
        assert match, f"{path.name}: cannot read the entry {entry!r}"
        packages[normalize(match[1])] = match[2].replace(" ", "")
    return packages


def rule_envs_and_scripts() -> dict[str, set[Path]]:
    """{environment file: scripts run in it}, read from the rule files."""
    pairs: dict[str, set[Path]] = {}
    for rule_file in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"^\s*rule\b", rule_file.read_text(), flags=re.M)[1:]:
            conda = re.search(r"conda:\s*\n\s*\"([^\"]+)\"", block)
            script = re.search(r"script:\s*\n\s*\"([^\"]+)\"", block)
            if script:
                assert conda, (
                    f"{rule_file.name}: a rule runs {script[1]} without a conda environment"
                )
                env = (rule_file.parent / conda[1]).resolve()
                pairs.setdefault(env.name, set()).add((rule_file.parent / script[1]).resolve())
    return pairs


@functools.cache
def installed_distributions() -> dict[str, list[str]]:
    """Importable name -> distributions (a scan of every installed package: done once)."""
    return importlib.metadata.packages_distributions()


def distribution(top_level: str) -> str:
    """The conda-forge name of the package that provides an importable name (an optional one
    need not be installed here; its distribution then bears its name)."""
    names = installed_distributions().get(top_level) or [top_level]
    name = normalize(names[0])
    return CONDA_NAMES.get(name, name)


ENVS = sorted((REPO / "envs").glob("*.yaml"))


def installed_requirements(name: str, extras: tuple[str, ...] = ()) -> set[str]:
    """Every distribution that installing `name[extras]` pulls in, read from the installed
    packages' metadata (an optional one that is not installed ends its branch)."""
    reached: set[str] = set()
    pending = [(name, extras)]
    while pending:
        current, its_extras = pending.pop()
        try:
            texts = importlib.metadata.requires(current) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for text in texts:
            requirement = Requirement(text)
            wanted = requirement.marker is None or any(
                requirement.marker.evaluate({"extra": extra}) for extra in its_extras or ("",)
            )
            dependency = normalize(requirement.name)
            if wanted and dependency not in reached and dependency != normalize(name):
                reached.add(dependency)
                pending.append((dependency, tuple(requirement.extras)))
    return reached


def test_no_dependency_reaches_a_hub_when_imported():
    pulled = installed_requirements("adaptune", ("workflow", "openai", "cluster"))
    assert "transformers" in pulled and "peft" in pulled, sorted(pulled)
    assert not pulled & REACH_A_HUB, (
        f"installing adaptune pulls in {sorted(pulled & REACH_A_HUB)}: narrow the pins in "
        "pyproject.toml and envs/*.yaml"
    )


def test_every_rule_with_a_script_has_an_environment_file():
    used = set(rule_envs_and_scripts())
    assert used, "no rule found"
    assert used <= {path.name for path in ENVS}
    assert {path.name for path in ENVS} <= used, "an environment file no rule uses"


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.name)
def test_environment_parses_and_uses_conda_forge(env):
    spec = yaml.safe_load(env.read_text())
    assert set(spec) == {"channels", "dependencies"}, f"{env.name}: unexpected keys {set(spec)}"
    assert spec["channels"] == ["conda-forge", "nodefaults"], env.name
    packages = env_packages(env)
    assert packages.get("python") == "=3.11", f"{env.name}: python must be pinned to 3.11"
    pip = [item for item in spec["dependencies"] if isinstance(item, dict)]
    assert not pip, f"{env.name}: installs {pip} with pip although conda-forge carries them"


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.name)
def test_environment_floors_are_pyprojects(env):
    floors = pyproject_requirements()
    for name, specifier in env_packages(env).items():
        if name in INFRASTRUCTURE:
            continue
        assert name in floors, f"{env.name}: {name} is not a requirement of pyproject.toml"
        expected = str(floors[name].specifier)
        assert SpecifierSet(specifier) == floors[name].specifier, (
            f"{env.name}: {name}{specifier} but pyproject.toml says {floors[name].name}{expected}"
        )


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.name)
def test_environment_names_what_its_scripts_import(env):
    scripts = rule_envs_and_scripts()[env.name]
    required, optional = set(), set()
    for script in scripts:
        needed, maybe = third_party_imports(script)
        required |= {distribution(name) for name in needed}
        optional |= {distribution(name) for name in maybe}
    listed = set(env_packages(env)) - INFRASTRUCTURE
    script_names = sorted(s.name for s in scripts)
    assert required <= listed, (
        f"{env.name} lacks {sorted(required - listed)}, imported by {script_names}"
    )
    extra = listed - required - optional - set(RUN_TIME_ONLY)
    assert not extra, f"{env.name} lists {sorted(extra)}, which {script_names} do not use"
    if listed & set(RUN_TIME_ONLY):
        assert "transformers" in listed, (
            f"{env.name}: {sorted(listed & set(RUN_TIME_ONLY))} without transformers"
        )


def test_every_script_imports_checkout_first():
    for script in sorted(SCRIPTS.glob("*.py")):
        if script.name.startswith("_"):
            continue
        body = [
            node
            for node in ast.parse(script.read_text()).body
            if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        ]
        first = body[0]
        assert isinstance(first, ast.Import) and first.names[0].name == "_checkout", (
            f"{script.name}: the first statement must be `import _checkout`"
        )


def test_a_job_in_its_own_environment_sees_only_that_environment(tmp_path):
    """A bare virtual environment stands in for a conda one: the script runs with Snakemake's
    preamble (the host's sys.path appended, snakemake imported), then `import _checkout`.
    adaptune then comes from this checkout, and a host package the environment lacks is missing."""
    env = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    host_paths = [p for p in sys.path if os.path.isdir(p)]
    script = tmp_path / "job.py"
    script.write_text(
        f"import sys; sys.path.extend({host_paths!r}); import snakemake\n"
        f"sys.path.append({str(SCRIPTS)!r})\n"
        "import _checkout\n"
        "import adaptune.core.io\n"
        "print(adaptune.core.io.__file__)\n"
        "try:\n"
        "    import pandas\n"
        "    print('pandas from', pandas.__file__)\n"
        "except ModuleNotFoundError as error:\n"
        "    print('missing:', error.name)\n"
    )
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [str(env / "bin" / "python"), str(script)], capture_output=True, text=True, env=environ
    )
    assert result.returncode == 0, result.stderr
    module_path, pandas_line = result.stdout.splitlines()
    assert Path(module_path) == SRC / "adaptune" / "core" / "io.py"
    assert pandas_line == "missing: pandas"


def test_the_host_interpreter_keeps_its_packages(tmp_path):
    """Without a separate environment, `import _checkout` only puts the checkout first."""
    script = tmp_path / "job.py"
    script.write_text(
        f"import sys, snakemake; sys.path.append({str(SCRIPTS)!r})\n"
        "import _checkout, pandas, adaptune.core.io\n"
        "print(adaptune.core.io.__file__)\n"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == SRC / "adaptune" / "core" / "io.py"
