"""The config schema: the one source of the config's defaults, and the typing of command-line
overrides.

`schema_defaults()` is the config a file that sets nothing gets: every default of
workflow/schemas/config.schema.yaml in place, as Snakemake's validation fills them in. The
settings dataclasses take their defaults from it, so a direct call computes what the pipeline
computes.

Command-line overrides:

`snakemake --config openai='{"enabled": true}'` parses the nested value with YAML's base loader,
which keeps every leaf a string ("true", "96"). The schema knows what each key should be, so
each string leaf of an override is converted to the type the schema gives that key before the
config is validated; a string that does not convert stays as it is, and validation then names
the key and the type it expected. Values from config files are left alone: YAML typed them.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "config.schema.yaml"
_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}


def coerce_by_schema(value: Any, schema: Mapping, root: Mapping | None = None) -> Any:
    """`value` with each string leaf converted to the type its place in `schema` asks for."""
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if isinstance(value, Mapping):
        return {
            key: coerce_by_schema(item, _property_schema(schema, key), root)
            for key, item in value.items()
        }
    if isinstance(value, list):
        items = schema.get("items", {})
        return [
            coerce_by_schema(item, items if isinstance(items, Mapping) else {}, root)
            for item in value
        ]
    if isinstance(value, str):
        return _convert_string(value, _types(schema, root))
    return value


def merge_overrides(config: dict, overrides: Mapping, schema: Mapping) -> dict:
    """`config` with the command-line `overrides` typed by `schema` and merged in key by key,
    so that a nested override changes its keys and keeps the section's others."""
    merged = copy.deepcopy(config)
    _deep_update(merged, coerce_by_schema(overrides, schema))
    return merged


# libyaml's safe loader where PyYAML has it: every Snakemake run parses the schema, and so does
# every job that reads a default, about ten times faster than with the pure-Python loader.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_schema(path=SCHEMA_PATH) -> dict:
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_SAFE_LOADER)


@functools.cache
def _defaults() -> dict:
    if not SCHEMA_PATH.is_file():
        raise FileNotFoundError(
            f"{SCHEMA_PATH}: the config schema, source of the settings' defaults, "
            "is missing; run from a checkout of adaptune"
        )
    return _filled(load_schema())


def schema_defaults(*path: str):
    """The schema's default at `path` (keys into the config, e.g. "training", "max_length"),
    nested sections filled in; a fresh copy, so callers may change it."""
    node = _defaults()
    for key in path:
        node = node[key]
    return copy.deepcopy(node)


def schema_fields(*path: str):
    """A class decorator, under @dataclass: each annotated field with no default of its own
    takes the schema's default of the key of the same name in the section at `path` (a list as
    a tuple; a section through a factory, so instances never share it)."""

    def give_defaults(cls):
        section = schema_defaults(*path)
        for name in cls.__dict__.get("__annotations__", {}):
            if name in section and name not in cls.__dict__:
                value = section[name]
                if isinstance(value, dict):
                    setattr(
                        cls,
                        name,
                        dataclasses.field(default_factory=functools.partial(copy.deepcopy, value)),
                    )
                else:
                    setattr(cls, name, tuple(value) if isinstance(value, list) else value)
        return cls

    return give_defaults


def with_defaults(config: Mapping) -> dict:
    """`config` with every key it leaves out taken from the schema's defaults, section by
    section (what validation does to config.yaml)."""
    filled = schema_defaults()
    _deep_update(filled, config)
    return filled


def _filled(schema: Mapping):
    """The default a schema node gives: an object's own default with its properties' defaults
    filled in beneath it (as validation fills them into a config)."""
    properties = schema.get("properties")
    if schema.get("type") == "object" and isinstance(properties, Mapping):
        value = copy.deepcopy(schema.get("default", {}))
        for key, prop in properties.items():
            default = _filled(prop)
            if default is not _NONE and key not in value:
                value[key] = default
        return value
    return copy.deepcopy(schema["default"]) if "default" in schema else _NONE


_NONE = object()  # no default


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
