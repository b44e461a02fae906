"""The systems of a study, named in one place.

A study compares systems: fine-tuned cells of the grid approach x prompt style x quantization x
training seed, the base model prompted with k demonstrations, the TF-IDF baseline, and OpenAI
models. Each `System` knows its name (its directory under results/eval/), where its training
outputs go, how people read it, its colour, its place in every listing, its factors, and why it
did not run when the config turned it off. The rule files, the report and the figures all ask this
module; none of them builds a system name as a string or takes one apart.

Plain Python only (no pandas, no torch): the Snakefile imports it on every invocation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from adaptune.approaches import REGISTRY
from adaptune.core.names import APPROACHES

APPROACH_LABELS = {name: approach.label for name, approach in REGISTRY.items()}
# Order of methods wherever systems are listed by kind (tables, legends, colours).
METHODS = (*reversed(APPROACHES), "fewshot", "tfidf", "openai_finetune", "openai_chat")
QUANTIZATION_LABELS = {"8bit": "8-bit", "4bit": "4-bit NF4", "none": "full precision"}
# One hue per kind of system (colour-blind safe); variants get shades of it (see `colours`).
METHOD_COLOURS = {
    **{name: approach.colour for name, approach in REGISTRY.items()},
    "fewshot": "#de8f05",
    "tfidf": "#949494",
    "openai_finetune": "#c0392b",
    "openai_chat": "#7f5a3c",
}
# Factors of a fine-tuned cell that may vary within one study, in the order labels show them.
VARYING_FACTORS = ("style", "quantization", "model")
# Names as path patterns: each factor of a cell is one path segment, so that Snakemake rules can
# use them with wildcards and any cell reruns alone.
FINETUNED_NAME = "{model}/{approach}/{style}/{quantization}/seed{seed}"
FEWSHOT_NAME = "{model}/fewshot-k{k}"
# A cell trained on another draw of the train split (training.split_seeds) carries that draw's
# seed in its seed segment, "seed42-split7"; cells on the study's own draw keep "seed42". One
# more draw is one more run of the same group, like one more training seed.
SPLIT_SUFFIX = "-split"


def seed_segment(seed: int, split_seed: int | None = None) -> str:
    """The {seed} part of a fine-tuned cell's name."""
    return str(seed) if split_seed is None else f"{seed}{SPLIT_SUFFIX}{split_seed}"


def parse_seed_segment(segment: str) -> tuple[int, int | None]:
    """(training seed, split seed or None) of a {seed} wildcard such as "42" or "42-split7"."""
    seed, _, split_seed = str(segment).partition(SPLIT_SUFFIX)
    return int(seed), (int(split_seed) if split_seed else None)


