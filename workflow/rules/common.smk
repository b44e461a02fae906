# Helpers shared by the stages: config checks that a schema cannot express, input functions,
# and the lists of targets that tie the stages together.

import os
from types import SimpleNamespace

from snakemake.exceptions import WorkflowError

# The systems of the study are named by the package (the Snakefile put this checkout's src/ on
# the path).
from adaptune.core.config_checks import check_config
from adaptune.core.paths import (
    PRECISION_FILE,
    SWEEP_APPROACH_CHOSEN,
    SWEEP_CHOSEN,
    SWEEP_SUMMARY,
    SWEEP_SUMMARY_MD,
)
from adaptune.report.outputs import DIRECTORY as REPORT_DIR
from adaptune.report.outputs import OUTPUTS as REPORT_OUTPUTS
from adaptune.core.names import APPROACHES, QUANTIZATIONS, SPLITS, split_dir
from adaptune.train.run import RUN_CONTROL_KEYS, without_default_knobs
from adaptune.core.systems import (
    FEWSHOT_NAME,
    FINETUNED_NAME,
    System,
    parse_seed_segment,
    running,
    split_draws,
    study_systems,
)

MODEL = config["model"]
# Training jobs are the longest: scheduled before the others that are ready, so that two of them
# run side by side and the short jobs (few-shot, the report) fill in and end the study.
TRAINING_PRIORITY = 10
# Except a finished cell's evaluation, which goes first: a study cut short, or carried to another
# machine by `adaptune progress save` (which leaves adapters behind), keeps evaluated cells rather
# than trained ones that must train again.
EVALUATION_PRIORITY = TRAINING_PRIORITY + 1
# OpenAI's fine-tuning runs on its servers for minutes to hours: its jobs start first, so that the
# wait overlaps the local work.
REMOTE_TRAINING_PRIORITY = EVALUATION_PRIORITY + 1
# Torch threads of every job that runs the model (the rules' `threads`).
MODEL_THREADS = config["threads"]


def _check_config(config):
    try:
        check_config(config)
    except ValueError as error:
        raise WorkflowError(str(error)) from None


_check_config(config)


# --- OpenAI stage: the key must be there before any job starts ------------------------------
def _check_openai_key(config):
    """Only whether OPENAI_API_KEY is set is looked at here; its value is read inside the
    OpenAI jobs alone, so it reaches no params, log, metadata or report."""
    import os

    if config["openai"]["enabled"] and not os.environ.get("OPENAI_API_KEY"):
        raise WorkflowError(
            "config.yaml: openai.enabled is true, but the environment variable OPENAI_API_KEY "
            "is not set; export it (the OpenAI jobs read it from there, never from a file) "
            "or set openai.enabled: false"
        )


_check_openai_key(config)
# --- end OpenAI stage ------------------------------------------------------------------------


def shared(path):
    """A path under the folder snakemake runs in (data/, resources/), seen from `workdir`."""
    return os.path.normpath(os.path.join(os.path.relpath(LAUNCH_DIR), path))


def model_entry(name=None):
    """The `models` entry of the base model, with its name."""
    name = name or MODEL
    return {"name": name, **config["models"][name]}


# Every system the config describes (run or not), and those this run produces.
STUDY = study_systems(config)
RUNNING = running(STUDY)


def eval_files(directory):
    """predictions.csv and metrics.json of one system: test at the top, other splits below."""
    files = []
    for split in config["evaluation"]["splits"]:
        prefix = split_dir(directory, split)
        files += [f"{prefix}/predictions.csv", f"{prefix}/metrics.json"]
    return files


def training_summaries():
    return [f"{s.train_dir}/summary.json" for s in RUNNING if s.finetuned]


def all_eval_files():
    return [path for s in RUNNING for path in eval_files(s.eval_dir)]


def all_targets():
    targets = expand("results/prompts/{style}/{split}.jsonl", style=prompt_styles(), split=SPLITS)
    targets += training_summaries()
    targets += all_eval_files()
    targets += report_targets()
    if config["sweep"]["enabled"]:
        targets += [SWEEP_SUMMARY, SWEEP_CHOSEN]
    return targets


def sweep_runs():
    """Every run of the sweep (enabled approach x learning rate x seed), each trained for the
    largest epoch count, with its curves.csv."""
    sweep = config["sweep"]
    approaches = config["training"]["approaches"]
    return [
        {
            "approach": approach,
            "learning_rate": rate,
            "seed": seed,
            "curves": f"results/sweep/{MODEL}/{approach}/lr{rate:g}/seed{seed}/curves.csv",
        }
        for approach, rates in sweep["learning_rates"].items()
        if approaches[approach]["enabled"]
        for rate in rates
        for seed in sweep["seeds"]
    ]


