"""The raw dataset: download it with a pinned checksum, check it, and draw balanced splits."""

from __future__ import annotations

import csv
import html
import os
import re
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from adaptune.core.config import schema_fields
from adaptune.core.io import atomic_path, sha256_of, write_csv
from adaptune.core.names import SPLITS

RAW_COLUMNS = ("count", "hate_speech", "offensive_language", "neither", "class", "tweet")
CLASSES = (0, 1, 2)


class DataError(ValueError):
    """Input data that is not what the pipeline expects; the message names the file."""


# --------------------------------------------------------------------------- download


def fetch(url_or_path: str, destination: str | os.PathLike, sha256: str | None = None) -> Path:
    """Copy a URL or local file to `destination`, checking its sha256 when one is given."""
    destination = Path(destination)
    with atomic_path(destination) as tmp:
        if "://" in url_or_path:
            with (
                urllib.request.urlopen(url_or_path, timeout=60) as response,
                open(tmp, "wb") as out,
            ):
                shutil.copyfileobj(response, out)
        else:
            shutil.copyfile(url_or_path, tmp)
        if sha256 is not None:
            actual = sha256_of(tmp)
            if actual != sha256:
                raise DataError(
                    f"{url_or_path}: sha256 is {actual}, expected {sha256}; "
                    f"the file changed upstream or the download is corrupt"
                )
    return destination


def download_dataset(url: str, sha256: str, destination: str | os.PathLike) -> Path:
    """Download the raw CSV (checksum pinned) and check its columns and classes."""
    destination = Path(destination)
    # Downloaded beside the destination and renamed into place once checked: never a partial
    # or unchecked file at the destination, and no move across filesystems.
    with atomic_path(destination) as fetched:
        _download(url, fetched, destination, sha256)
        read_raw_dataset(fetched)
    return destination


def download_reference(url: str, destination: str | os.PathLike) -> Path:
    """Download one file of the reference study's split (columns label, text) and check it."""
    destination = Path(destination)
    with atomic_path(destination, suffix=".csv") as fetched:
        _download(url, fetched, destination)
        frame = read_labeled_csv(str(fetched), None)
        if frame.empty:
            raise DataError(f"{url}: the CSV has a header but no rows")
    return destination


def _download(url: str, path: Path, destination: Path, sha256: str | None = None) -> None:
    try:
        fetch(url, path, sha256)
    except OSError as error:
        raise DataError(
            f"could not download {url} ({error}); without network, put the file at "
            f"{destination} yourself (see data/README.md)"
        ) from None


# --------------------------------------------------------------------------- reading


