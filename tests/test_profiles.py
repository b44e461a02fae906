"""GPU as a Snakemake resource, the profiles, and the rules kept on the submitting node."""

import re
import shutil

import pytest
import yaml

from conftest import REPO, Pipeline, tiny_pipeline_config, write_raw_csv

GPU_RULES = {"train", "evaluate", "fewshot"}
NETWORK_RULES = {
    "download_dataset",
    "download_reference",
    "fetch_model",
    "openai_finetune",
    "openai_evaluate",
}


@pytest.fixture
def planner(tmp_path):
    pipeline = Pipeline(tmp_path / "run", tiny_pipeline_config(tmp_path / "no-model"))
    write_raw_csv(pipeline.path("data/labeled_data.csv"), per_class=40)
    return pipeline


def planned_jobs(result) -> list[tuple[str, str]]:
    """(rule, its block of the listing) for every job a dry run plans."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", result.stdout):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        if rule:
            jobs.append((rule[1], block))
    return jobs


def planned_resources(result) -> dict[str, set[str]]:
    """{rule: the `resources:` lines of its planned jobs} from a dry run's job listing."""
    resources: dict[str, set[str]] = {}
    for rule, block in planned_jobs(result):
        if line := re.search(r"^\s+resources: (.*)$", block, flags=re.M):
            resources.setdefault(rule, set()).add(line[1])
    return resources


def planned_threads(result) -> dict[str, set[int]]:
    """{rule: the threads of its planned jobs} (Snakemake prints a `threads:` line above 1)."""
    threads: dict[str, set[int]] = {}
    for rule, block in planned_jobs(result):
        line = re.search(r"^\s+threads: (\d+)$", block, flags=re.M)
        threads.setdefault(rule, set()).add(int(line[1]) if line else 1)
    return threads


def gpu_of(resources_line: str) -> int:
    match = re.search(r"\bgpu=(\d+)", resources_line)
    return int(match[1]) if match else 0


def test_gpu_jobs_ask_for_one_gpu_and_the_configured_threads_when_the_config_says_so(planner):
    """Planned with the default profile, which offers one GPU to the jobs that ask for it."""
    shutil.copytree(REPO / "profiles" / "default", planner.path("profiles/default"))
    plan = planner.run("-n", "--profile", "profiles/default", "--config", "gpu=true", "threads=1")
    on = planned_resources(plan)
    assert GPU_RULES <= set(on), sorted(on)
    for rule, lines in on.items():
        expected = 1 if rule in GPU_RULES else 0
        assert {gpu_of(line) for line in lines} == {expected}, (rule, lines)
    assert all(threads == {1} for threads in planned_threads(plan).values())


def test_no_job_asks_for_a_gpu_by_default_and_model_jobs_take_one_thread(default_plan):
    off = planned_resources(default_plan)
    assert GPU_RULES <= set(off)
    assert all(gpu_of(line) == 0 for lines in off.values() for line in lines)
    threads = planned_threads(default_plan)
    # One thread each (the config's `threads`): with --cores 2, two model jobs run at once.
    assert all(threads[rule] == {1} for rule in GPU_RULES), threads
    assert threads["sample_splits"] == {1}


@pytest.fixture(scope="module")
def listed_rules(tmp_path_factory):
    """`snakemake --list-rules` with every stage on (OpenAI too)."""
    pipeline = Pipeline(
        tmp_path_factory.mktemp("rules") / "run", tiny_pipeline_config(REPO / "no-model")
    )
    write_raw_csv(pipeline.path("data/labeled_data.csv"), per_class=40)
    return pipeline.run(
        "--list-rules",
        "--config",
        'openai={"enabled": true}',
        env={"OPENAI_API_KEY": "sk-test-not-used"},
    )


def rule_names(listed) -> set[str]:
    return {line.strip() for line in listed.stdout.splitlines() if re.fullmatch(r"\s*\w+", line)}


def test_slurm_profile_names_real_rules_with_runtimes_and_an_account(listed_rules):
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    rules = rule_names(listed_rules)
    assert GPU_RULES | NETWORK_RULES <= rules
    assert set(profile["set-resources"]) <= rules, set(profile["set-resources"]) - rules
    assert set(profile["set-threads"]) <= rules
    assert profile["default-resources"]["slurm_account"] == "<your-account>"
    assert profile["default-resources"]["runtime"] > 0
    for rule in rules - NETWORK_RULES - {"all"}:
        assert "runtime" in profile["set-resources"].get(rule, {}), (
            f"{rule}: no runtime in the profile"
        )
    gpu_job = profile["set-resources"]["train"]
    # the sweep's training runs and its extension, and the timing of training steps that
    # decides the precision
    more_gpu_jobs = {"sweep", "sweep_extend", "hardware"}
    for rule in GPU_RULES | more_gpu_jobs:
        resources = profile["set-resources"][rule]
        assert (resources["slurm_partition"], resources["gpu_model"]) == (
            "<gpu-partition>",
            "<gpu-type>",
        ), rule
    assert profile["default-resources"]["slurm_partition"] == "<cpu-partition>"
    # One place: the partition and GPU type are written once (an anchor the other GPU rules merge).
    text = (REPO / "profiles" / "slurm" / "config.yaml").read_text()
    assert (
        text.count("<gpu-partition>")
        == text.count("<gpu-type>")
        == text.count("<cpu-partition>")
        == 1
    )
    assert text.count("{<<: *gpu_job") == len(GPU_RULES | more_gpu_jobs) - 1
    assert gpu_job["runtime"] > 0
    assert profile["set-resources"]["sweep_extend"]["runtime"] > gpu_job["runtime"]


