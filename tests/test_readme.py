"""Every command the README and the docs/ pages show, run as written: each `snakemake` command
as a dry run (the study is long, OpenAI costs money) in a working directory with the tiny-model
config, `adaptune` commands through the command's own parser, and install commands checked for
their form against pyproject.toml. The pages are read generically, so a command added to one is
run here too, and a command that nothing here knows how to check fails the test. A command shown
on several pages runs once. Every relative link and every #anchor of those pages resolves."""

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

from conftest import REPO, Pipeline, job_stats, tiny_pipeline_config, write_raw_csv

# The README and the pages it links to, whose commands are run and whose links are checked.
PAGES = [
    path
    for path in [
        REPO / "README.md",
        *sorted((REPO / "docs").glob("*.md")),
        REPO / "profiles" / "README.md",
        REPO / "progress" / "README.md",
    ]
    if path.is_file()
]
README = (REPO / "README.md").read_text()
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
FLOORS = {
    Requirement(text).name: Requirement(text).specifier
    for group in [
        PYPROJECT["project"]["dependencies"],
        *PYPROJECT["project"]["optional-dependencies"].values(),
    ]
    for text in group
    if not text.startswith("adaptune")
}
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


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def page_commands(page: Path) -> list[tuple[str, list[str], dict[str, str]]]:
    """(where, argv, exported variables) of every command in a page's bash blocks and of every
    inline `snakemake ...` in its text."""
    text, name = page.read_text(), page.relative_to(REPO)
    commands = []
    for number, block in enumerate(bash_blocks(text), start=1):
        exported: dict[str, str] = {}
        for line in block.replace("\\\n", " ").splitlines():
            for argv in split_commands(line):
                if argv[0] == "export":
                    name_, _, value = argv[1].partition("=")
                    exported[name_] = value
                    continue
                commands.append((f"{name} block {number}: {' '.join(argv)}", argv, dict(exported)))
    for inline in re.findall(r"`(snakemake [^`]+)`", text):
        commands.append((f"{name} inline: {inline}", shlex.split(inline), {}))
    return commands


def program(argv: list[str]) -> str:
    return Path(argv[0]).name


def what_runs(argv: list[str], exported: dict[str, str]) -> tuple:
    """What a command does here: the same for `snakemake -n` and `.venv/bin/snakemake`, so that
    the pages' repeats of one dry run are run once."""
    if program(argv) == "snakemake":
        args = [a for a in argv[1:] if a not in NOT_HERE and a not in ("-n", "--dry-run")]
        if "--cores" in args:  # the plan is the same on any number of cores
            del args[args.index("--cores") : args.index("--cores") + 2]
        return ("snakemake", tuple(args), tuple(sorted(exported.items())))
    return (tuple(argv), tuple(sorted(exported.items())))


def distinct_commands() -> list[tuple[str, list[str], dict[str, str]]]:
    seen: dict[tuple, int] = {}
    distinct = []
    for where, argv, exported in (c for page in PAGES for c in page_commands(page)):
        key = what_runs(argv, exported)
        if key in seen:
            continue
        seen[key] = len(distinct)
        distinct.append((where, argv, exported))
    return distinct


COMMANDS = [c for page in PAGES for c in page_commands(page)]
DISTINCT = distinct_commands()


def test_the_readme_shows_the_commands_it_must():
    programs = {program(argv) for _, argv, _ in COMMANDS}
    assert {"snakemake", "pip", "adaptune"} <= programs
    assert any("--use-conda" in argv for _, argv, _ in COMMANDS)


def test_quickstart_installs_plans_smokes_runs_and_tests():
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    lines = [
        line
        for line in bash_blocks(quickstart)[0].splitlines()
        if line.strip() and not line.startswith("#")
    ]
    install, plan, smoke, study, decisive, tests = (split_commands(line) for line in lines)
    assert install[0][:3] == ["python3", "-m", "venv"]
    assert any(
        argv[0].endswith("/pip") and "torch==2.13.0" in argv and ".[test]" in argv
        for argv in install
    )
    assert plan == [[".venv/bin/snakemake", "-n"]]
    assert smoke == [
        [".venv/bin/snakemake", "--cores", "2", "--configfile", "config.yaml", "configs/smoke.yaml"]
    ]
    assert study == [[".venv/bin/snakemake", "--cores", "2"]]
    assert decisive == [
        [
            ".venv/bin/snakemake",
            "--cores",
            "2",
            "--configfile",
            "config.yaml",
            "configs/decisive.yaml",
        ]
    ]
    assert tests == [[".venv/bin/python", "-m", "pytest"]]
    python = PYPROJECT["project"]["requires-python"]
    assert f"Python ≥ {python.removeprefix('>=')}" in quickstart


def test_the_predict_line_names_an_adapter_that_a_quickstart_study_trains():
    """The adapter the README offers is one the published study trained, and that study is the
    Quickstart's `configs/decisive.yaml` (its published config has that file's seeds)."""
    import pandas as pd

    from adaptune.report.publish import current_section

    adapters = re.findall(r"adaptune predict --adapter (\S+)", README)
    assert adapters
    _, folder = current_section(REPO / "README.md")
    published = yaml.safe_load((REPO / folder / "config.yaml").read_text())["training"]
    decisive = yaml.safe_load((REPO / "configs/decisive.yaml").read_text())["training"]
    assert "configs/decisive.yaml" in README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    assert published["seeds"] == decisive["seeds"]
    trained = set(pd.read_csv(REPO / folder / "summary.csv")["adapter"].dropna())
    assert set(adapters) <= trained, (adapters, sorted(trained))


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
                f"{argv}: {requirement} but pyproject.toml says "
                f"{requirement.name}{FLOORS[requirement.name]}"
            )


