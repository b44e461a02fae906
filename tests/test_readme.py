"""Every command the README shows, run as written: each `snakemake` command as a dry run (the
study is long, OpenAI costs money) in a working directory with the tiny-model config,
`adaptune` commands through the command's own parser, and install commands checked for their
form against pyproject.toml. The README is read generically, so a command added to it is run
here too, and a command that nothing here knows how to check fails the test."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement

from conftest import REPO, Pipeline, tiny_pipeline_config, write_raw_csv

README = (REPO / "README.md").read_text()
# The pages the README links to, whose commands are run the same way.
PAGES = {path.relative_to(REPO).as_posix(): path.read_text()
         for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "profiles" / "README.md"]
         if path.is_file()}
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
FLOORS = {Requirement(text).name: Requirement(text).specifier
          for group in [PYPROJECT["project"]["dependencies"], *PYPROJECT["project"]["optional-dependencies"].values()]
          for text in group if not text.startswith("adaptune")}
# Deployment that this machine cannot do; the dry run plans the same jobs without it. The conda
# environments are checked by test_envs.py, the SLURM profile's resources by test_profiles.py.
NOT_HERE = {"--use-conda": 0, "--conda-not-block-search-path-envvars": 0}
PROFILE_KEYS_NOT_HERE = {"executor", "software-deployment-method", "use-conda"}


def split_commands(line: str) -> list[list[str]]:
    """The simple commands of a shell line, split at `&&`, `;` and `|`; comments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars="&|;")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands, current = [], []
    for token in lexer:
        if token in ("&&", "|", ";", "||"):
            commands.append(current)
            current = []
        else:
            current.append(token)
    return [c for c in commands + [current] if c]


def readme_commands() -> list[tuple[str, list[str], dict[str, str]]]:
    """(where, argv, exported variables) of every command in the bash blocks of the README and
    the pages it links to, and of every inline `snakemake ...` in their text."""
    commands = []
    for page, text in PAGES.items():
        where = "" if page == "README.md" else f"{page} "
        for number, block in enumerate(re.findall(r"```bash\n(.*?)```", text, flags=re.S), start=1):
            exported: dict[str, str] = {}
            for line in block.replace("\\\n", " ").splitlines():
                for argv in split_commands(line):
                    if argv[0] == "export":
                        name, _, value = argv[1].partition("=")
                        exported[name] = value
                        continue
                    commands.append((f"{where}block {number}: {' '.join(argv)}", argv, dict(exported)))
        for inline in re.findall(r"`(snakemake [^`]+)`", text):
            commands.append((f"{where}inline: {inline}", shlex.split(inline), {}))
    return commands


COMMANDS = readme_commands()


def program(argv: list[str]) -> str:
    return Path(argv[0]).name


def test_the_readme_shows_the_commands_it_must():
    programs = {program(argv) for _, argv, _ in COMMANDS}
    assert {"snakemake", "pip", "adaptune"} <= programs
    assert any("--use-conda" in argv for _, argv, _ in COMMANDS)


def test_quickstart_is_two_commands_that_install_and_test():
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", quickstart, flags=re.S)[1]
    lines = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert len(lines) == 2, lines
    install = split_commands(lines[0])
    assert install[0][:3] == ["python3", "-m", "venv"]
    assert any(argv[0].endswith("/pip") and "torch==2.13.0" in argv and ".[test]" in argv for argv in install)
    assert install[-1][0].endswith("/snakemake")
    assert split_commands(lines[1]) == [[".venv/bin/python", "-m", "pytest"]]
    python = PYPROJECT["project"]["requires-python"]
    assert f"Python ≥ {python.removeprefix('>=')}" in quickstart


def check_pip(argv: list[str]) -> None:
    assert argv[1] == "install", f"{argv}: only `pip install` is expected"
    extras = PYPROJECT["project"]["optional-dependencies"]
    arguments = argv[2:]
    for position, argument in enumerate(arguments):
        if argument in ("-e", "--editable"):
            continue
        if argument.startswith("-"):
            raise AssertionError(f"{argv}: unexpected option {argument}")
        if argument == "." or argument.startswith(".["):
            wanted = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", argument)
            assert wanted, f"{argv}: cannot read {argument}"
            for extra in filter(None, (wanted[1] or "").split(",")):
                assert extra in extras, f"{argv}: pyproject.toml has no extra {extra!r}"
            continue
        try:
            requirement = Requirement(argument)
        except InvalidRequirement as error:
            raise AssertionError(f"{argv}: {argument} is no requirement ({error})") from None
        if requirement.name == "torch":
            assert str(requirement.specifier) == "==2.13.0", f"{argv}: pin torch==2.13.0"
        elif requirement.name in FLOORS and requirement.specifier:
            assert requirement.specifier == FLOORS[requirement.name], (
                f"{argv}: {requirement} but pyproject.toml says {requirement.name}{FLOORS[requirement.name]}")


