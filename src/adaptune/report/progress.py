"""Carry a long study's finished jobs to another machine: `adaptune progress save` and `adaptune
progress restore`.

A study longer than a sitting goes on where it stopped because Snakemake skips the jobs whose
outputs exist. On a fresh clone or another machine those outputs are gone. `save` copies what
the finished jobs wrote and the rest of the study reads (each training and sweep run's curves,
val scores and summary, each system's predictions and metrics, the sweep's choice, the hardware
decision, every finished job's benchmark and log) into a folder small enough to commit.
`restore` puts them back into a working directory where the splits, prompts and base model have
been made again; Snakemake then plans only the jobs not yet done.

Left behind: adapters and checkpoints (megabytes each; an interrupted run starts again), and the
tweets themselves: predictions lose their `text` column, and `restore` puts it back from the
splits by id. A restore checks first that the Python and package versions are those the saved
jobs ran under, that the splits, prompts and model files are byte for byte those the saved jobs
were computed from (progress.json keeps their sha256), and that every restored file is byte for
byte the one saved, so a result is never attached to other inputs.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import time
from pathlib import Path

from adaptune.core.io import atomic_dir, atomic_path
from adaptune.core.names import HEADLINE_SPLIT, SPLITS
from adaptune.core.provenance import git_commit, package_versions

MANIFEST = "progress.json"
FORMAT = 1
# What finished jobs wrote that the rest of a study reads, below the working directory.
RESULTS = ("results/hardware", "results/sweep", "results/train", "results/eval")
BENCHMARKS, LOGS = Path("benchmarks"), Path("logs")
RECORDS = (str(BENCHMARKS), str(LOGS))
# Never carried: trained weights and the checkpoints of unfinished runs (a run's folder holds
# only checkpoints/ until it finishes, then its outputs replace the folder whole).
LEFT_BEHIND = {"adapter", "checkpoints"}
# The inputs the carried outputs were computed from, made again on every machine.
INPUTS = ("results/splits", "results/prompts", "resources/models")
TEXT = "text"
OTHER_SPLITS = set(SPLITS) - {HEADLINE_SPLIT}


class ProgressError(ValueError):
    """A saved progress folder cannot be restored here, or a working directory cannot be saved."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def finished_outputs(root: Path) -> list[Path]:
    """The carried files of the finished jobs under `root`, relative to it, sorted. An
    evaluation counts once its headline split's metrics.json exists: evaluations write that
    file last (adaptune.core.names.headline_last)."""
    found = []
    for top in RESULTS:
        for path in sorted((root / top).rglob("*")):
            relative = path.relative_to(root)
            if not path.is_file() or LEFT_BEHIND & set(relative.parts) or path.name[0] == ".":
                continue
            if top == "results/eval" and not _evaluation_finished(path):
                continue
            found.append(relative)
    benchmarks = sorted(p.relative_to(root) for p in (root / BENCHMARKS).rglob("*.tsv"))
    # A job's log beside its benchmark, which Snakemake writes only once the job has finished.
    logs = [LOGS / p.relative_to(BENCHMARKS).with_suffix(".log") for p in benchmarks]
    return found + benchmarks + [p for p in logs if (root / p).is_file()]


def _evaluation_finished(path: Path) -> bool:
    # A system's folder holds its headline split; the others are folders below it, by name.
    folder = path.parent
    system = folder.parent if folder.name in OTHER_SPLITS else folder
    return (system / "metrics.json").is_file()


def input_files(root: Path) -> list[Path]:
    return [
        p.relative_to(root)
        for top in INPUTS
        for p in sorted((root / top).rglob("*"))
        if p.is_file() and not p.name.startswith(".snakemake")
    ]