def check_adaptune(argv: list[str]) -> None:
    from adaptune.cli import build_parser

    parser = build_parser()
    try:
        parser.parse_args(argv[1:])
    except SystemExit as exit:
        raise AssertionError(
            f"{argv}: the command's parser refuses it (exit {exit.code})"
        ) from None
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


@pytest.mark.parametrize("where, argv, exported", DISTINCT, ids=[c[0] for c in DISTINCT])
def test_readme_command(where, argv, exported, workdir, request):
    while re.fullmatch(r"\w+=\S*", argv[0]):  # VAR=value in front of a command: its environment
        name, _, value = argv[0].partition("=")
        exported, argv = {**exported, name: value}, argv[1:]
    name = program(argv)
    if name == "snakemake":
        args = runnable_here(argv, workdir)
        if "--report" in args:
            # The report of a study that has not run: Snakemake gets as far as its first item.
            result = workdir.run(*args, check=False, env=exported)
            assert "marked for report but does not exist" in result.stdout + result.stderr, (
                result.stderr[-3000:]
            )
        elif "--lint" in args:
            result = workdir.run(*args, env=exported)
            assert "in a good condition" in result.stdout + result.stderr
        elif not what_runs(argv, exported)[1]:  # the default plan, which another test needs too
            result = request.getfixturevalue("default_plan")
            assert "This was a dry-run" in result.stdout + result.stderr
        else:
            result = workdir.run(*args, "-n", "--quiet", "rules", env=exported)
            assert "This was a dry-run" in result.stdout + result.stderr
            if "configs/openai.yaml" in args:  # the overlay turns OpenAI on with its default models
                openai = {
                    rule: n for rule, n in job_stats(result.stdout).items() if "openai" in rule
                }
                assert openai == {"openai_finetune": 2, "openai_evaluate": 4}, openai
    elif name == "pip":
        check_pip(argv)
    elif name == "adaptune":
        check_adaptune(argv)
    elif name in ("python", "python3") and argv[1:3] == ["-m", "adaptune"]:
        result = subprocess.run(
            [sys.executable, *argv[1:]],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        )
        assert result.returncode == 0, result.stderr
        if "--version" in argv:
            import adaptune

            assert adaptune.__version__ in result.stdout
    elif name in ("python", "python3") and argv[1:3] == ["-m", "venv"]:
        assert len(argv) == 4, argv  # one folder
    elif name in ("python", "python3") and argv[1:3] == ["-m", "pytest"] and argv[3:]:
        # A subset (marked tests, one file, one process): its markers are registered, its files
        # exist, and its options are pytest's or pytest-xdist's.
        if "-m" in argv[3:]:
            expression = argv[argv.index("-m", 3) + 1]
            for marker in set(re.findall(r"\w+", expression)) - {"not", "and", "or"}:
                assert f'"{marker}:' in (REPO / "pyproject.toml").read_text(), (
                    f"marker {marker} is not registered"
                )
        for path in (a for a in argv if a.startswith("tests/")):
            assert (REPO / path).is_file(), path
        options = {
            a for a in argv[3:] if a.startswith("-") and not re.fullmatch(r"-r\w+", a)
        }  # -rs: a report
        assert options <= {"-m", "-n", "-k", "-x", "-q", "-v", "--durations"}, options
    elif name in ("python", "python3") and argv[1:3] == ["-m", "pytest"]:
        ci = (REPO / ".ci" / "run").read_text()
        assert " ".join([".venv/bin/python", *argv[1:]]) in ci, (
            ".ci/run must run the README's test command"
        )
    elif name == "cat":
        assert len(argv) == 2, argv  # feeds a file to the next command of its pipeline
    elif name in ("python", "python3") and len(argv) > 1 and argv[1].startswith("bench/"):
        # A benchmark runs minutes on the real model: its arguments are checked by its --help.
        assert (REPO / argv[1]).is_file(), argv[1]
        done = subprocess.run(
            [sys.executable, str(REPO / argv[1]), "--help"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO / "src")},
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        options = set(re.findall(r"--[\w-]+", done.stdout))
        assert {a for a in argv[2:] if a.startswith("--")} <= options, (argv, options)
    else:
        raise AssertionError(f"{where}: no check for this command; add one to tests/test_readme.py")


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]|<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", text, flags=re.M):
        base, n = slug(heading), 0
        while (name := base if n == 0 else f"{base}-{n}") in found:
            n += 1
        found.add(name)
    return found | set(re.findall(r'<a (?:name|id)="([^"]+)"', text))


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_and_anchor_resolves(page):
    broken = []
    for link in links(page):
        if re.match(r"[a-z]+:", link):  # https:, mailto:: not checked offline
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no file {target}")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{link}: no heading #{anchor} in {target.name}")
    assert not broken, broken


def test_the_slugs_are_githubs():
    assert slug("Use the winner: `adaptune predict`") == "use-the-winner-adaptune-predict"
    assert slug("GPU: GPT-J-6B in 8-bit") == "gpu-gpt-j-6b-in-8-bit"
    assert slug("Data, offline use") == "data-offline-use"
    assert (
        slug("Precision on an AMD EPYC (avx512_bf16, no AMX)")
        == "precision-on-an-amd-epyc-avx512_bf16-no-amx"
    )
