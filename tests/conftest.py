"""Shared fixtures: a synthetic raw dataset, tiny models, and a Snakemake runner that executes
the real workflow in a temporary working directory."""

from __future__ import annotations

import copy
import re
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One worker per core: a worker's own torch keeps to one thread, as two threads per worker
    # would spin on each other's cores. Pipeline jobs still set the threads their rule declares.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
# Inductor picks its vector ISA by building and loading a probe per ISA in each fresh cache,
# seconds in every process that compiles in a cache of its own. The suite takes the ISAs the
# CPU's flags name instead; the pipeline's jobs still probe.
os.environ.setdefault("TORCHINDUCTOR_VEC_ISA_OK", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

from ci_skips import pytest_runtest_makereport  # noqa: E402,F401  (under CI a skip must name an optional part)
from tiny_model import build_tiny_model  # noqa: E402

# training_helpers: the tiny training workspace fixture, shared by the training tests.
pytest_plugins = ["pytester", "training_helpers"]

LABELS = ["hate", "offensive", "neutral"]
WORDS = {
    0: ["those people are vermin", "send them all back", "that group is subhuman"],
    1: ["you stupid idiot", "shut up you clown", "what a dumb loser"],
    2: ["lovely weather today", "watching the game tonight", "new music out now"],
}


def write_raw_csv(path: Path, per_class: int = 40, extra_rows: str = "") -> Path:
    """A small table with the columns and classes of labeled_data.csv. Each tweet carries a
    class-typical phrase, an HTML entity, and a number that makes it unique."""
    lines = [",count,hate_speech,offensive_language,neither,class,tweet"]
    row = 0
    for number in range(per_class):
        for cls in (0, 1, 2):
            votes = ["3,0,0", "0,3,0", "0,0,3"][cls]
            text = f"{WORDS[cls][number % 3]} &amp; more #{number}"
            lines.append(f'{row},3,{votes},{cls},"{text}"')
            row += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n" + extra_rows, encoding="utf-8")
    return path


def write_reference_csvs(directory: Path, per_class: int = 2) -> dict[str, Path]:
    """The reference split's two files (columns label, text, HTML entities kept), each holding
    `per_class` tweets of every class that write_raw_csv also writes."""
    paths = {}
    for part, numbers in (("train", range(per_class)), ("val", range(per_class, 2 * per_class))):
        lines = ["label,text"]
        for number in numbers:
            for cls, label in enumerate(LABELS):
                lines.append(f'{label},"{WORDS[cls][number % 3]} &amp; more #{number}"')
        paths[part] = directory / f"reference_{part}.csv"
        paths[part].parent.mkdir(parents=True, exist_ok=True)
        paths[part].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


SHARED_RUN_TESTS = "test_pipeline.py"


def pytest_collection_modifyitems(items):
    """The tests that read the shared finished run all live in one file: pytest-xdist sends a
    file to one worker (`--dist loadfile`), so the run is built once. Files are handed out in
    collection order (`--no-loadscope-reorder`), longest work first so that no long file starts
    last while the other workers idle: that file, then the files with a `slow` test, then the
    rest."""
    slow_files = set()
    for item in items:
        if (
            "finished_pipeline" in getattr(item, "fixturenames", ())
            and item.path.name != SHARED_RUN_TESTS
        ):
            raise pytest.UsageError(
                f"{item.nodeid} uses finished_pipeline; move it to tests/{SHARED_RUN_TESTS}, "
                "whose tests share that run on one worker"
            )
        if item.get_closest_marker("slow"):
            slow_files.add(item.path)
    items.sort(key=lambda item: (item.path.name != SHARED_RUN_TESTS, item.path not in slow_files))


@pytest.fixture
def raw_csv(tmp_path) -> Path:
    return write_raw_csv(tmp_path / "labeled_data.csv")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models gain nothing from threads, and on a shared machine two threads spinning
    on each other's cores are several times slower than one."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_gptj(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-gptj"), "gptj")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"), "llama")


def deep_update(base: dict, overrides: dict) -> dict:
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = deep_update(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def tiny_pipeline_config(model_dir: Path) -> dict:
    """The default config, shrunk: a tiny local GPT-J held in 8-bit (the quantized path, which the
    CPU default leaves out), small splits, one short epoch in fp32 with one validation pass."""
    from adaptune.core.config import with_defaults

    default = with_defaults(yaml.safe_load((REPO / "config.yaml").read_text()))
    one_epoch = {"epochs": 1, "batch_size": 8}
    return deep_update(
        default,
        {
            "splits": {"train": 24, "val": 12, "test": 12, "seed": 7},
            "model": "tiny-gptj",
            "models": {
                "tiny-gptj": {
                    "source": "local",
                    "path": str(model_dir),
                    "attention_modules": ["q_proj", "k_proj", "v_proj", "out_proj"],
                    "mlp_modules": ["fc_in", "fc_out"],
                }
            },
            # fp32 and eager: no hardware job; one validation pass per epoch.
            "training": {
                "max_length": 64,
                "styles": ["instruction"],
                "quantizations": ["8bit"],
                "precision": "32-true",
                "compile": False,
                "val_checks_per_epoch": 1,
                "approaches": {
                    "layernorm": one_epoch,
                    "lora_attention": one_epoch,
                    "lora_all": one_epoch,
                },
            },
            "evaluation": {
                "bootstrap_samples": 100,
                "fewshot": {"k": [0, 1], "quantization": "8bit"},
            },
        },
    )


# Runs that start no job (plans, lint, the rule list, the HTML report): run by Snakemake's own
# command-line entry point in this process (the same parsing, checks, DAG and messages as
# `python -m snakemake`), which spares the two seconds of CPU that a new interpreter spends
# importing Snakemake and building its first DAG.
STARTS_NO_JOB = {"-n", "--dry-run", "--dryrun", "--lint", "--list-rules", "-l", "--report"}


def snakemake_in_process(
    args: list[str], cwd: Path, env: dict | None = None
) -> subprocess.CompletedProcess:
    """`snakemake <args>` run in this process from `cwd` under `env`, for a run that starts no
    job; its stdout, stderr and exit status as a subprocess would give them. The working
    directory and the environment are restored afterwards (a config's `workdir:` moves it)."""
    import contextlib
    import io

    from snakemake.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.update({"HF_HUB_OFFLINE": "1", **(env or {})})
    os.chdir(cwd)
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(args)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else int(bool(exit_.code))
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["snakemake", *args], code, out.getvalue(), err.getvalue())


class Pipeline:
    """The real workflow run by the real `snakemake` in a temporary working directory: in a
    process of its own when it may start jobs, in this one when it cannot (STARTS_NO_JOB)."""

    def __init__(self, workdir: Path, config: dict):
        self.workdir = workdir
        self.config = config

    def write_config(self, overrides: dict | None = None) -> dict:
        config = deep_update(self.config, overrides or {})
        (self.workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        return config

    def run(
        self, *args: str, config: dict | None = None, check: bool = True, env: dict | None = None
    ) -> subprocess.CompletedProcess:
        self.write_config(config)
        # Run from the working directory, as users do (a config's own `workdir` then applies).
        arguments = ["-s", str(REPO / "Snakefile"), "--cores", "2", *args]
        if STARTS_NO_JOB & set(args):
            result = snakemake_in_process(arguments, self.workdir, env)
        else:
            result = subprocess.run(
                [sys.executable, "-m", "snakemake", *arguments],
                capture_output=True,
                text=True,
                cwd=self.workdir,
                env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
            )
        if check and result.returncode != 0:
            raise AssertionError(
                f"snakemake {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
            )
        return result

    def path(self, relative: str) -> Path:
        return self.workdir / relative

    def place_resources(self, resources: Path) -> None:
        """Copy a resources/ folder (`prepared_tiny_gptj`) into the working directory, times
        kept: Snakemake finds the model fetched and prepared, the latter after the former."""
        shutil.copytree(resources, self.path("resources"), dirs_exist_ok=True)


@pytest.fixture
def pipeline(tmp_path, tiny_gptj) -> Pipeline:
    """A working directory with a synthetic dataset in data/ and the tiny-model config."""
    workdir = tmp_path / "run"
    write_raw_csv(workdir / "data" / "labeled_data.csv", per_class=40)
    write_reference_csvs(workdir / "data")
    return Pipeline(workdir, tiny_pipeline_config(tiny_gptj))


@pytest.fixture(scope="session")
def prepared_tiny_gptj(tmp_path_factory, tiny_gptj) -> Path:
    """resources/ as the fetch_model and prepare_model rules leave it for the tiny config's model,
    written once per worker by the same functions. A test that trains through Snakemake but does
    not test preparing starts from a copy (`Pipeline.place_resources`), as a study does that finds
    the model prepared by an earlier one: each saves a job that spends seconds importing."""
    from adaptune.lm.prepare import fetch_model, prepare_model

    entry = {"name": "tiny-gptj", **tiny_pipeline_config(tiny_gptj)["models"]["tiny-gptj"]}
    resources = tmp_path_factory.mktemp("prepared") / "resources"
    fetched = fetch_model(entry, resources / "downloads" / "tiny-gptj")
    prepare_model(entry, resources / "models" / "tiny-gptj", fetched=fetched)
    return resources


@pytest.fixture(scope="session")
def finished_pipeline(tmp_path_factory, tiny_gptj) -> Pipeline:
    """The whole chain run once by the real snakemake on the tiny config (every approach, the
    instruction prompt), shared by every test that reads a finished run's outputs or plans on
    top of it. Such tests must leave it as they found it: dry runs, `--report`, or reading files."""
    workdir = tmp_path_factory.mktemp("finished") / "run"
    write_raw_csv(workdir / "data" / "labeled_data.csv", per_class=40)
    write_reference_csvs(workdir / "data")
    config = tiny_pipeline_config(tiny_gptj)
    # Every approach, the classification head too (off in the default study). One few-shot
    # system: k = 1 runs the rule's every step (k = 0 only leaves the examples out).
    config["training"]["approaches"]["head"].update(enabled=True, epochs=1, batch_size=8)
    config["evaluation"]["fewshot"]["k"] = [1]
    pipeline = Pipeline(workdir, config)
    pipeline.run()
    return pipeline


@pytest.fixture(scope="session")
def default_plan(tmp_path_factory) -> subprocess.CompletedProcess:
    """`snakemake -n` of the tiny config as it stands, run once for every test that reads what the
    default plan holds (its rules, its jobs' resources)."""
    pipeline = Pipeline(
        tmp_path_factory.mktemp("plan") / "run", tiny_pipeline_config(REPO / "no-model")
    )
    write_raw_csv(pipeline.path("data/labeled_data.csv"), per_class=40)
    return pipeline.run("-n")


def job_stats(plan: str) -> dict[str, int]:
    """The "Job stats" table of a dry run: rule -> number of jobs."""
    rows = plan.split("Job stats:", 1)[1].split("total", 1)[0].splitlines()[3:]
    return {row.split()[0]: int(row.split()[1]) for row in rows if row.strip()}


# The rules whose jobs are every approach's (over the {approach} wildcard).
APPROACH_RULES = ("train", "sweep", "sweep_extend", "sweep_choice")


def jobs_per_approach(plan: str) -> dict[str, int]:
    """Jobs per rule of a dry run's job listing (not `--quiet`), those of the rules over the
    approach wildcard counted per approach as `<rule>_<approach>` (train_lora_all, sweep_head)."""
    counts: dict[str, int] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", plan):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        if not rule:
            continue
        name = rule[1]
        if name in APPROACH_RULES:
            name += "_" + re.search(r"^\s+wildcards:.*\bapproach=(\w+)", block, flags=re.M)[1]
        counts[name] = counts.get(name, 0) + 1
    return counts


def planned_jobs(result) -> dict[str, int]:
    """Jobs per rule from the job-stats table of a dry run."""
    rows = (line.split() for line in (result.stdout + result.stderr).splitlines())
    return {
        row[0]: int(row[1])
        for row in rows
        if len(row) == 2 and row[1].isdigit() and row[0] != "total"
    }


def planned_rules(result) -> set[str]:
    """Rule names from the job-stats table of a dry run."""
    return set(planned_jobs(result))


def refusal(config: dict) -> str:
    """Why the Snakefile refuses `config` (its schema validation, then adaptune's own checks),
    run in process; "" when it is accepted."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    from adaptune.core.config_checks import check_config

    try:
        validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
        check_config(config)
    except (WorkflowError, ValueError) as error:
        return str(error)
    return ""
