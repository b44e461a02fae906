"""The registry of approaches: the one place their names, labels, colours and order come from
(as PEFT maps a method's name to its config). names.APPROACHES, adaptune.core.systems, the training
and sweep rules, the wildcard constraints and the report all ask it.

Each approach is a module defining `APPROACH` (adaptune.approaches.base.Approach): this
package's own, in BUILTIN's order (the rules' and tables' order), then those named, comma
separated, in the environment variable ADAPTUNE_APPROACH_MODULES (importable module paths, e.g.
`my_study.approaches.bitfit`), so a study can add one without editing adaptune. See
docs/approaches.md.
"""

from __future__ import annotations

import importlib
import os

from adaptune.approaches.base import Approach

BUILTIN = ("layernorm", "lora_attention", "lora_all", "head")
MODULES_VARIABLE = "ADAPTUNE_APPROACH_MODULES"


def approach_modules() -> list[str]:
    """The module paths of every approach: this package's, then the environment's."""
    extra = [
        path.strip() for path in os.environ.get(MODULES_VARIABLE, "").split(",") if path.strip()
    ]
    return [f"{__name__}.{name}" for name in BUILTIN] + extra


def load_registry() -> dict[str, Approach]:
    """name -> Approach of every module of approach_modules(), in that order."""
    registry: dict[str, Approach] = {}
    for path in approach_modules():
        try:
            module = importlib.import_module(path)
        except ImportError as error:
            raise ImportError(
                f"{MODULES_VARIABLE}: cannot import approach module {path!r} ({error})"
            ) from None
        approach = getattr(module, "APPROACH", None)
        if not isinstance(approach, Approach):
            raise TypeError(f"approach module {path!r} defines no APPROACH = Approach(...)")
        if approach.name in registry:
            raise ValueError(f"approach module {path!r}: the name {approach.name!r} is taken")
        registry[approach.name] = approach
    return registry


REGISTRY = load_registry()


def get(name: str) -> Approach:
    """The approach of that name; a clear error naming the registered ones otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"approach {name!r}: not registered; expected one of {list(REGISTRY)} "
            f"(more through {MODULES_VARIABLE})"
        ) from None


def names() -> tuple[str, ...]:
    """Every approach's name, in registry order (the rules' and tables' order)."""
    return tuple(REGISTRY)