def test_the_slurm_profile_names_no_approach(listed_rules):
    """Every approach trains through the same three rules, so an approach added to the registry
    needs nothing in the profile (and the rule list holds no rule of one approach)."""
    from adaptune.core.names import APPROACHES

    text = (REPO / "profiles" / "slurm" / "config.yaml").read_text()
    for approach in APPROACHES:
        assert not re.search(rf"\b{approach}\b", text), approach
        named = re.compile(rf"(^|_){approach}($|_)")
        assert not {rule for rule in rule_names(listed_rules) if named.search(rule)}, approach


def test_the_slurm_profile_plans_gpu_jobs_on_its_gpu_partition(planner, tmp_path):
    """`snakemake --profile profiles/slurm -n` with the SLURM executor plugin (the `cluster`
    extra, part of `test`); without conda's deployment, which this machine lacks."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    profile.pop("software-deployment-method")
    (tmp_path / "slurm").mkdir()
    (tmp_path / "slurm" / "config.yaml").write_text(yaml.safe_dump(profile))
    planned = planned_resources(
        planner.run("--profile", str(tmp_path / "slurm"), "-n", "--config", "gpu=true")
    )
    assert GPU_RULES <= set(planned)
    for rule, lines in planned.items():
        for line in lines:
            if rule in GPU_RULES:
                assert (
                    "slurm_partition=<gpu-partition>" in line and "gpu_model=<gpu-type>" in line
                ), (rule, line)
                assert gpu_of(line) == 1
            else:
                assert "slurm_partition=<cpu-partition>" in line and "gpu_model" not in line, (
                    rule,
                    line,
                )
            assert "slurm_account=<your-account>" in line


def test_a_ddp_training_run_asks_for_its_devices(planner):
    ddp = {"training": {"devices": 2, "strategy": "ddp", "quantizations": ["none"]}}
    # The default profile offers one GPU, and Snakemake caps a job's request at what is offered.
    planned = planned_resources(
        planner.run("-n", "--config", "gpu=true", "--resources", "gpu=2", config=ddp)
    )
    assert {gpu_of(line) for line in planned["train"]} == {2}, planned["train"]
    assert {gpu_of(line) for line in planned["evaluate"]} == {1}


def resource_values(line: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in line.split(", ") if "=" in item)


def test_the_slurm_profile_gives_each_planned_job_of_the_gpt_j_study_its_node_memory_and_time(
    planner,
):
    """configs/gpt-j-6b.yaml planned under the SLURM profile (less the executor and conda, which
    need a cluster): the jobs asking for a GPU are exactly those sent to the GPU partition, and
    every job gets an account, a run-time limit and at least the memory its rule asks for."""
    study = yaml.safe_load((REPO / "configs" / "gpt-j-6b.yaml").read_text())
    study["models"] = {"gpt-j-6b": planner.config["models"]["tiny-gptj"]}  # nothing to fetch
    study.setdefault("training", {})["styles"] = ["instruction"]
    planner.path("gpt-j.yaml").parent.mkdir(parents=True, exist_ok=True)
    planner.path("gpt-j.yaml").write_text(yaml.safe_dump(study))
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    here = {
        k: v
        for k, v in profile.items()
        if k not in ("executor", "software-deployment-method", "use-conda")
    }
    planner.path("profiles/slurm").mkdir(parents=True)
    planner.path("profiles/slurm/config.yaml").write_text(yaml.safe_dump(here))

    own = planned_resources(planner.run("-n", "--configfile", "gpt-j.yaml"))
    slurm = planned_resources(
        planner.run("-n", "--configfile", "gpt-j.yaml", "--profile", "profiles/slurm")
    )
    assert set(slurm) == set(own) and GPU_RULES <= set(slurm), sorted(slurm)
    gpu_partition = profile["set-resources"]["train"]["slurm_partition"]
    assert gpu_partition != profile["default-resources"]["slurm_partition"]
    for rule, lines in slurm.items():
        asked = max(int(resource_values(line).get("mem_mb", 0)) for line in own[rule])
        for line in lines:
            values = resource_values(line)
            assert values["slurm_account"] == profile["default-resources"]["slurm_account"], (
                rule,
                line,
            )
            assert int(values["runtime"]) > 0, (rule, line)
            assert int(values["mem_mb"]) >= asked, (rule, values["mem_mb"], asked)
            on_gpu = values["slurm_partition"] == gpu_partition
            # hardware: the precision decision of `auto`, made on the GPU
            assert on_gpu == (gpu_of(line) == 1) == (rule in GPU_RULES | {"hardware"}), (rule, line)


def test_network_rules_are_local(listed_rules):
    """The Snakefile declares them `localrules`, and Snakemake finds each of them a rule."""
    block = re.search(
        r"^localrules:\n((?:    \w+,?\n)+)", (REPO / "Snakefile").read_text(), flags=re.M
    )
    assert block, "the Snakefile declares no localrules"
    declared = set(re.findall(r"\w+", block[1]))
    assert declared == NETWORK_RULES
    assert declared <= rule_names(listed_rules)
    assert (
        "localrules directive specifies rules that are not present"
        not in listed_rules.stdout + listed_rules.stderr
    )


def slurm_profile_here(planner, tmp_path) -> str:
    """profiles/slurm as written, less conda's deployment, which this machine lacks (the executor
    stays: the plan is the SLURM executor plugin's, as installed by the `cluster` extra)."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    profile.pop("software-deployment-method")
    (tmp_path / "slurm").mkdir(exist_ok=True)
    (tmp_path / "slurm" / "config.yaml").write_text(yaml.safe_dump(profile))
    return str(tmp_path / "slurm")


