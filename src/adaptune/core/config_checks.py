"""Checks of a config that its schema cannot express (keys that must name other keys).

The Snakefile runs them after validating the config against workflow/schemas/config.schema.yaml,
before any job; the tests run them in process on the same configs.
"""

from __future__ import annotations

from adaptune.core.names import APPROACHES
from adaptune.core.systems import split_draws


def check_config(config: dict) -> None:
    """The cross-key checks of a validated config that a JSON schema cannot express; each error
    names the key and what was expected."""
    check_approaches(config)
    templates = config["prompts"]["templates"]
    if config["model"] not in config["models"]:
        raise ValueError(
            f"config.yaml: model: unknown model {config['model']!r}; "
            f"expected one of {sorted(config['models'])} (the keys of `models`)"
        )
    style_keys = [("training.styles", s) for s in config["training"]["styles"]]
    style_keys.append(("evaluation.fewshot.style", config["evaluation"]["fewshot"]["style"]))
    style_keys.append(("openai.style", config["openai"]["style"]))
    for key, style in style_keys:
        if style not in templates:
            raise ValueError(
                f"config.yaml: {key}: unknown prompt style {style!r}; "
                f"expected one of {sorted(templates)} (the keys of prompts.templates)"
            )
    training = config["training"]
    # The cuts that leave cells out of the grid may name only what the grid has.
    for factor, unit in (("styles", "style"), ("seeds", "seed")):
        for quantization, values in training.get(f"quantization_{factor}", {}).items():
            key = f"config.yaml: training.quantization_{factor}.{quantization}"
            if quantization not in training["quantizations"]:
                raise ValueError(
                    f"{key}: {quantization!r} is not in training.quantizations "
                    f"{training['quantizations']}; expected one of them"
                )
            _check_subset(key, unit, values, training, factor)
    for approach, block in training["approaches"].items():
        key = f"config.yaml: training.approaches.{approach}.styles"
        _check_subset(key, "style", block.get("styles", []), training, "styles")
    if config["sweep"]["enabled"]:
        approaches = config["training"]["approaches"]
        sizes = {
            a: len(rates)
            for a, rates in config["sweep"]["learning_rates"].items()
            if approaches[a]["enabled"]
        }
        if len(set(sizes.values())) > 1:
            raise ValueError(
                f"config.yaml: sweep.learning_rates: {sizes} learning rates per approach; expected "
                "the same number for every approach (the same tuning budget)"
            )
        if config["sweep"]["style"] not in templates:
            raise ValueError(
                f"config.yaml: sweep.style: unknown prompt style {config['sweep']['style']!r}; "
                f"expected one of {sorted(templates)} (the keys of prompts.templates)"
            )
    if config["sweep"]["tune_study"]:
        if training.get("learning_rates_from"):
            raise ValueError(
                "config.yaml: training.learning_rates_from: set together with sweep.tune_study, "
                "which trains every cell at the sweep's own choice; expected one of them"
            )
        check_tuning(config)
    if len(split_draws(config)) > 1 and config["splits"]["reference"]["enabled"]:
        raise ValueError(
            "config.yaml: training.split_seeds draws other train splits, but "
            "splits.reference.enabled fixes the train split to the reference study's; "
            "expected split_seeds: [] with the reference split"
        )
    fewshot = config["evaluation"]["fewshot"]
    if fewshot["demonstrations"] == "fixed":
        fixed = fewshot["fixed_demonstrations"]
        wrong_k = [k for k in fewshot["k"] if k not in (0, len(fixed))]
        if wrong_k:
            raise ValueError(
                f"config.yaml: evaluation.fewshot.k: {wrong_k} with demonstrations: fixed; "
                f"expected 0 or {len(fixed)} (the number of fixed_demonstrations)"
            )
        for index, demo in enumerate(fixed):
            if demo["label"] not in config["labels"]:
                raise ValueError(
                    f"config.yaml: evaluation.fewshot.fixed_demonstrations[{index}].label: "
                    f"{demo['label']!r} is not one of {config['labels']} (config `labels`)"
                )