@dataclass(frozen=True)
class System:
    """One system of the study; `reason` is set when the config describes it but turned it off."""

    method: str
    model: str
    style: str | None = None
    quantization: str | None = None
    seed: int | None = None
    k: int | None = None
    openai_model: str | None = None
    reason: str | None = None
    split_seed: int | None = None  # another draw of the train split; None: the study's own

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"system method {self.method!r} is not one of {list(METHODS)}")
        if self.finetuned and (
            self.style is None or self.quantization is None or self.seed is None
        ):
            raise ValueError(f"a fine-tuned system needs style, quantization and seed: {self!r}")

    # -------------------------------------------------------------- identity and paths
    @property
    def finetuned(self) -> bool:
        return self.method in APPROACHES

    @property
    def name(self) -> str:
        """The system's directory under results/eval/ (and results/train/ for fine-tuned ones)."""
        if self.finetuned:
            return FINETUNED_NAME.format(
                model=self.model,
                approach=self.method,
                style=self.style,
                quantization=self.quantization,
                seed=seed_segment(self.seed, self.split_seed),
            )
        if self.method == "fewshot":
            return FEWSHOT_NAME.format(model=self.model, k=self.k)
        if self.method == "tfidf":
            return "baseline/tfidf"
        if self.method == "openai_finetune":
            return f"openai/ft-{self.openai_model}"
        return f"openai/{self.openai_model}-k{self.k}"

    @property
    def group(self) -> str:
        """The name without the seed: the systems one mean over seeds is taken of."""
        if self.finetuned:
            return self.name.rpartition("/")[0]
        return self.name

    @property
    def eval_dir(self) -> str:
        return f"results/eval/{self.name}"

    @property
    def train_dir(self) -> str | None:
        return f"results/train/{self.name}" if self.finetuned else None

    @property
    def ran(self) -> bool:
        return self.reason is None

    @property
    def factors(self) -> dict:
        """The factors of the grid that tell this system apart, for tables and tests."""
        return {
            "method": self.method,
            "model": self.model,
            "style": self.style,
            "quantization": self.quantization,
            "seed": self.seed,
            "k": self.k,
            "openai_model": self.openai_model,
            "split_seed": self.split_seed,
        }

    def order(self) -> tuple:
        return (
            METHODS.index(self.method),
            self.k or 0,
            str(self.style),
            str(self.quantization),
            str(self.model),
            str(self.openai_model),
            self.seed or 0,
            -1 if self.split_seed is None else self.split_seed,
        )

    # -------------------------------------------------------------- how people read it
    @property
    def kind_label(self) -> str:
        """The system without its variant factors: 'LoRA, all linear layers', '3-shot prompting'."""
        if self.finetuned:
            return APPROACH_LABELS[self.method]
        if self.method == "fewshot":
            return f"{_shots(self.k).capitalize()} prompting"
        if self.method == "tfidf":
            return "TF-IDF + logistic regression"
        if self.method == "openai_finetune":
            return f"OpenAI fine-tuned {self.openai_model}"
        return f"OpenAI {self.openai_model}, {_shots(self.k)}"

    @property
    def model_label(self) -> str:
        if self.method == "tfidf":
            return "no language model"
        if self.method.startswith("openai"):
            return str(self.openai_model)
        if self.quantization:
            return f"{self.model} ({QUANTIZATION_LABELS.get(self.quantization, self.quantization)})"
        return self.model

    @property
    def approach_label(self) -> str:
        if self.finetuned:
            return "fine-tuning"
        return {
            "fewshot": f"prompting, {_shots(self.k)}",
            "tfidf": "classic baseline",
            "openai_finetune": "OpenAI fine-tuning",
            "openai_chat": f"OpenAI prompting, {_shots(self.k)}",
        }[self.method]

    # -------------------------------------------------------------- exchange with files
    def block(self) -> dict:
        """The `system` block of metrics.json and of the report's params."""
        block = {"name": self.name, **self.factors}
        if self.reason is not None:
            block["reason"] = self.reason
        return block

    @classmethod
    def finetuned_cell(cls, wildcards) -> System:
        """The fine-tuned system of a rule's wildcards (model, approach, style, quantization,
        seed)."""
        seed, split_seed = parse_seed_segment(wildcards.seed)
        return cls(
            wildcards.approach,
            wildcards.model,
            wildcards.style,
            wildcards.quantization,
            seed,
            split_seed=split_seed,
        )

    @classmethod
    def from_block(cls, block: Mapping) -> System:
        fields = (
            "method",
            "model",
            "style",
            "quantization",
            "seed",
            "k",
            "openai_model",
            "reason",
            "split_seed",
        )
        return cls(**{key: block.get(key) for key in fields})


def _shots(k) -> str:
    return "zero-shot" if not k else f"{k}-shot"


# ------------------------------------------------------------------ the systems of a config


def finetuned_systems(config: Mapping, model: str | None = None) -> list[System]:
    """Every cell of the grid approach x style x quantization x seed x train-split draw, less
    the cells a study leaves out to fit its budget: an approach whose block names `styles` at
    those styles only, a quantization in training.quantization_styles at those styles only, and
    one in training.quantization_seeds at those seeds only. Cells of a disabled approach carry
    the key that turned them off."""
    training = config["training"]
    model = model or config["model"]
    draws = split_draws(config)
    only_styles = training.get("quantization_styles", {})
    only_seeds = training.get("quantization_seeds", {})
    systems = []
    for approach in APPROACHES:
        block = training["approaches"][approach]
        reason = None if block["enabled"] else f"training.approaches.{approach}.enabled is false"
        for style in block.get("styles", training["styles"]):
            for quantization in training["quantizations"]:
                if quantization in only_styles and style not in only_styles[quantization]:
                    continue
                for seed in only_seeds.get(quantization, training["seeds"]):
                    for draw in draws:
                        systems.append(
                            System(
                                approach,
                                model,
                                style,
                                quantization,
                                int(seed),
                                reason=reason,
                                split_seed=draw,
                            )
                        )
    return systems