def check_adaptune(argv: list[str]) -> None:
    from adaptune.cli import build_parser

    parser = build_parser()
    try:
        parser.parse_args(argv[1:])
    except SystemExit as exit:
        raise AssertionError(f"{argv}: the command's parser refuses it (exit {exit.code})") from None
    with pytest.raises(SystemExit) as help_exit:
        parser.parse_args([argv[1], "--help"])
    assert help_exit.value.code == 0


@pytest.fixture
def workdir(tmp_path) -> Pipeline:
    """A working directory laid out like the checkout: the tiny-model config as config.yaml,
    configs/ and profiles/, and a synthetic dataset."""
    pipeline = Pipeline(tmp_path / "run", tiny_pipeline_config(tmp_path / "no-model"))
    write_raw_csv(pipeline.path("data/labeled_data.csv"), per_class=40)
    shutil.copytree(REPO / "configs", pipeline.path("configs"))
    return pipeline


def runnable_here(argv: list[str], pipeline: Pipeline) -> list[str]:
    """The snakemake arguments, less the deployment this machine cannot do (see NOT_HERE)."""
    args = [a for a in argv[1:] if a not in NOT_HERE]
    if "--profile" in args:
        name = args[args.index("--profile") + 1]
        profile = yaml.safe_load((REPO / name / "config.yaml").read_text())
        here = {k: v for k, v in profile.items() if k not in PROFILE_KEYS_NOT_HERE}
        target = pipeline.path(name) / "config.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(here))
    return args


@pytest.mark.parametrize("where, argv, exported", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_readme_command(where, argv, exported, workdir):
    while re.fullmatch(r"\w+=\S*", argv[0]):  # VAR=value in front of a command: its environment
        name, _, value = argv[0].partition("=")
        exported, argv = {**exported, name: value}, argv[1:]
    name = program(argv)
    if name == "snakemake":
        args = runnable_here(argv, workdir)
        if "--report" in args:
            # The report of a study that has not run: Snakemake gets as far as its first item.
            result = workdir.run(*args, check=False, env=exported)
            assert "marked for report but does not exist" in result.stdout + result.stderr, result.stderr[-3000:]
        elif "--lint" in args:
            result = workdir.run(*args, env=exported)
            assert "in a good condition" in result.stdout + result.stderr
        else:
            result = workdir.run(*args, "-n", env=exported)
            assert "This was a dry-run" in result.stdout + result.stderr
    elif name == "pip":
        check_pip(argv)
    elif name == "adaptune":
        check_adaptune(argv)
    elif name in ("python", "python3") and argv[1:3] == ["-m", "adaptune"]:
        result = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True,
                                env={**os.environ, "PYTHONPATH": str(REPO / "src")})
        assert result.returncode == 0, result.stderr
        if "--version" in argv:
            import adaptune

            assert adaptune.__version__ in result.stdout
    elif name in ("python", "python3") and argv[1:3] == ["-m", "venv"]:
        assert len(argv) == 4, argv  # one folder
    elif name in ("python", "python3") and argv[1:3] == ["-m", "pytest"] and "-m" in argv[3:]:
        # A marked subset (the llama.cpp server tests): the marker is registered, the files exist.
        marker = argv[argv.index("-m", 3) + 1]
        assert f'"{marker}:' in (REPO / "pyproject.toml").read_text(), f"marker {marker} is not registered"
        for path in (a for a in argv if a.startswith("tests/")):
            assert (REPO / path).is_file(), path
    elif name in ("python", "python3") and argv[1:3] == ["-m", "pytest"]:
        ci = (REPO / ".ci" / "run").read_text()
        assert " ".join([".venv/bin/python", *argv[1:]]) in ci, ".ci/run must run the README's test command"
    elif name == "cat":
        assert len(argv) == 2, argv  # feeds a file to the next command of its pipeline
    elif name in ("python", "python3") and len(argv) > 1 and argv[1].startswith("bench/"):
        # A benchmark runs minutes on the real model: its arguments are checked by its --help.
        assert (REPO / argv[1]).is_file(), argv[1]
        done = subprocess.run([sys.executable, str(REPO / argv[1]), "--help"], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO / "src")}, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        options = set(re.findall(r"--[\w-]+", done.stdout))
        assert {a for a in argv[2:] if a.startswith("--")} <= options, (argv, options)
    else:
        raise AssertionError(f"{where}: no check for this command; add one to tests/test_readme.py")
