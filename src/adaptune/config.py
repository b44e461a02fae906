"""Command-line config overrides, typed by the config schema.

`snakemake --config openai='{"enabled": true}'` parses the nested value with YAML's base loader,
which keeps every leaf a string ("true", "96"). The schema knows what each key should be, so
each string leaf of an override is converted to the type the schema gives that key before the
config is validated; a string that does not convert stays as it is, and validation then names
the key and the type it expected. Values from config files are left alone: YAML typed them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import yaml

_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}


def coerce_by_schema(value: Any, schema: Mapping, root: Mapping | None = None) -> Any:
    """`value` with each string leaf converted to the type its place in `schema` asks for."""
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if isinstance(value, Mapping):
        return {key: coerce_by_schema(item, _property_schema(schema, key), root)
                for key, item in value.items()}
    if isinstance(value, list):
        items = schema.get("items", {})
        return [coerce_by_schema(item, items if isinstance(items, Mapping) else {}, root)
                for item in value]
    if isinstance(value, str):
        return _convert_string(value, _types(schema, root))
    return value


def merge_overrides(config: dict, overrides: Mapping, schema: Mapping) -> dict:
    """`config` with the command-line `overrides` typed by `schema` and merged in key by key,
    so that a nested override changes its keys and keeps the section's others."""
    merged = copy.deepcopy(config)
    _deep_update(merged, coerce_by_schema(overrides, schema))
    return merged


def load_schema(path) -> dict:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _deep_update(base: dict, update: Mapping) -> None:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def _resolve(schema: Mapping, root: Mapping) -> Mapping:
    """Follow a local `$ref` such as "#/definitions/lora"."""
    while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str):
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        schema = target
    return schema if isinstance(schema, Mapping) else {}


def _property_schema(schema: Mapping, key: str) -> Mapping:
    properties = schema.get("properties", {})
    if key in properties:
        return properties[key]
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, Mapping) else {}


def _types(schema: Mapping, root: Mapping) -> list[str]:
    """The types a value may take here, in the schema's order; alternatives (anyOf, oneOf)
    count too."""
    declared = schema.get("type", [])
    types = [declared] if isinstance(declared, str) else list(declared)
    for keyword in ("anyOf", "oneOf"):
        for alternative in schema.get(keyword, []):
            types += _types(_resolve(alternative, root), root)
    return types


def _convert_string(text: str, types: list[str]) -> Any:
    if not types or "string" in types:
        return text
    for kind in types:
        try:
            if kind == "boolean" and text.lower() in _TRUE | _FALSE:
                return text.lower() in _TRUE
            if kind == "integer":
                return int(text)
            if kind == "number":
                return float(text)
            if kind == "null" and text.lower() in {"null", "none", "~", ""}:
                return None
            if kind in ("array", "object"):
                parsed = yaml.safe_load(text)
                if isinstance(parsed, list if kind == "array" else dict):
                    return parsed
        except ValueError:
            continue
    return text
