"""GPU as a Snakemake resource, the profiles, and the rules kept on the submitting node."""

import re

import pytest
import yaml

from conftest import REPO, Pipeline, tiny_pipeline_config, write_raw_csv

GPU_RULES = {"train_layernorm", "train_lora_attention", "train_lora_all", "evaluate", "fewshot"}
NETWORK_RULES = {"download_dataset", "download_reference", "prepare_model", "openai_finetune", "openai_evaluate"}


@pytest.fixture
def planner(tmp_path):
    pipeline = Pipeline(tmp_path / "run", tiny_pipeline_config(tmp_path / "no-model"))
    write_raw_csv(pipeline.path("data/labeled_data.csv"), per_class=40)
    return pipeline


def planned_resources(result) -> dict[str, set[str]]:
    """{rule: the `resources:` lines of its planned jobs} from a dry run's job listing."""
    resources: dict[str, set[str]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", result.stdout):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        line = re.search(r"^\s+resources: (.*)$", block, flags=re.M)
        if rule and line:
            resources.setdefault(rule[1], set()).add(line[1])
    return resources


def gpu_of(resources_line: str) -> int:
    match = re.search(r"\bgpu=(\d+)", resources_line)
    return int(match[1]) if match else 0


def test_gpu_jobs_ask_for_one_gpu_when_the_config_says_so(planner):
    on = planned_resources(planner.run("-n", "--config", "gpu=true"))
    assert GPU_RULES <= set(on), sorted(on)
    for rule, lines in on.items():
        expected = 1 if rule in GPU_RULES else 0
        assert {gpu_of(line) for line in lines} == {expected}, (rule, lines)


def test_no_job_asks_for_a_gpu_by_default(planner):
    off = planned_resources(planner.run("-n"))
    assert GPU_RULES <= set(off)
    assert all(gpu_of(line) == 0 for lines in off.values() for line in lines)


def test_the_gpt_j_config_uses_the_gpu():
    assert yaml.safe_load((REPO / "configs" / "gpt-j-6b.yaml").read_text())["gpu"] is True


def test_the_default_profile_offers_one_gpu():
    profile = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    assert profile["resources"] == {"gpu": 1}


def rule_names(planner) -> set[str]:
    result = planner.run("--list-rules", "--config", 'openai={"enabled": true}',
                         env={"OPENAI_API_KEY": "sk-test-not-used"})
    return {line.strip() for line in result.stdout.splitlines() if re.fullmatch(r"\s*\w+", line)}


def test_slurm_profile_names_real_rules_with_runtimes_and_an_account(planner):
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    rules = rule_names(planner)
    assert GPU_RULES | NETWORK_RULES <= rules
    assert set(profile["set-resources"]) <= rules, set(profile["set-resources"]) - rules
    assert set(profile["set-threads"]) <= rules
    assert profile["default-resources"]["slurm_account"] == "<your-account>"
    assert profile["default-resources"]["runtime"] > 0
    for rule in rules - NETWORK_RULES - {"all"}:
        assert "runtime" in profile["set-resources"].get(rule, {}), f"{rule}: no runtime in the profile"
    gpu_job = profile["set-resources"]["train_layernorm"]
    for rule in GPU_RULES | {"sweep_layernorm", "sweep_lora_attention", "sweep_lora_all"}:
        resources = profile["set-resources"][rule]
        assert (resources["slurm_partition"], resources["gpu_model"]) == ("<gpu-partition>", "<gpu-type>"), rule
    assert profile["default-resources"]["slurm_partition"] == "<cpu-partition>"
    # One place: the partition and GPU type are written once (an anchor the other GPU rules merge).
    text = (REPO / "profiles" / "slurm" / "config.yaml").read_text()
    assert text.count("<gpu-partition>") == text.count("<gpu-type>") == text.count("<cpu-partition>") == 1
    assert text.count("{<<: *gpu_job") == len(GPU_RULES) + 3 - 1 and gpu_job["runtime"] > 0


def slurm_plugin_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("snakemake_executor_plugin_slurm") is not None


def test_the_slurm_profile_plans_gpu_jobs_on_its_gpu_partition(planner, tmp_path):
    """`snakemake --profile profiles/slurm -n`: with the SLURM executor plugin when it is
    installed, else the same profile less `executor` (a dry run plans the same jobs); without
    conda's deployment, which this machine lacks."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    profile.pop("software-deployment-method")
    if not slurm_plugin_installed():
        profile.pop("executor")
    (tmp_path / "slurm").mkdir()
    (tmp_path / "slurm" / "config.yaml").write_text(yaml.safe_dump(profile))
    planned = planned_resources(planner.run("--profile", str(tmp_path / "slurm"), "-n", "--config", "gpu=true"))
    assert GPU_RULES <= set(planned)
    for rule, lines in planned.items():
        for line in lines:
            if rule in GPU_RULES:
                assert "slurm_partition=<gpu-partition>" in line and "gpu_model=<gpu-type>" in line, (rule, line)
                assert gpu_of(line) == 1
            else:
                assert "slurm_partition=<cpu-partition>" in line and "gpu_model" not in line, (rule, line)
            assert "slurm_account=<your-account>" in line


def test_a_ddp_training_run_asks_for_its_devices(planner):
    ddp = {"training": {"devices": 2, "strategy": "ddp", "quantizations": ["none"]}}
    # The default profile offers one GPU, and Snakemake caps a job's request at what is offered.
    planned = planned_resources(planner.run("-n", "--config", "gpu=true", "--resources", "gpu=2", config=ddp))
    for rule in ("train_layernorm", "train_lora_attention", "train_lora_all"):
        assert {gpu_of(line) for line in planned[rule]} == {2}, planned[rule]
    assert {gpu_of(line) for line in planned["evaluate"]} == {1}


def test_network_rules_are_local(planner):
    """The Snakefile declares them `localrules`, and Snakemake finds each of them a rule."""
    block = re.search(r"^localrules:\n((?:    \w+,?\n)+)", (REPO / "Snakefile").read_text(), flags=re.M)
    assert block, "the Snakefile declares no localrules"
    declared = set(re.findall(r"\w+", block[1]))
    assert declared == NETWORK_RULES
    result = planner.run("-n", "--config", 'openai={"enabled": true}',
                         env={"OPENAI_API_KEY": "sk-test-not-used"})
    assert "localrules directive specifies rules that are not present" not in result.stdout + result.stderr
