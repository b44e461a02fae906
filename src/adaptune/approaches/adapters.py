"""What trains, how it is saved, and how it is put back: each approach as a PEFT config,
given by its module in adaptune.approaches (with what it frees and saves beside PEFT's folder).

Options of the reference study's trainable sets: `biases` (layernorm) and `lora.biases` train
every Linear layer's bias; `lora.norms` trains the normalization layers beside LoRA.

An adapter folder is a standard PEFT folder (adapter_config.json + adapter_model.safetensors)
that `PeftModel.from_pretrained(base, folder)` loads without adaptune, plus
adaptune_adapter.json: the prompt template, labels and their completions, max_length,
truncation side, precision, quantization, the base model's name and config hash, and where the
base model lies relative to the folder. This module imports no Lightning: `adaptune predict`
loads adapters without paying for it.

It also gives what scoring needs of an approach: the base model it loads (`load_base`) and the
scorer that turns its prompts into per-label scores (`prompt_scorer`). All of this lives apart
from the registry (adaptune.approaches), which the Snakefile imports and which stays free of
torch and transformers."""

from __future__ import annotations

import json
import os
import warnings
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from adaptune.approaches import get
from adaptune.core.io import write_json
from adaptune.lm.models import model_fingerprint

ADAPTER_FILE = "adaptune_adapter.json"


class AdapterError(ValueError):
    """An adapter folder that cannot be used as given (missing, malformed, or for another base
    model); the message names the folder and what to do."""


# Linear biases trained beside LN tuning: PEFT's LN tuning has no option for them (see peft_config).
LINEAR_BIASES_FILE = "linear_biases.safetensors"


# ---------------------------------------------------------------------------- the model's parts


def is_norm(module) -> bool:
    """LayerNorm and RMSNorm layers, by type: torch's classes and any class named *LayerNorm or
    *RMSNorm (transformers defines its own RMSNorm per architecture)."""
    import torch

    norm_types = tuple(t for t in (torch.nn.LayerNorm, getattr(torch.nn, "RMSNorm", None)) if t)
    return isinstance(module, norm_types) or type(module).__name__.endswith(
        ("LayerNorm", "RMSNorm")
    )


def norm_module_names(model) -> list[str]:
    """Full names of the normalization layers that hold parameters."""
    return [
        name
        for name, module in model.named_modules()
        if is_norm(module) and any(True for _ in module.parameters(recurse=False))
    ]


def linear_bias_names(model) -> list[str]:
    import torch

    return [
        f"{name}.bias"
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module.bias is not None
    ]


def embedding_module_name(model) -> str:
    """Full name of the input embedding module (transformer.wte, model.embed_tokens, ...)."""
    return _module_name(model, model.get_input_embeddings(), "input embedding")


def lm_head_name(model) -> str:
    return _module_name(model, model.get_output_embeddings(), "LM head")


def _module_name(model, wanted, what: str) -> str:
    for name, module in model.named_modules():
        if module is wanted:
            return name
    raise ValueError(f"the model's {what} is not one of its modules")


@contextmanager
def norms_accepted():
    """PEFT warns that norm layers are an 'unsupported layer type' when LN tuning wraps them or
    modules_to_save copies them; both are what is meant here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Unsupported layer type", category=UserWarning)
        yield


# ---------------------------------------------------------------------------- the one place


def peft_config(model, settings, entry: dict):
    """The PEFT config of `settings.approach` (and its options) on `model`: its approach
    module's (adaptune.approaches) is the one place an approach becomes a set of trainable
    parameters.

    Module names are given in full, so a name matches exactly the modules meant and the saved
    adapter_config.json says which they are.
    """
    from adaptune.approaches import get

    return get(settings.approach).peft_config(model, settings, entry)


def make_trainable(model, settings, entry: dict):
    """Freeze the base and wrap it with the approach's PEFT adapter; returns the PeftModel."""
    from peft import get_peft_model

    from adaptune.approaches import get

    checkpointing = {"use_reentrant": False}
    if settings.quantization != "none":
        from peft import prepare_model_for_kbit_training

        # Freezes everything and upcasts non-int8 weights to fp32. Gradient checkpointing is its
        # default; on a CPU it only costs time, so it follows the setting.
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=settings.gradient_checkpointing,
            gradient_checkpointing_kwargs=checkpointing,
        )
    else:
        for param in model.parameters():
            param.requires_grad = False
        if settings.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=checkpointing)
            model.enable_input_require_grads()

    config = peft_config(model, settings, entry)
    with norms_accepted():
        model = get_peft_model(model, config)
    approach = get(settings.approach)
    if approach.free is not None:
        approach.free(model, settings)
    return model


# ---------------------------------------------------------------------------- saving


