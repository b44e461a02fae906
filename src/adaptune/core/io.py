"""Write outputs whole or not at all: every writer goes through a temporary file or folder
beside the target and renames it into place, so a failed job leaves nothing that looks done."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it to `path` only if the block succeeds.
    The file reaches the disk (fsync) before the rename and the rename before this returns, so
    a crash leaves the old file or the new one, never a truncated one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=target.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.chmod(0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp_path
        _fsync_file(tmp_path)
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)
    finally:
        tmp_path.unlink(missing_ok=True)


class FolderInUse(FileExistsError):
    """The target folder holds files that are not a previous output of the same kind."""


@contextlib.contextmanager
def atomic_dir(
    path: str | os.PathLike, replaceable: Callable[[Path], bool] | None = None
) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; it takes the place of `path` only if the block
    succeeds. An existing `path` is replaced only when it is empty or `replaceable(path)` says
    it is an earlier output of the same kind: a user's folder (the working directory, a model,
    an adapter) is refused before anything is written, never emptied."""
    target = Path(path)
    _check_replaceable(target, replaceable)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp.chmod(0o777 & ~_umask())
    old = None
    try:
        yield tmp
        _check_replaceable(target, replaceable)  # the block may have run for minutes
        for root, _, files in os.walk(tmp):
            for name in files:
                _fsync_file(Path(root) / name)
        if target.exists():
            # Moved aside, not deleted, until the new folder is in place.
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.replace(target, old / target.name)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def is_or_holds(folder: str | os.PathLike, inner: str | os.PathLike) -> bool:
    """Whether `folder` is `inner` or one of the folders above it (links resolved)."""
    folder, inner = Path(folder).resolve(), Path(inner).resolve()
    return folder == inner or folder in inner.parents


def _check_replaceable(target: Path, replaceable: Callable[[Path], bool] | None) -> None:
    if not target.exists():
        return
    if is_or_holds(target, Path.cwd()):
        raise FolderInUse(
            f"{target}: is the working directory or holds it; expected a new folder to write into"
        )
    if not target.is_dir():
        raise FolderInUse(f"{target}: exists and is not a folder; expected a new folder")
    if any(target.iterdir()) and not (replaceable and replaceable(target)):
        raise FolderInUse(
            f"{target}: exists and holds files that this would replace; "
            "expected a new or empty folder (nothing was written or deleted)"
        )


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable; some file systems cannot open a folder to sync it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_csv(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame without its index."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")


def write_jsonl(path: str | os.PathLike, records) -> None:
    lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in records]
    write_text(path, "".join(lines))


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}: line {number} is not valid JSON ({error.msg})") from None
    return records


def _json_default(value: Any):
    # numpy scalars and arrays, Paths
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
