"""The settings dataclasses' defaults agree with the schema's, key by key.

The workflow always passes every key (the schema fills the defaults in), so a dataclass default
only matters to tests and direct calls; but one that drifts from the schema would make a direct
call compute something other than the pipeline. The schema is the source; this test holds the
dataclasses to it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from adaptune.core.config import load_schema
from adaptune.data.splits import SplitSettings
from adaptune.evaluate.run import EvaluationSettings
from adaptune.openai.settings import OpenAISettings
from adaptune.train.run import LoraSettings, TrainSettings

SCHEMA = load_schema(
    Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
)


def section(*path: str) -> dict:
    node = SCHEMA
    for key in path:
        node = node["properties"][key]
    return node["properties"]


CASES = {
    "SplitSettings / splits": (SplitSettings, section("splits")),
    "TrainSettings / training": (TrainSettings, section("training")),
    "TrainSettings / training.approaches.lora_all": (
        TrainSettings,
        section("training", "approaches", "lora_all"),
    ),
    "LoraSettings / the lora definition": (
        LoraSettings,
        SCHEMA["definitions"]["lora"]["properties"],
    ),
    "EvaluationSettings / evaluation": (EvaluationSettings, section("evaluation")),
    "OpenAISettings / openai": (OpenAISettings, section("openai")),
}


def _default(field: dataclasses.Field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


@pytest.mark.parametrize("case", list(CASES))
def test_dataclass_defaults_equal_the_schema_defaults(case):
    cls, properties = CASES[case]
    compared, disagreements = 0, []
    for field in dataclasses.fields(cls):
        prop = properties.get(field.name)
        default = _default(field)
        if not isinstance(prop, dict) or "default" not in prop or default is dataclasses.MISSING:
            continue
        if prop.get("type") == "object":  # a nested section: its keys are compared on their own
            continue
        expected = prop["default"]
        value = list(default) if isinstance(default, tuple) else default
        compared += 1
        if value != expected:
            disagreements.append(
                f"{cls.__name__}.{field.name} = {default!r}, schema default {expected!r}"
            )
    assert compared >= 3, f"{case}: too few shared keys compared ({compared}); did a section move?"
    assert not disagreements, "\n".join(disagreements)


def _schema_default(*path: str):
    node = SCHEMA
    for key in path:
        node = node["properties"][key]
    return node["default"]


def test_a_direct_call_trains_the_first_cell_of_the_default_grid():
    """Fields whose config key is a list (the grid's factors) default to the list's first entry;
    the comparison by name above cannot see them."""
    direct = TrainSettings(approach="lora_all", learning_rate=1e-3, epochs=1, lora=LoraSettings())
    assert direct.quantization == _schema_default("training", "quantizations")[0]
    assert direct.seed == _schema_default("training", "seeds")[0]
    assert direct.style == _schema_default("training", "styles")[0]
    assert list(direct.labels) == _schema_default("labels")


def test_the_schema_refuses_the_lora_dropout_the_settings_refuse():
    """A value the code refuses must be refused by the schema, before any job starts."""
    import jsonschema

    lora = SCHEMA["definitions"]["lora"]
    jsonschema.validate({"dropout": 0.5}, lora)
    with pytest.raises(ValueError, match="dropout"):
        LoraSettings(dropout=1.0)
    with pytest.raises(jsonschema.ValidationError, match="1.0"):
        jsonschema.validate({"dropout": 1.0}, lora)


def test_from_config_takes_the_schema_defaults_for_keys_left_out():
    from adaptune.evaluate.baseline import BaselineSettings

    assert EvaluationSettings.from_config({}) == EvaluationSettings(
        batch_size=_schema_default("evaluation", "batch_size"),
        bootstrap_samples=_schema_default("evaluation", "bootstrap_samples"),
        seed=_schema_default("evaluation", "seed"),
        fewshot_max_length=section("evaluation", "fewshot")["max_length"]["default"],
    )
    assert BaselineSettings.from_config({}).bootstrap_samples == _schema_default(
        "evaluation", "bootstrap_samples"
    )
    assert SplitSettings.from_config({}).reference == {
        key: prop["default"] for key, prop in section("splits", "reference").items()
    }


# Keys (and sections) config.yaml shows at their default because a user looks for them there;
# the analysis plan is shown whole, fixed before any result is seen.
# What config.yaml shows at its default because it is what a user changes: the model, the grid
# of cells, each approach's learning rate and epochs, the split evaluated, the analysis plan's
# families, the few-shot counts and the OpenAI stage. Every other default lives in the schema
# alone.
SHOWN_AT_DEFAULT = {
    "model",
    "training.styles",
    "training.quantizations",
    "training.seeds",
    "training.precision",
    "training.lr_schedule",
    *(
        f"training.approaches.{approach}.{key}"
        for approach in ("layernorm", "lora_attention", "lora_all", "head")
        for key in ("enabled", "learning_rate", "epochs")
    ),
    "evaluation.splits",
    "evaluation.fewshot.k",
    "evaluation.analysis.comparisons",
    "openai.enabled",
    "openai.finetune_models",
    "openai.chat_models",
    "openai.chat_k",
}


def test_config_yaml_shows_what_a_user_changes_and_repeats_no_other_default():
    import yaml

    from adaptune.core.config import schema_defaults

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())

    def leaves(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                yield from leaves(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value

    repeated = []
    for key, value in leaves(config, ""):
        if key.startswith("models."):  # the model entries have no default
            continue
        if key not in SHOWN_AT_DEFAULT and value == schema_defaults(*key.split(".")):
            repeated.append(key)
    assert not repeated, f"config.yaml repeats the schema's defaults of {repeated}"


def test_the_trainer_knobs_at_their_defaults_leave_a_cells_params_as_they_were():
    """A cell's params hold devices, strategy and accumulate_grad_batches only where a study sets
    them apart from the schema's default, so the studies trained before these keys had a default
    keep their fingerprints (the settings take the dropped keys' defaults from the schema too)."""
    from adaptune.train.run import TRAINER_KNOBS, without_default_knobs

    training = {"learning_rate": 1e-3, **{k: _schema_default("training", k) for k in TRAINER_KNOBS}}
    assert without_default_knobs(training) == {"learning_rate": 1e-3}
    changed = {**training, "devices": 2, "strategy": "ddp"}
    assert without_default_knobs(changed) == {
        "learning_rate": 1e-3,
        "devices": 2,
        "strategy": "ddp",
    }


def _keys_with_schema_defaults(node, found=None) -> set[str]:
    found = set() if found is None else found
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            if isinstance(value, dict) and "default" in value:
                found.add(key)
        for value in node.values():
            _keys_with_schema_defaults(value, found)
    elif isinstance(node, list):
        for value in node:
            _keys_with_schema_defaults(value, found)
    return found


def test_no_rule_or_script_stands_in_a_literal_for_a_schema_default():
    """`config[...].get("devices", 1)` repeats the schema's default in code, where it can drift;
    the validated config holds every default, so the rules and scripts index it."""
    import re

    repo = Path(__file__).resolve().parents[1]
    defaulted = _keys_with_schema_defaults(SCHEMA)
    assert {"devices", "seeds", "epochs"} <= defaulted
    literal = re.compile(
        r"""\.get\(\s*["'](\w+)["']\s*,\s*(-?[\d.]+|["'][^"']*["']|True|False)\s*\)"""
    )
    files = [repo / "Snakefile", *(repo / "workflow").rglob("*.smk")]
    files += list((repo / "workflow" / "scripts").glob("*.py"))
    stand_ins = [
        f"{path.relative_to(repo)}: .get({match.group(1)!r}, {match.group(2)})"
        for path in files
        for match in literal.finditer(path.read_text())
        if match.group(1) in defaulted
    ]
    assert not stand_ins, "\n".join(stand_ins)