def sweep_extensions():
    """Each swept approach's extension record (rule sweep_extend)."""
    approaches = sorted({run["approach"] for run in sweep_runs()})
    return [f"results/sweep/{MODEL}/{a}/extension.json" for a in approaches]


def approach_sweep_runs(wildcards):
    """The sweep runs of one approach: the inputs of its extension job, and its params."""
    return [run for run in sweep_runs() if run["approach"] == wildcards.approach]


def sweep_template(wildcards):
    """The params of a sweep run of the approach but its learning rate and seed, for the runs
    its extension job trains."""
    seed = str(config["sweep"]["seeds"][0])
    cell = SimpleNamespace(approach=wildcards.approach, rate="1", seed=seed, model=MODEL)
    return sweep_params(cell)


def prompt_styles():
    """Styles that some stage uses, in a stable order."""
    used = list(config["training"]["styles"])
    used.append(config["evaluation"]["fewshot"]["style"])
    if config["sweep"]["enabled"]:
        used.append(config["sweep"]["style"])
    if config["openai"]["enabled"]:
        used.append(config["openai"]["style"])
    return list(dict.fromkeys(used))


def report_targets():
    """The report's tables, which the default target asks for (the rule makes the rest)."""
    return [f"{REPORT_DIR}/{REPORT_OUTPUTS[name].path}" for name in ("summary_csv", "summary_md")]


def reference_files(wildcards):
    """The reference split's local files, needed to use that split or to keep it out of test."""
    splits = config["splits"]
    if not (splits["reference"]["enabled"] or splits["exclude_reference"]):
        return {}
    return {part: shared(splits["reference"][part]) for part in ("train", "val")}


# Out of the training rules' params: the grid's keys (wildcards), and the keys that say how a run
# is carried out rather than what it trains (RUN_CONTROL_KEYS: the script reads them from the
# config), so that adding a time limit after a timeout does not rerun a finished cell.
TRAINING_EXCLUDED_KEYS = {
    "learning_rates_from",  # an input of the cells (tuned_input), read when they run
    "styles",
    "quantizations",
    "quantization_styles",
    "quantization_seeds",
    "seeds",
    "split_seeds",
    "approaches",
}
TRAINING_EXCLUDED_KEYS |= set(RUN_CONTROL_KEYS)


def train_prompts(wildcards):
    """A cell's train prompts: the study's train split, or the draw its seed segment names."""
    _, split_seed = parse_seed_segment(wildcards.seed)
    part = "train" if split_seed is None else f"train-split{split_seed}"
    return f"results/prompts/{wildcards.style}/{part}.jsonl"


def tuned_input(wildcards):
    """The sweep's choice for the cell's approach, an input of every study cell when the study
    is tuned: the training script takes its learning rate and epochs from it when the job runs.
    A plain file rather than a checkpoint-dependent param, so that Snakemake plans a finished
    study as finished (with a checkpoint it redid every evaluation on each rerun); one per
    approach, so that an approach's cells start once its own sweep is done and a changed choice
    retrains that approach's cells alone."""
    if config["sweep"]["tune_study"]:
        return {"chosen": SWEEP_APPROACH_CHOSEN.format(model=MODEL, approach=wildcards.approach)}
    # Only the learning rates of another study's choice (configs/reference-rates.yaml).
    rates = config["training"].get("learning_rates_from")
    return {"rates": shared(rates)} if rates else {}


def train_params(wildcards):
    """The params of a train job: the training keys shared by all approaches, its approach's
    section alone, the cell's seed and quantization, the model entry, the labels and the
    style's template; so changing one approach's learning rate, or one style's template,
    reruns those cells only."""
    training = config["training"]
    # enabled and styles choose which cells exist, not how one trains
    section = {
        k: v
        for k, v in training["approaches"][wildcards.approach].items()
        if k not in ("enabled", "styles")
    }
    shared = without_default_knobs(
        {k: v for k, v in training.items() if k not in TRAINING_EXCLUDED_KEYS}
    )
    return {
        "approach": wildcards.approach,
        **shared,
        **section,
        "seed": parse_seed_segment(wildcards.seed)[0],
        "quantization": wildcards.quantization,
        "model": model_entry(wildcards.model),
        "labels": list(config["labels"]),
        "style": wildcards.style,
        "template": prompt_template(wildcards),
    }


def train_mem_mb(model, quantization):
    """Host memory of a training job: each of its processes (one per device) first loads the
    base on the host, in fp32 unquantized (4 bytes a parameter) or as its fp16 checkpoint on
    the way to bitsandbytes (2 bytes), plus a fifth and 4000 MB for the rest (an estimate);
    at least 6000 MB, which is all a model entry without `parameters` gets."""
    parameters = config["models"][model].get("parameters")
    if not parameters:
        return 6000
    per_byte = {"none": 4}.get(quantization, 2)
    devices = config["training"]["devices"]
    return max(6000, round(devices * parameters * per_byte * 1.2 / 2**20) + 4000)


