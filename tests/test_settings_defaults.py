"""The settings dataclasses' defaults agree with the schema's, key by key.

The workflow always passes every key (the schema fills the defaults in), so a dataclass default
only matters to tests and direct calls; but one that drifts from the schema would make a direct
call compute something other than the pipeline. The schema is the source; this test holds the
dataclasses to it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from adaptune.config import load_schema
from adaptune.data import SplitSettings
from adaptune.evaluation import EvaluationSettings
from adaptune.openai.settings import OpenAISettings
from adaptune.training import LoraSettings, TrainSettings

SCHEMA = load_schema(Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml")


def section(*path: str) -> dict:
    node = SCHEMA
    for key in path:
        node = node["properties"][key]
    return node["properties"]


CASES = {
    "SplitSettings / splits": (SplitSettings, section("splits")),
    "TrainSettings / training": (TrainSettings, section("training")),
    "TrainSettings / training.approaches.lora_all": (TrainSettings, section("training", "approaches", "lora_all")),
    "LoraSettings / the lora definition": (LoraSettings, SCHEMA["definitions"]["lora"]["properties"]),
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
            disagreements.append(f"{cls.__name__}.{field.name} = {default!r}, schema default {expected!r}")
    assert compared >= 3, f"{case}: too few shared keys compared ({compared}); did a section move?"
    assert not disagreements, "\n".join(disagreements)