def split_draws(config: Mapping) -> list[int | None]:
    """The train-split draws of the grid: None for the study's own (splits.seed), then each
    other seed of training.split_seeds."""
    own = config["splits"]["seed"]
    others = [int(s) for s in config["training"].get("split_seeds", []) if int(s) != own]
    return [None, *others]


def fewshot_systems(config: Mapping, model: str | None = None) -> list[System]:
    fewshot = config["evaluation"]["fewshot"]
    return [
        System(
            "fewshot", model or config["model"], fewshot["style"], fewshot["quantization"], k=int(k)
        )
        for k in fewshot["k"]
    ]


def baseline_systems(config: Mapping) -> list[System]:
    reason = (
        None
        if config["evaluation"]["baseline"]["enabled"]
        else "evaluation.baseline.enabled is false"
    )
    return [System("tfidf", "baseline", reason=reason)]


def openai_systems(config: Mapping) -> list[System]:
    openai = config["openai"]
    reason = None if openai["enabled"] else "openai.enabled is false"
    systems = [
        System("openai_finetune", "openai", openai["style"], openai_model=m, k=0, reason=reason)
        for m in openai["finetune_models"]
    ]
    systems += [
        System("openai_chat", "openai", openai["style"], openai_model=m, k=int(k), reason=reason)
        for m in openai["chat_models"]
        for k in openai["chat_k"]
    ]
    return systems


def study_systems(config: Mapping) -> list[System]:
    """Every system the config describes, run or not, in listing order."""
    systems = (
        finetuned_systems(config)
        + fewshot_systems(config)
        + baseline_systems(config)
        + openai_systems(config)
    )
    return sorted(systems, key=System.order)


def running(systems: Iterable[System]) -> list[System]:
    return [s for s in systems if s.ran]


# ------------------------------------------------------------------ labels and colours


def labels(systems: Sequence[System], with_seed: bool = True) -> dict[str, str]:
    """A unique display label per system name (or per group when `with_seed` is false): the kind
    of system, then only those factors that vary within the study (prompt style, quantization,
    model), then the seed where a group has several."""
    varying = [
        f for f in VARYING_FACTORS if len({getattr(s, f) for s in systems if s.finetuned}) > 1
    ]
    seeds = {}
    for s in systems:
        seeds.setdefault(s.group, set()).add((s.seed, s.split_seed))
    shown = {}
    for s in systems:
        parts = []
        if s.finetuned:
            for factor in varying:
                value = getattr(s, factor)
                parts.append(
                    f"{value} prompt"
                    if factor == "style"
                    else QUANTIZATION_LABELS.get(value, value)
                    if factor == "quantization"
                    else str(value)
                )
            if with_seed and len(seeds[s.group]) > 1:
                parts.append(
                    f"seed {s.seed}"
                    if s.split_seed is None
                    else f"seed {s.seed}, train split {s.split_seed}"
                )
        label = s.kind_label + (f" ({', '.join(parts)})" if parts else "")
        shown[s.name if with_seed else s.group] = label
    return shown


def group_systems(systems: Sequence[System]) -> dict[str, list[System]]:
    """Systems by group (the name without the seed), groups and seeds in listing order."""
    groups: dict[str, list[System]] = {}
    for s in sorted(systems, key=System.order):
        groups.setdefault(s.group, []).append(s)
    return groups


def colours(systems: Sequence[System]) -> dict[str, str]:
    """A colour (#rrggbb) per group: the hue of its kind, shaded from dark to light across the
    kind's variants; seeds of one group share its colour."""
    result = {}
    for method in METHODS:
        groups = list(
            dict.fromkeys(s.group for s in sorted(systems, key=System.order) if s.method == method)
        )
        base = _rgb(METHOD_COLOURS[method])
        for index, group in enumerate(groups):
            t = 0.0 if len(groups) == 1 else index / (len(groups) - 1)
            dark, light = tuple(0.7 * c for c in base), tuple(c + 0.5 * (1 - c) for c in base)
            mid = (
                base
                if len(groups) == 1
                else tuple(
                    (d + (b - d) * 2 * t) if t <= 0.5 else (b + (w - b) * (2 * t - 1))
                    for d, b, w in zip(dark, base, light)
                )
            )
            result[group] = "#" + "".join(f"{round(255 * c):02x}" for c in mid)
    return result


def _rgb(hex_colour: str) -> tuple[float, float, float]:
    return tuple(int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