DDP = {"training": {"devices": 2, "strategy": "ddp", "quantizations": ["none"]}}


def test_the_slurm_profile_plans_ddp_jobs_with_all_their_gpus_as_one_task(planner, tmp_path):
    """The default profile (loaded on every run, this one included) sets no GPU limit that would
    cap a cluster's DDP job at one GPU; the job asks for no SLURM tasks (one task holds the GPUs,
    Lightning starts a process per GPU) and the profile resubmits failed jobs."""
    shutil.copytree(REPO / "profiles" / "default", planner.path("profiles/default"))
    profile = slurm_profile_here(planner, tmp_path)
    plan = planner.run("-n", "--profile", profile, "--config", "gpu=true", config=DDP)
    assert "workflow specific profile profiles/default" in plan.stderr
    planned = planned_resources(plan)
    assert {gpu_of(line) for line in planned["train"]} == {2}, planned["train"]
    for line in planned["train"]:
        assert not {"tasks", "tasks_per_gpu", "mpi"} & set(resource_values(line)), line
    assert {gpu_of(line) for line in planned["evaluate"]} == {1}
    assert yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())["retries"] >= 1


def test_on_its_own_machine_snakemake_offers_one_gpu_unless_told_more(planner):
    """Locally GPU jobs run one at a time: one GPU is offered, and a request above it is capped."""
    shutil.copytree(REPO / "profiles" / "default", planner.path("profiles/default"))
    capped = planned_resources(planner.run("-n", "--config", "gpu=true", config=DDP))
    assert {gpu_of(line) for line in capped["train"]} == {1}
    offered = planned_resources(
        planner.run("-n", "--config", "gpu=true", "--resources", "gpu=4", config=DDP)
    )
    assert {gpu_of(line) for line in offered["train"]} == {2}


@pytest.mark.parametrize(
    "training, per_process_bytes, devices",
    [({"quantizations": ["8bit"]}, 2, 1), (DDP["training"], 4, 2)],
)
def test_training_jobs_ask_for_the_host_memory_their_processes_load(
    planner, training, per_process_bytes, devices
):
    """GPT-J's parameter count from configs/gpt-j-6b.yaml: every process first loads the base on
    the host (fp32 unquantized, the fp16 checkpoint on the way to bitsandbytes)."""
    study = yaml.safe_load((REPO / "configs" / "gpt-j-6b.yaml").read_text())
    parameters = study["models"]["gpt-j-6b"]["parameters"]
    tiny = planner.config["models"]["tiny-gptj"]
    config = {"models": {"tiny-gptj": {**tiny, "parameters": parameters}}, "training": training}
    planned = planned_resources(
        planner.run("-n", "--config", "gpu=true", "--resources", "gpu=2", config=config)
    )
    expected = round(devices * parameters * per_process_bytes * 1.2 / 2**20) + 4000
    asked = {int(resource_values(line)["mem_mb"]) for line in planned["train"]}
    assert asked == {expected}, planned["train"]
    assert expected > 12_000 * per_process_bytes // 2 * devices  # the weights alone: 12 GB in fp16
    plain = planned_resources(
        planner.run(
            "-n", "--config", "gpu=true", "--resources", "gpu=2", config={"training": training}
        )
    )
    assert {int(resource_values(line)["mem_mb"]) for line in plain["train"]} == {6000}


def test_the_gpt_j_config_prompts_and_trains_one_8bit_base_with_checkpointing():
    study = yaml.safe_load((REPO / "configs" / "gpt-j-6b.yaml").read_text())
    assert study["training"]["quantizations"] == ["8bit"]
    assert study["evaluation"]["fewshot"]["quantization"] == "8bit"  # the fine-tuned systems' base
    assert study["training"]["precision"] == "auto"  # bf16-mixed from capability 8.0, else 16-mixed
    assert study["training"]["gradient_checkpointing"] is True
    text = (REPO / "configs" / "gpt-j-6b.yaml").read_text()
    assert "bf16-mixed\n" not in text and "halves the activations" not in text