def check_approaches(config: dict) -> None:
    """Every config block of training.approaches and sweep.learning_rates names a registered
    approach (adaptune.approaches), and every registered approach has its block (the schema
    gives this package's own theirs; one added through ADAPTUNE_APPROACH_MODULES brings its own)."""
    from adaptune.approaches import MODULES_VARIABLE

    blocks = config["training"]["approaches"]
    rates = config["sweep"]["learning_rates"]
    for key, given in (("training.approaches", blocks), ("sweep.learning_rates", rates)):
        unknown = sorted(set(given) - set(APPROACHES))
        if unknown:
            raise ValueError(
                f"config.yaml: {key}: unknown approach(es) {unknown}; expected some of "
                f"{list(APPROACHES)} "
                f"(the registered approaches; add one through {MODULES_VARIABLE})"
            )
    missing = [a for a in APPROACHES if a not in blocks]
    if missing:
        raise ValueError(
            f"config.yaml: training.approaches: no block for approach(es) {missing}; "
            "expected one each, with at least learning_rate and epochs"
        )


def check_tuning(config: dict) -> None:
    """The tuned study: the sweep runs, its epoch-e score stands for an e-epoch run, and its
    seeds are not the study's. The first holds under wsd (each shorter run is branched off the
    long one with its own decay: adaptune.train.schedule) or under a constant rate without
    warm-up (a score inside the long run is then the shorter run's)."""
    where = "config.yaml: sweep.tune_study is true, but"
    if not config["sweep"]["enabled"]:
        raise ValueError(f"{where} sweep.enabled is false; the sweep chooses the settings")
    schedule = config["training"]["lr_schedule"]
    if schedule not in ("constant", "wsd"):
        raise ValueError(
            f"{where} training.lr_schedule is {schedule!r}; expected wsd or constant (the sweep "
            "scores every epoch count from one run per rate, which stands for the shorter runs "
            "only when they are its prefix: wsd, whose shorter runs are branched off with their "
            "own decay, or a constant rate)"
        )
    approaches = config["training"]["approaches"]
    warm = [
        a for a, section in approaches.items() if section["enabled"] and section["warmup_ratio"] > 0
    ]
    if schedule == "constant" and warm:
        raise ValueError(
            f"{where} training.approaches.{warm[0]}.warmup_ratio is "
            f"{approaches[warm[0]]['warmup_ratio']}; "
            "expected 0 under a constant rate (a warm-up over a fraction of the run depends on "
            "the run's length; under wsd it is a fraction of one epoch)"
        )
    # Checked for wsd studies: the published constant-rate study (configs/tuned.yaml) swept on
    # two of its own seeds, which its reanalysis reports (docs/results/tuned).
    sweep_seeds, confirm_seeds = (
        set(config["sweep"]["seeds"]),
        set(config["sweep"]["confirm_seeds"]),
    )
    if sweep_seeds & confirm_seeds:
        raise ValueError(
            f"{where} sweep.confirm_seeds repeat sweep.seeds "
            f"{sorted(sweep_seeds & confirm_seeds)}; "
            "expected other seeds (a confirmation scores a setting on a new draw)"
        )
    shared = sorted((sweep_seeds | confirm_seeds) & set(config["training"]["seeds"]))
    if shared and schedule == "wsd":
        raise ValueError(
            f"{where} sweep.seeds or confirm_seeds and training.seeds share {shared}; "
            "expected disjoint seeds "
            "(a study run on a seed the sweep chose with is scored on the draw it was tuned on)"
        )
    missing = [
        a
        for a in APPROACHES
        if approaches[a]["enabled"] and a not in config["sweep"]["learning_rates"]
    ]
    if missing:
        raise ValueError(f"{where} sweep.learning_rates has no rates for {missing}")


def _check_subset(key: str, unit: str, values, training, factor: str) -> None:
    unknown = [v for v in values if v not in training[factor]]
    if unknown:
        raise ValueError(
            f"{key}: {unit}(s) {unknown} are not in training.{factor} "
            f"{training[factor]}; expected some of them"
        )
