# Helpers shared by the stages: config checks that a schema cannot express, input functions,
# and the lists of targets that tie the stages together.

import json

from snakemake.exceptions import WorkflowError

SPLITS = ["train", "val", "test"]
APPROACHES = ["layernorm", "lora_attention", "lora_all"]
MODEL = config["model"]


def _check_config(config):
    """Cross-key checks; each error names the key and what was expected."""
    templates = config["prompts"]["templates"]
    if config["model"] not in config["models"]:
        raise WorkflowError(
            f"config.yaml: model: unknown model {config['model']!r}; "
            f"expected one of {sorted(config['models'])} (the keys of `models`)"
        )
    style_keys = [("training.styles", s) for s in config["training"]["styles"]]
    style_keys.append(("evaluation.fewshot.style", config["evaluation"]["fewshot"]["style"]))
    style_keys.append(("openai.style", config["openai"]["style"]))
    for key, style in style_keys:
        if style not in templates:
            raise WorkflowError(
                f"config.yaml: {key}: unknown prompt style {style!r}; "
                f"expected one of {sorted(templates)} (the keys of prompts.templates)"
            )


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


def enabled_approaches():
    return [a for a in APPROACHES if config["training"]["approaches"][a]["enabled"]]


def model_entry(name=None):
    """The `models` entry of the base model, with its name."""
    name = name or MODEL
    return {"name": name, **config["models"][name]}


def eval_files(directory):
    """predictions.csv and metrics.json of one system: test at the top, other splits below."""
    files = []
    for split in config["evaluation"]["splits"]:
        prefix = directory if split == "test" else f"{directory}/{split}"
        files += [f"{prefix}/predictions.csv", f"{prefix}/metrics.json"]
    return files


def training_summaries():
    return [
        f"results/train/{MODEL}/{approach}/{style}/summary.json"
        for approach in enabled_approaches()
        for style in config["training"]["styles"]
    ]


def finetuned_eval_dirs():
    return [
        f"results/eval/{MODEL}/{approach}/{style}"
        for approach in enabled_approaches()
        for style in config["training"]["styles"]
    ]


def fewshot_eval_dirs():
    return [f"results/eval/{MODEL}/fewshot-k{k}" for k in config["evaluation"]["fewshot"]["k"]]


def baseline_eval_dirs():
    return ["results/eval/baseline/tfidf"] if config["evaluation"]["baseline"]["enabled"] else []


def openai_eval_dirs():
    """Evaluation directories of the OpenAI systems; none unless openai.enabled."""
    if not config["openai"]["enabled"]:
        return []
    dirs = [f"results/eval/openai/ft-{m}" for m in config["openai"]["finetune_models"]]
    dirs += [
        f"results/eval/openai/{m}-k{k}"
        for m in config["openai"]["chat_models"]
        for k in config["openai"]["chat_k"]
    ]
    return dirs


def all_eval_dirs():
    return finetuned_eval_dirs() + fewshot_eval_dirs() + baseline_eval_dirs() + openai_eval_dirs()


def all_metrics():
    """Every metrics.json (test split) that the report aggregates."""
    return [f"{d}/metrics.json" for d in all_eval_dirs()]


def all_targets():
    targets = expand("results/prompts/{style}/{split}.jsonl", style=prompt_styles(), split=SPLITS)
    targets += training_summaries()
    for directory in all_eval_dirs():
        targets += eval_files(directory)
    targets += report_outputs()
    return targets


def prompt_styles():
    """Styles that some stage uses, in a stable order."""
    used = list(config["training"]["styles"])
    used.append(config["evaluation"]["fewshot"]["style"])
    if config["openai"]["enabled"]:
        used.append(config["openai"]["style"])
    return list(dict.fromkeys(used))


def report_outputs():
    return ["results/report/summary.csv", "results/report/summary.md"]


def reference_inputs(wildcards):
    """Local reference split files are inputs (so edits rerun the split); URLs are fetched."""
    reference = config["splits"]["reference"]
    if not reference["enabled"]:
        return []
    return [reference[name] for name in ("train", "val") if "://" not in reference[name]]


def prompt_template(wildcards):
    templates = config["prompts"]["templates"]
    if wildcards.style not in templates:
        raise WorkflowError(
            f"unknown prompt style {wildcards.style!r}; expected one of {sorted(templates)} "
            f"(the keys of prompts.templates in config.yaml)"
        )
    return templates[wildcards.style]