def read_raw_dataset(path: str | os.PathLike) -> pd.DataFrame:
    """Read labeled_data.csv; refuse anything that is not the Davidson et al. table."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with path.open("rb") as handle:
        head = handle.read(4096)
    if not head.strip():
        raise DataError(
            f"{path}: the file is empty; expected a CSV with columns {', '.join(RAW_COLUMNS)}"
        )
    if b"\x00" in head:
        raise DataError(f"{path}: this is a binary file, not a CSV")
    try:
        frame = pd.read_csv(path, index_col=0, keep_default_na=False, encoding="utf-8")
    except (pd.errors.ParserError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{path}: not a readable CSV ({error})") from None
    missing = [c for c in RAW_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"expected columns {', '.join(RAW_COLUMNS)}"
        )
    if frame.empty:
        raise DataError(f"{path}: the CSV has a header but no rows")
    classes = pd.to_numeric(frame["class"], errors="coerce")
    bad = [position for position, ok in enumerate(classes.isin(CLASSES)) if not ok]
    if bad:
        value = str(frame["class"].iloc[bad[0]])
        raise DataError(
            f"{path}: line {bad[0] + 2}: class {value!r} is not one of 0, 1, 2 "
            f"(0 hate speech, 1 offensive language, 2 neither); {len(bad)} such row(s)"
        )
    frame["class"] = classes.astype(int)
    return frame


def read_labeled_csv(path: str | os.PathLike, labels: list[str] | None) -> pd.DataFrame:
    """Read a `label,text` CSV (the reference study's split files); labels must be among
    `labels` unless that is None."""
    if not Path(path).is_file():
        raise DataError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a readable CSV ({error})") from None
    missing = [c for c in ("label", "text") if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; expected label, text")
    unknown = frame.index[~frame["label"].isin(labels)] if labels is not None else []
    if len(unknown):
        row = unknown[0]
        raise DataError(
            f"{path}: row {row + 2}: label {frame.loc[row, 'label']!r} is not one of "
            f"{', '.join(labels)} (config `labels`)"
        )
    return frame


# --------------------------------------------------------------------------- splits


@dataclass(frozen=True)
@schema_fields("splits")  # the defaults
class SplitSettings:
    train: int
    val: int
    test: int
    seed: int
    unescape_html: bool
    exclude_reference: bool
    reference: dict

    def __post_init__(self):
        for name in SPLITS:
            size = getattr(self, name)
            if not isinstance(size, int) or size < len(CLASSES):
                raise ValueError(f"splits.{name}: {size!r} must be a whole number of at least 3")

    @classmethod
    def from_config(cls, section: dict) -> "SplitSettings":
        keys = ("train", "val", "test", "seed", "unescape_html", "exclude_reference", "reference")
        known = {k: section[k] for k in keys if k in section}
        return cls(**known)


def per_class(total: int, n_classes: int = len(CLASSES)) -> list[int]:
    """Split `total` over the classes as evenly as possible (the first classes take the rest)."""
    base, rest = divmod(total, n_classes)
    return [base + (i < rest) for i in range(n_classes)]


_URL = re.compile(r"(?:https?://|www\.)\S+")
_HANDLE = re.compile(r"@\w+:?")
_LEADING_RT = re.compile(r"^(?:\s*rt\b:?)+")
_SPACE = re.compile(r"\s+")


def text_key(text: str) -> str:
    """The key under which two tweets count as the same: HTML entities decoded, lowercase,
    URLs and @handles removed, a leading RT removed, whitespace collapsed. Retweets of one text
    and copies that differ only in a handle or link then share a key."""
    key = html.unescape(str(text)).lower()
    key = _HANDLE.sub(" ", _URL.sub(" ", key))
    key = _LEADING_RT.sub(" ", key)
    return _SPACE.sub(" ", key).strip()


def near_duplicates(texts: pd.Series) -> int:
    """How many of `texts` share their `text_key` with another one."""
    keys = texts.map(text_key)
    return int(keys.duplicated(keep=False).sum())


def tweets_by_label(
    raw: pd.DataFrame, labels: list[str], unescape_html: bool = True
) -> pd.DataFrame:
    """id, text, label, key: HTML entities decoded (unless `unescape_html` is false), and one
    tweet per `text_key` (first row wins), so that no split holds a near-duplicate of another
    split's tweet or of its own."""
    texts = raw["tweet"].astype(str)
    frame = pd.DataFrame(
        {
            "id": raw.index.astype(str),
            "text": texts.map(html.unescape) if unescape_html else texts,
            "label": raw["class"].map(dict(enumerate(labels))),
            "key": texts.map(text_key),
        }
    )
    return frame.drop_duplicates("key", keep="first").reset_index(drop=True)


def sample_balanced(
    pool: pd.DataFrame, sizes: dict[str, int], labels: list[str], seed: int, source: str
) -> dict[str, pd.DataFrame]:
    """Draw disjoint class-balanced splits of the given sizes from `pool`, seeded."""
    rng = np.random.default_rng(seed)
    quotas = {name: per_class(size, len(labels)) for name, size in sizes.items()}
    parts = {name: [] for name in sizes}
    for index, label in enumerate(labels):
        rows = pool[pool["label"] == label]
        needed = sum(quota[index] for quota in quotas.values())
        if len(rows) < needed:
            asked = " + ".join(f"{name} {quotas[name][index]}" for name in sizes)
            raise DataError(
                f"{source}: class {label!r} has {len(rows)} distinct tweets, but the splits need "
                f"{needed} ({asked}); lower the split sizes in config.yaml `splits`"
            )
        order = rng.permutation(len(rows))
        start = 0
        for name in sizes:
            take = quotas[name][index]
            parts[name].append(rows.iloc[order[start : start + take]])
            start += take
    return {
        name: pd.concat(chunks).sample(frac=1.0, random_state=seed).reset_index(drop=True)
        for name, chunks in parts.items()
    }


def make_splits(
    raw_path: str | os.PathLike,
    labels: list[str],
    settings: SplitSettings,
    reference: dict[str, str | os.PathLike] | None = None,
    exclude_texts: list[str] | tuple[str, ...] = (),
) -> dict[str, pd.DataFrame]:
    """Balanced, seeded, disjoint train/val/test; or the reference train/val plus a sampled test.

    Tweets are compared by `text_key` throughout: the pool keeps one tweet per key, so sampled
    splits share no near-duplicate with each other or within themselves.
    `reference` maps train and val to the reference study's split files. With
    `settings.reference["enabled"]` they are the train and val splits; with
    `settings.exclude_reference` their tweets are left out of the pool every sampled split is
    drawn from (with `enabled`, always). `exclude_texts` (fixed few-shot demonstrations) are left
    out of that pool too."""
    pool = tweets_by_label(read_raw_dataset(raw_path), labels, settings.unescape_html)
    use_reference = bool(settings.reference.get("enabled"))
    seen = {text_key(text) for text in exclude_texts}
    if use_reference or settings.exclude_reference:
        missing = [part for part in ("train", "val") if not (reference or {}).get(part)]
        if missing:
            raise DataError(
                f"splits: the reference split's {' and '.join(missing)} file(s) are needed "
                "(splits.reference.enabled or splits.exclude_reference) but were not given"
            )
        frames = {part: read_labeled_csv(reference[part], labels) for part in ("train", "val")}
        for frame in frames.values():
            seen |= set(frame["text"].astype(str).map(text_key))
    pool = pool[~pool["key"].isin(seen)].drop(columns="key")
    if not use_reference:
        sizes = {name: getattr(settings, name) for name in SPLITS}
        return sample_balanced(pool, sizes, labels, settings.seed, str(raw_path))
    splits = {}
    for name, frame in frames.items():
        texts = frame["text"].astype(str)
        splits[name] = pd.DataFrame(
            {
                "id": [f"reference-{name}-{i}" for i in range(len(frame))],
                "text": texts.map(html.unescape) if settings.unescape_html else texts,
                "label": frame["label"],
            }
        )
    splits["test"] = sample_balanced(
        pool, {"test": settings.test}, labels, settings.seed, str(raw_path)
    )["test"]
    return splits


def draw_train_split(
    raw_path: str | os.PathLike,
    labels: list[str],
    settings: SplitSettings,
    held_out: list[str | os.PathLike],
    split_seed: int,
    reference: dict[str, str | os.PathLike] | None = None,
    exclude_texts: list[str] | tuple[str, ...] = (),
) -> pd.DataFrame:
    """Another balanced draw of the train split (which tweets are trained on), seeded by
    `split_seed`, from the pool `make_splits` samples from, less the tweets of the `held_out`
    split files (the study's val and test, which stay the same for every draw), compared by
    `text_key`."""
    if settings.reference.get("enabled"):
        raise DataError(
            "splits.reference.enabled: the reference study's train split is fixed; "
            "training.split_seeds draws other train splits only from a sampled study"
        )
    pool = tweets_by_label(read_raw_dataset(raw_path), labels, settings.unescape_html)
    seen = {text_key(text) for text in exclude_texts}
    if settings.exclude_reference:
        missing = [part for part in ("train", "val") if not (reference or {}).get(part)]
        if missing:
            raise DataError(
                f"splits: the reference split's {' and '.join(missing)} file(s) are needed "
                "(splits.exclude_reference) but were not given"
            )
        for part in ("train", "val"):
            seen |= set(read_labeled_csv(reference[part], labels)["text"].astype(str).map(text_key))
    for path in held_out:
        seen |= set(read_labeled_csv(path, labels)["text"].astype(str).map(text_key))
    pool = pool[~pool["key"].isin(seen)].drop(columns="key")
    return sample_balanced(pool, {"train": settings.train}, labels, split_seed, str(raw_path))[
        "train"
    ]


def write_splits(splits: dict[str, pd.DataFrame], paths: dict[str, str | os.PathLike]) -> None:
    """Write all splits; if any write fails, none of them is left behind."""
    written = []
    try:
        for name in SPLITS:
            write_csv(paths[name], splits[name][["id", "text", "label"]])
            written.append(Path(paths[name]))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
