"""The contract every approach meets, as PEFT's tuners each meet theirs.

An approach is a module of this package (or one named in ADAPTUNE_APPROACH_MODULES) that
defines `APPROACH = Approach(...)`: its name (the rules' and result folders' segment), how
people read it (label, colour), what trains (`peft_config`, and `free` for parameters PEFT does
not hold), what it writes beside the standard PEFT folder and how it puts that back
(`save_beside`, `load_beside`), and how a batch becomes per-label scores (`scorer`). Its config
block is `training.approaches.<name>` of the schema.

Plain Python (no torch, no PEFT at import): the Snakefile imports the registry on every
invocation. The callables import what they need when they run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# How a batch becomes per-label scores:
#   "completion": each label's completion log-likelihood after the prompt (adaptune.lm.scoring),
#                 the model a causal LM;
#   "head":       a classification head's logits over the labels at the prompt's last token,
#                 the model a sequence classifier (as log-softmax; adaptune.approaches.head).
SCORERS = ("completion", "head")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
COLOUR_PATTERN = re.compile(r"^#[0-9a-f]{6}$")


@dataclass(frozen=True)
class Approach:
    """One way of fine-tuning. Hooks take (model, settings, ...) with settings an
    adaptune.train.run.TrainSettings; `model` is the base before wrapping (peft_config) or the
    PeftModel (free, save_beside, load_beside)."""

    name: str
    label: str  # as tables and legends show it
    colour: str  # "#rrggbb", the hue of its systems in every figure
    # (base model, settings, model entry) -> a PEFT config: the one place it becomes trainable.
    peft_config: Callable
    uses_lora: bool = (
        False  # its config block has a `lora` section (adaptune.train.run.LoraSettings)
    )
    scorer: str = "completion"  # one of SCORERS
    # (settings) -> None: refuses settings this approach cannot train, with a ValueError.
    check: Callable | None = None
    # (PeftModel, settings) -> None: frees parameters beside those PEFT's config trains.
    free: Callable | None = None
    # (PeftModel, folder) -> None: writes what PEFT's folder does not hold; and puts it back.
    save_beside: Callable | None = None
    load_beside: Callable | None = None

    def __post_init__(self):
        if not NAME_PATTERN.match(self.name):
            raise ValueError(
                f"approach name {self.name!r}: expected lower case letters, digits and _"
            )
        if not COLOUR_PATTERN.match(self.colour):
            raise ValueError(f"approach {self.name!r}: colour {self.colour!r}, expected #rrggbb")
        if self.scorer not in SCORERS:
            raise ValueError(
                f"approach {self.name!r}: scorer {self.scorer!r}, expected one of {list(SCORERS)}"
            )
        if (self.save_beside is None) != (self.load_beside is None):
            raise ValueError(f"approach {self.name!r}: save_beside and load_beside come as a pair")
