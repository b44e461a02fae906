"""Config overrides on the command line, as users type them: nested values typed by the schema,
merged into config.yaml's section, and refused with the key named when they do not fit."""

import pytest
import yaml

from adaptune.core.config import coerce_by_schema, load_schema, merge_overrides, with_defaults
from conftest import REPO, Pipeline, tiny_pipeline_config, write_raw_csv, write_reference_csvs

SCHEMA = load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")
DEFAULT = with_defaults(yaml.safe_load((REPO / "config.yaml").read_text()))


def test_string_leaves_take_the_schema_types():
    overrides = {
        "openai": {"enabled": "true", "chat_k": ["0", "5"], "base_url": "http://127.0.0.1:9"},
        "splits": {"train": "96", "reference": {"enabled": "false"}},
        "training": {"approaches": {"lora_all": {"learning_rate": "2e-4", "lora": {"r": "4"}}}},
        "evaluation": {"splits": ["test"]},
    }
    typed = coerce_by_schema(overrides, SCHEMA)
    assert typed == {
        "openai": {"enabled": True, "chat_k": [0, 5], "base_url": "http://127.0.0.1:9"},
        "splits": {"train": 96, "reference": {"enabled": False}},
        "training": {"approaches": {"lora_all": {"learning_rate": 2e-4, "lora": {"r": 4}}}},
        "evaluation": {"splits": ["test"]},
    }
    assert type(typed["openai"]["enabled"]) is bool and type(typed["splits"]["train"]) is int


def test_keys_under_additional_properties_are_typed_too():
    typed = coerce_by_schema(
        {"models": {"mine": {"attention_modules": ["q"], "path": "123"}}}, SCHEMA
    )
    assert typed["models"]["mine"]["path"] == "123"  # a string key stays a string


def test_a_value_that_does_not_convert_is_left_for_the_validator():
    assert coerce_by_schema({"splits": {"train": "many"}}, SCHEMA) == {"splits": {"train": "many"}}
    assert coerce_by_schema({"openai": {"enabled": "maybe"}}, SCHEMA) == {
        "openai": {"enabled": "maybe"}
    }


def test_a_nested_override_keeps_the_sections_other_keys():
    merged = merge_overrides(
        DEFAULT, {"splits": {"train": "96"}, "openai": {"enabled": "true"}}, SCHEMA
    )
    assert merged["splits"] == {**DEFAULT["splits"], "train": 96}
    assert merged["openai"] == {**DEFAULT["openai"], "enabled": True}
    assert DEFAULT["splits"]["train"] == 1000  # the input is not changed


@pytest.fixture
def workdir_pipeline(tmp_path):
    """The real workflow on a synthetic dataset; only the data stages run, so no model is built."""
    pipeline = Pipeline(tmp_path / "run", tiny_pipeline_config(tmp_path / "no-model"))
    write_raw_csv(pipeline.path("data/labeled_data.csv"), per_class=40)
    write_reference_csvs(pipeline.path("data"))
    return pipeline


def test_nested_override_reaches_the_job_with_its_type(workdir_pipeline):
    workdir_pipeline.run("results/splits/train.csv", "--config", 'splits={"train": 9}')
    rows = workdir_pipeline.path("results/splits/train.csv").read_text().splitlines()[1:]
    assert len(rows) == 9
    # val and test kept the sizes of the config file's section
    assert len(workdir_pipeline.path("results/splits/val.csv").read_text().splitlines()[1:]) == 12


def test_a_study_in_its_own_workdir_draws_other_train_splits_from_the_shared_data(workdir_pipeline):
    """The raw dataset stays where snakemake was started (data/), also for the train split's
    other draws (training.split_seeds) of a study that writes into its own folder."""
    draw = workdir_pipeline.path("study/results/splits/train-split7.csv")
    workdir_pipeline.run(
        "results/splits/train-split7.csv",
        "--config",
        "workdir=study",
        'training={"split_seeds": [7]}',
    )
    assert len(draw.read_text().splitlines()[1:]) == 24
    assert not workdir_pipeline.path("study/data").exists()


def test_the_readme_openai_override_plans_the_openai_rules(workdir_pipeline):
    result = workdir_pipeline.run(
        "-n", "--config", 'openai={"enabled": true}', env={"OPENAI_API_KEY": "sk-test-not-used"}
    )
    assert "openai_finetune" in result.stdout and "openai_evaluate" in result.stdout


BAD_OVERRIDES = [
    ('splits={"train": "many"}', "'many' is not of type 'integer'"),
    ('openai={"enabled": "maybe"}', "'maybe' is not of type 'boolean'"),
    ('splits={"trains": 5}', "'trains' was unexpected"),
]


@pytest.mark.parametrize("override, message", BAD_OVERRIDES)
def test_a_bad_nested_override_is_refused_with_the_key(override, message):
    """As the Snakefile does it, in process: snakemake's own parsing of --config, the overrides
    typed and merged, the schema's validation."""
    from snakemake.cli import parse_config
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    merged = merge_overrides(DEFAULT, parse_config([override]), SCHEMA)
    with pytest.raises(WorkflowError) as refused:
        validate(merged, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    assert message in str(refused.value)


def test_a_bad_nested_override_stops_snakemake_before_any_job(workdir_pipeline):
    override, message = BAD_OVERRIDES[-1]
    result = workdir_pipeline.run("-n", "--config", override, check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not workdir_pipeline.path("results").exists()