def sweep_params(wildcards):
    """The params of a sweep job: those of a train job of its approach for the sweep's style
    and quantization and the run's seed, at the run's learning rate, for the largest epoch
    count, with the val split scored once at every epoch's end."""
    sweep = config["sweep"]
    cell = SimpleNamespace(
        approach=wildcards.approach,
        model=wildcards.model,
        style=sweep["style"],
        seed=wildcards.seed,
        quantization=sweep["quantization"],
    )
    return {
        **train_params(cell),
        "learning_rate": float(wildcards.rate),
        "epochs": max(sweep["epochs"]),
        "val_checks_per_epoch": 1,
        "validate_first": False,
        # Under wsd the shorter runs are branched off this one (adaptune.train.schedule).
        "branch_epochs": (
            sorted(e for e in sweep["epochs"] if e < max(sweep["epochs"]))
            if config["training"]["lr_schedule"] == "wsd"
            else []
        ),
    }


# The precision decision (written by the hardware job) and the training it times, the configured model's
# heaviest enabled approach (the registry's last first) on the first style, quantization and seed.
# inductor's caches, shared by every job of the study (adaptune.hardware.compilation).
COMPILE_CACHE = "resources/compile-cache"
_ENABLED = [a for a in reversed(APPROACHES) if config["training"]["approaches"][a]["enabled"]] or [
    APPROACHES[-1]
]
PRECISION_TIMED = {
    "approach": _ENABLED[0],
    "model": MODEL,
    "style": config["training"]["styles"][0],
    "quantization": config["training"]["quantizations"][0],
    "seed": config["training"]["seeds"][0],
}


# What a step's time depends on; the rest (learning rate, epochs, seed, ...) stays out of the
# hardware rule's params, so that changing it does not redo the decision and with it the study.
TIMING_KEYS = (
    "approach",
    "batch_size",
    "max_length",
    "quantization",
    "lora",
    "biases",
    "model",
    "labels",
    "style",
    "template",
    "truncation_side",
    "gradient_checkpointing",
)


def precision_timing_params():
    """Training settings for the hardware job, the timed cell's keys that affect a step's time."""
    cell = train_params(SimpleNamespace(**PRECISION_TIMED))
    return {
        "learning_rate": 1e-4,
        "epochs": 1,
        **{key: value for key, value in cell.items() if key in TIMING_KEYS},
    }


# Whether the hardware job also decides on compilation (training.compile is auto).
DECIDE_COMPILE = config["training"]["compile"] == "auto"


def precision_decision(wildcards):
    """The decision file as an input of the jobs that train or score, when precision or
    compilation is auto."""
    return (
        {"precision": PRECISION_FILE}
        if config["training"]["precision"] == "auto" or DECIDE_COMPILE
        else {}
    )


def study_training_steps():
    """Optimizer steps of every training run of the study and its sweep (those that run): what
    a compiled step's saving is multiplied by."""
    training, sweep = config["training"], config["sweep"]
    train_size = config["splits"]["train"]

    def steps(approach, epochs):
        section = training["approaches"][approach]
        per_step = section["batch_size"] * training["accumulate_grad_batches"]
        return epochs * -(-train_size // per_step)

    cells = [s for s in RUNNING if s.finetuned]
    total = sum(steps(s.method, training["approaches"][s.method]["epochs"]) for s in cells)
    if sweep["enabled"]:
        total += sum(steps(r["approach"], max(sweep["epochs"])) for r in sweep_runs())
    return total


def compile_plan():
    """The hardware rule's compile plan (adaptune.train.step_timing.measure_and_decide), or None."""
    if not DECIDE_COMPILE:
        return None
    approaches = {s.method for s in RUNNING if s.finetuned}
    return {
        "study_steps": study_training_steps(),
        "approaches": max(1, len(approaches)),
        "cache": COMPILE_CACHE,
    }


def prompt_template(wildcards):
    templates = config["prompts"]["templates"]
    if wildcards.style not in templates:
        raise WorkflowError(
            f"unknown prompt style {wildcards.style!r}; expected one of {sorted(templates)} "
            f"(the keys of prompts.templates in config.yaml)"
        )
    return templates[wildcards.style]


def report_outputs():
    """The report rule's outputs, by the names adaptune.report.outputs gives them; those with a
    title are items of `snakemake --report`."""
    outputs = {}
    for name, output in REPORT_OUTPUTS.items():
        path = f"{REPORT_DIR}/{output.path}"
        if output.title is not None:
            path = report(
                path,
                caption=f"../report/{output.caption}.rst",
                category=output.category,
                labels={"result": output.title},
            )
        outputs[name] = path
    return outputs