def save(root: str | os.PathLike, destination: str | os.PathLike) -> dict:
    """Copy the finished jobs' outputs under `root` into `destination` (replaced whole when it
    is an earlier save) with progress.json; returns the manifest."""
    root, destination = Path(root), Path(destination)
    outputs = finished_outputs(root)
    if not any(str(p).startswith("results/") for p in outputs):
        raise ProgressError(f"{root}: no finished job's outputs under {', '.join(RESULTS)}")
    manifest = {
        "format": FORMAT,
        "commit": git_commit(root),
        "versions": package_versions(),
        "saved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "inputs": {str(p): sha256(root / p) for p in input_files(root)},
        "files": {},
    }
    with atomic_dir(destination, replaceable=lambda d: (d / MANIFEST).is_file()) as tmp:
        for relative in outputs:
            source, target = root / relative, tmp / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            entry = {"sha256": sha256(source)}
            header = _csv_header(source)
            if TEXT in header and "id" in header:
                target.write_bytes(_without_column(source.read_bytes(), TEXT))
                entry["text_column"] = header.index(TEXT)
            else:
                shutil.copyfile(source, target)
            manifest["files"][str(relative)] = entry
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def restore(source: str | os.PathLike, root: str | os.PathLike) -> list[Path]:
    """Put a saved progress folder back under `root`; returns the files written. Checks
    everything before writing anything: the inputs, and that no existing file differs."""
    source, root = Path(source), Path(root)
    manifest = read_manifest(source)
    _check_versions(manifest["versions"], package_versions())
    _check_inputs(manifest["inputs"], root)
    texts = None
    contents = {}
    for relative, entry in manifest["files"].items():
        data = (source / relative).read_bytes()
        if "text_column" in entry:
            texts = texts if texts is not None else _split_texts(root)
            data = _with_text(data, entry["text_column"], texts, source / relative)
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise ProgressError(f"{source / relative}: does not restore to the file saved")
        target = root / relative
        if target.is_file():
            # A benchmark or log of a job that ran here again (the splits, the model) is kept.
            if sha256(target) != entry["sha256"] and relative.split("/")[0] not in RECORDS:
                raise ProgressError(f"{target}: exists, not as saved; not replaced")
            continue
        contents[relative] = data
    # Newer than the inputs made again before it, so that Snakemake keeps the restored outputs;
    # one time for all of them, as none is newer than another.
    stamp = max([time.time()] + [(root / p).stat().st_mtime for p in manifest["inputs"]])
    for relative, data in contents.items():
        with atomic_path(root / relative) as tmp:
            tmp.write_bytes(data)
        os.utime(root / relative, (stamp, stamp))
    return [Path(p) for p in contents]


def read_manifest(source: Path) -> dict:
    path = source / MANIFEST
    if not path.is_file():
        raise ProgressError(f"{source}: no {MANIFEST}, not a folder of `adaptune progress save`")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise ProgressError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT}")
    return manifest


def _check_versions(saved: dict[str, str | None], here: dict[str, str | None]) -> None:
    """The saved jobs ran under the same Python and packages as this environment: a study whose
    cells differ in their torch or PEFT differs in more than its seeds."""
    differing = {name: version for name, version in saved.items() if here.get(name) != version}
    if differing:
        found = ", ".join(f"{name} {here.get(name)} (saved: {v})" for name, v in differing.items())
        pins = " ".join(f"'{n}=={v}'" for n, v in differing.items() if n != "python" and v)
        raise ProgressError(
            f"the saved jobs ran under other versions than this environment's: {found}; "
            + (f"install the saved ones (pip install {pins}) " if pins else "")
            + "so that the study's runs share them"
        )


def _check_inputs(inputs: dict[str, str], root: Path) -> None:
    missing = [p for p in inputs if not (root / p).is_file()]
    if missing:
        raise ProgressError(
            f"{root}: {len(missing)} of the inputs the saved jobs were computed from are missing "
            f"(first: {missing[0]}); make them first, with the study's own snakemake command and "
            "`--until format_prompts prepare_model`"
        )
    differing = [p for p, digest in inputs.items() if sha256(root / p) != digest]
    if differing:
        raise ProgressError(
            f"{root}: {len(differing)} inputs differ from those the saved jobs were computed from "
            f"(first: {differing[0]}); another dataset, config or model, so nothing was restored"
        )