def save_adapter(model, settings, model_dir, adapter_dir: Path, completions: dict) -> None:
    """Write the trained PeftModel as a PEFT folder plus adaptune_adapter.json into
    `adapter_dir`."""
    adapter_dir = Path(adapter_dir)
    adapter_dir.mkdir(parents=True, exist_ok=True)
    # The vocabulary is unchanged: never copy the (large) embedding matrix into the adapter.
    model.save_pretrained(adapter_dir, save_embedding_layers=False)
    from adaptune.approaches import get

    approach = get(settings.approach)
    if approach.save_beside is not None:
        approach.save_beside(model, adapter_dir)
    write_json(
        adapter_dir / ADAPTER_FILE, adapter_record(settings, model_dir, adapter_dir, completions)
    )


def save_linear_biases(model, adapter_dir: Path) -> None:
    """Write the trainable Linear biases PEFT's folder does not hold (trained_beside_peft), if
    any, to LINEAR_BIASES_FILE."""
    extra = trained_beside_peft(model)
    if extra:
        from safetensors.torch import save_file

        save_file(
            {n: p.detach().cpu().contiguous() for n, p in extra.items()},
            Path(adapter_dir) / LINEAR_BIASES_FILE,
        )


def load_linear_biases(model, adapter_dir: Path) -> None:
    """Put the Linear biases of LINEAR_BIASES_FILE, if the folder has one, into the PeftModel's
    base (in float32, as they trained)."""
    import torch

    biases = Path(adapter_dir) / LINEAR_BIASES_FILE
    if not biases.is_file():
        return
    from safetensors.torch import load_file

    base = model.get_base_model()
    with torch.no_grad():
        for name, tensor in load_file(biases).items():
            try:
                param = base.get_parameter(name)
            except AttributeError:
                raise AdapterError(
                    f"{biases}: {name!r} is not a parameter of the base model"
                ) from None
            if param.shape != tensor.shape:
                raise AdapterError(
                    f"{biases}: {name!r} has shape {tuple(tensor.shape)}, "
                    f"the model's is {tuple(param.shape)}"
                )
            param.data = tensor.to(device=param.device, dtype=torch.float32)


def trained_beside_peft(model) -> dict:
    """Trainable Linear biases of the base that PEFT's own state dict does not hold (those of
    LN tuning with `biases`), by their name in the base model."""
    from peft import get_peft_model_state_dict

    held = set(get_peft_model_state_dict(model, save_embedding_layers=False))
    base = model.get_base_model()
    return {
        name: base.get_parameter(name)
        for name in linear_bias_names(base)
        if base.get_parameter(name).requires_grad and f"base_model.model.{name}" not in held
    }


# What scoring and prediction use, at the top of the record; the rest of the training settings
# are under "settings". Each field is recorded once.
RECORD_FIELDS = (
    "approach",
    "quantization",
    "precision",
    "style",
    "labels",
    "template",
    "max_length",
    "truncation_side",
)


def adapter_record(settings, model_dir, adapter_dir, completions: dict) -> dict:
    """The contents of adaptune_adapter.json."""
    model_dir = Path(model_dir)
    record = {
        "approach": settings.approach,
        **model_fingerprint(model_dir),
        # Where the base model lies, relative to the adapter folder: the pair moves together.
        "base_model_dir": os.path.relpath(model_dir.resolve(), Path(adapter_dir).resolve()),
        "quantization": settings.quantization,
        "precision": settings.precision,
        "style": settings.style,
        "labels": list(settings.labels),
        "completions": completions,
        "template": settings.template,
        "max_length": settings.max_length,
        "truncation_side": getattr(settings, "truncation_side", None) or "left",
        "settings": {
            k: v for k, v in asdict(settings).items() if k not in RECORD_FIELDS and k != "model"
        },
    }
    assert set(RECORD_FIELDS) <= set(record), "a field of RECORD_FIELDS is missing from the record"
    return record


def record_completions(record: dict) -> list[str]:
    """Each label's completion as the adapter was trained on it, in the record's label order."""
    from adaptune.data.prompts import completion

    return [
        record.get("completions", {}).get(label, completion(label)) for label in record["labels"]
    ]


# ---------------------------------------------------------------------------- loading


