"""The names of approaches, quantizations and splits: one module holds them, and the schema's
enums (which validation needs as literals) say the same."""

from __future__ import annotations

from pathlib import Path

from adaptune.core.config import load_schema
from adaptune.core.names import APPROACHES, QUANTIZATIONS, SPLITS, split_dir

SCHEMA = load_schema(
    Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
)


def _enums(node, found):
    """Every `enum` list in the schema, by the key that holds it."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict) and "enum" in value:
                found.setdefault(key, []).append(value["enum"])
            if (
                isinstance(value, dict)
                and isinstance(value.get("items"), dict)
                and "enum" in value["items"]
            ):
                found.setdefault(key, []).append(value["items"]["enum"])
            _enums(value, found)
    return found


def test_the_schema_lists_the_names_of_the_names_module():
    enums = _enums(SCHEMA, {})
    quantization_lists = enums["quantization"] + enums["quantizations"]
    assert len(quantization_lists) >= 3
    assert all(sorted(e) == sorted(QUANTIZATIONS) for e in quantization_lists), quantization_lists
    assert set(enums["splits"][0]) <= set(SPLITS)
    approaches = SCHEMA["properties"]["training"]["properties"]["approaches"]["properties"]
    assert tuple(approaches) == APPROACHES


def test_test_lies_at_the_top_and_other_splits_below(tmp_path):
    assert split_dir(tmp_path, "test") == tmp_path
    assert split_dir(tmp_path, "val") == tmp_path / "val"