def _csv_header(path: Path) -> list[str]:
    if path.suffix != ".csv":
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle), [])


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def _csv_bytes(rows: list[list[str]]) -> bytes:
    # As pandas writes them (to_csv with lineterminator="\n"): minimal quoting.
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def _without_column(data: bytes, name: str) -> bytes:
    rows = _rows(data)
    column = rows[0].index(name)
    return _csv_bytes([row[:column] + row[column + 1 :] for row in rows])


def _with_text(data: bytes, column: int, texts: dict[str, str], path: Path) -> bytes:
    rows = _rows(data)
    ids = rows[0].index("id")
    restored = [rows[0][:column] + [TEXT] + rows[0][column:]]
    for number, row in enumerate(rows[1:], start=2):
        if row[ids] not in texts:
            raise ProgressError(f"{path}, row {number}: id {row[ids]} is in no split here")
        restored.append(row[:column] + [texts[row[ids]]] + row[column:])
    return _csv_bytes(restored)


def _split_texts(root: Path) -> dict[str, str]:
    texts = {}
    for path in sorted((root / "results/splits").glob("*.csv")):
        rows = _rows(path.read_bytes())
        ids, text = rows[0].index("id"), rows[0].index(TEXT)
        texts.update({row[ids]: row[text] for row in rows[1:]})
    return texts


def add_commands(commands) -> None:
    """The `progress save` and `progress restore` subcommands of `adaptune`."""
    progress = commands.add_parser(
        "progress",
        help="carry a study's finished jobs to another machine (save, restore)",
        description=__doc__.split("\n\n")[1],
    )
    actions = progress.add_subparsers(dest="action", required=True, metavar="ACTION")
    save_command = actions.add_parser(
        "save",
        help="copy the finished jobs' outputs into a folder to commit",
        description="Copy the finished jobs' outputs (no adapters, no tweets) into DESTINATION.",
    )
    save_command.add_argument("destination", type=Path, help="e.g. progress/decisive")
    restore_command = actions.add_parser(
        "restore",
        help="put saved outputs back, after the splits, prompts and model are made again",
        description="Put a saved folder's outputs back; first make the inputs with the study's "
        "snakemake command and `--until format_prompts prepare_model`.",
    )
    restore_command.add_argument("source", type=Path, help="a folder made by `progress save`")
    for command in (save_command, restore_command):
        command.add_argument(
            "--root", type=Path, default=Path("."), help="the study's working directory; default ."
        )
    save_command.set_defaults(run=_save)
    restore_command.set_defaults(run=_restore)


def _save(args) -> int:
    manifest = save(args.root, args.destination)
    print(
        f"saved {len(manifest['files'])} files of finished jobs to {args.destination}: "
        + ", ".join(f"{n} {what}" for what, n in finished_counts(manifest["files"]).items())
    )
    return 0


def finished_counts(files) -> dict[str, int]:
    """How many sweep runs, trained cells and evaluated systems a list of carried files holds."""
    paths = [Path(f) for f in files]
    return {
        "sweep runs": sum(p.name == "summary.json" and p.parts[1] == "sweep" for p in paths),
        "trained cells": sum(p.name == "summary.json" and p.parts[1] == "train" for p in paths),
        "evaluated systems": sum(
            p.name == "metrics.json" and p.parts[1] == "eval" and p.parent.name not in OTHER_SPLITS
            for p in paths
        ),
    }


def _restore(args) -> int:
    written = restore(args.source, args.root)
    print(
        f"restored {len(written)} files from {args.source} under {args.root}: "
        + ", ".join(f"{n} {what}" for what, n in finished_counts(map(str, written)).items())
    )
    return 0