def read_record(adapter_dir: str | os.PathLike) -> dict:
    """adaptune_adapter.json of `adapter_dir`; a clear error when it is not an adapter."""
    adapter_dir = Path(adapter_dir)
    path = adapter_dir / ADAPTER_FILE
    if not adapter_dir.is_dir():
        raise AdapterError(f"{adapter_dir}: no such adapter directory; train it first (rule train)")
    if not path.is_file():
        raise AdapterError(f"{adapter_dir}: not an adaptune adapter ({ADAPTER_FILE} missing)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise AdapterError(f"{path}: not valid JSON ({error})") from None


def base_model_dir(adapter_dir: str | os.PathLike, record: dict | None = None) -> Path:
    """The base model recorded with the adapter, resolved from the adapter folder."""
    record = record if record is not None else read_record(adapter_dir)
    relative = record.get("base_model_dir")
    if not relative:
        raise AdapterError(
            f"{adapter_dir}/{ADAPTER_FILE}: records no base_model_dir; "
            "give the base model's directory"
        )
    path = (Path(adapter_dir) / relative).resolve()
    if not (path / "config.json").is_file():
        raise AdapterError(
            f"{adapter_dir}: its base model {record.get('base_model')!r} "
            f"was recorded at {relative} "
            f"(relative to the adapter), i.e. {path}, which holds no prepared model; "
            "give the base model's directory"
        )
    return path


def is_exported(folder: str | os.PathLike) -> bool:
    """Whether `folder` is a model written by `adaptune export` (a transformers model folder with
    the adapter record), rather than an adapter folder."""
    return (Path(folder) / "config.json").is_file() and (Path(folder) / ADAPTER_FILE).is_file()


def load_trained(
    adapter_dir: str | os.PathLike,
    model_dir: str | os.PathLike | None = None,
    quantization: str | None = None,
    precision: str | None = None,
    device: str | None = None,
    dtype=None,
):
    """(model, tokenizer, record): the adapter in `adapter_dir` on its base model, eval mode.
    `adapter_dir` may also be a folder written by `adaptune export`: that model is loaded as it is.

    model_dir: the base model (default: the one the record names, relative to the adapter);
    quantization: of the base weights (default: the one it was trained with; "none" for an
    exported model); precision: recorded in the returned record for the scorer (default: the
    trained one); device: "cpu", "cuda" or "cuda:N" (default: the GPU when there is one);
    dtype: of an unquantized base's weights (default float32). A base other than the one it was
    trained on is refused.
    """
    from peft import PeftModel

    if is_exported(adapter_dir):
        return _load_exported(Path(adapter_dir), model_dir, quantization, precision, device)
    record = read_record(adapter_dir)
    model_dir = Path(model_dir) if model_dir is not None else base_model_dir(adapter_dir, record)
    fingerprint = model_fingerprint(model_dir)
    recorded = {k: record.get(k) for k in fingerprint}
    if recorded != fingerprint:
        raise AdapterError(
            f"{adapter_dir} was trained on base model {recorded['base_model']!r} (config hash "
            f"{str(recorded['base_model_config_hash'])[:12]}), but {model_dir} holds "
            f"{fingerprint['base_model']!r} "
            f"(config hash {fingerprint['base_model_config_hash'][:12]}); "
            "load it with the model it was trained on"
        )

    model, tokenizer = load_base(
        record["approach"],
        model_dir,
        quantization or record["quantization"],
        record["labels"],
        dtype=dtype,
        device=device,
    )
    with norms_accepted():
        model = PeftModel.from_pretrained(model, str(adapter_dir))
    from adaptune.approaches import get

    approach = get(record["approach"])
    if approach.load_beside is not None:
        approach.load_beside(model, adapter_dir)
    model.eval()
    record = {
        **record,
        "model_dir": str(model_dir),
        "precision": precision or record.get("precision"),
    }
    return model, tokenizer, record


def _load_exported(folder: Path, model_dir, quantization, precision, device):
    import torch

    if model_dir is not None:
        raise AdapterError(
            f"{folder}: an exported model holds its base; give no base model directory"
        )
    record = read_record(folder)
    dtype = (
        torch.bfloat16 if record.get("exported", {}).get("dtype") == "bfloat16" else torch.float32
    )

    model, tokenizer = load_base(
        record["approach"],
        folder,
        quantization or "none",
        record["labels"],
        dtype=dtype,
        device=device,
    )
    model.eval()
    record = {**record, "model_dir": str(folder), "precision": precision or record.get("precision")}
    return model, tokenizer, record


def load_base(name: str, model_dir, quantization: str, labels=None, **options):
    """(model, tokenizer): the base model as approach `name` trains and scores on it: a causal
    LM (adaptune.lm.models.load_model), or for a head scorer a sequence classifier over `labels`.
    `options`: load_model's dtype and device."""
    if get(name).scorer == "head":
        from adaptune.approaches.head import load_classifier

        return load_classifier(model_dir, quantization, labels, **options)
    from adaptune.lm.models import load_model

    return load_model(model_dir, quantization, **options)


def prompt_scorer(name: str):
    """How approach `name` gives prompts per-label scores: a function (model, tokenizer,
    prompts, labels, settings, progress, completions) -> (scores, vocabulary argmax or None), as
    adaptune.lm.scoring.score_with_vocab."""
    if get(name).scorer == "head":
        from adaptune.approaches.head import score_prompts

        return score_prompts
    from adaptune.lm.scoring import score_with_vocab

    return score_with_vocab
