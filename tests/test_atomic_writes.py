"""Files written whole or not at all, beside their destination: downloads, the raw dataset's
check, and the training log a resumed run cuts back."""

from __future__ import annotations

import gc
import tempfile
import warnings
from pathlib import Path

import pandas as pd
import pytest

from adaptune.train import run as training
from adaptune.data.splits import download_dataset, download_reference, read_raw_dataset
from adaptune.core.io import sha256_of
from conftest import write_reference_csvs


@pytest.fixture
def no_system_temp(tmp_path, monkeypatch):
    """A system temp folder that does not exist: anything written there fails."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-system-temp"))


def test_a_download_goes_beside_its_destination_and_nowhere_else(raw_csv, tmp_path, no_system_temp):
    destination = tmp_path / "data" / "labeled_data.csv"
    assert download_dataset(str(raw_csv), sha256_of(raw_csv), destination) == destination
    assert destination.read_bytes() == raw_csv.read_bytes()
    assert [p.name for p in destination.parent.iterdir()] == ["labeled_data.csv"]


def test_a_download_of_the_reference_split_goes_beside_its_destination(tmp_path, no_system_temp):
    source = write_reference_csvs(tmp_path / "upstream")["train"]
    destination = tmp_path / "data" / "reference_train.csv"
    download_reference(str(source), destination)
    assert destination.read_bytes() == source.read_bytes()
    assert [p.name for p in destination.parent.iterdir()] == ["reference_train.csv"]


def test_a_download_that_fails_its_check_leaves_nothing(raw_csv, tmp_path):
    destination = tmp_path / "data" / "labeled_data.csv"
    with pytest.raises(ValueError, match="sha256"):
        download_dataset(str(raw_csv), "0" * 64, destination)
    assert list(destination.parent.iterdir()) == []


def test_reading_the_raw_dataset_leaves_no_file_open(raw_csv):
    gc.collect()  # what earlier tests left behind is collected outside the watch
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        read_raw_dataset(raw_csv)
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_a_resumed_run_keeps_its_earlier_log_whole_or_not_at_all(tmp_path, monkeypatch):
    metrics = tmp_path / "metrics.csv"
    earlier = tmp_path / training.EARLIER_METRICS
    metrics.write_text("step,train_loss\n1,0.5\n2,0.4\n3,0.3\n")
    before = metrics.read_text()
    to_csv = pd.DataFrame.to_csv

    def cut_short(self, path, *args, **kwargs):
        Path(path).write_text("step,tra")  # the write is interrupted halfway
        raise OSError("no space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", cut_short)
    with pytest.raises(OSError):
        training._keep_rows_before(tmp_path, 3)
    assert metrics.read_text() == before and not earlier.exists()
    monkeypatch.setattr(pd.DataFrame, "to_csv", to_csv)
    training._keep_rows_before(tmp_path, 3)
    assert pd.read_csv(earlier)["step"].tolist() == [1, 2]
    # Lightning's logger then starts metrics.csv afresh; a second resume keeps both attempts' rows.
    metrics.write_text("step,train_loss,val_macro_f1\n3,0.3,\n4,0.2,0.7\n5,0.1,\n")
    training._keep_rows_before(tmp_path, 5)
    assert pd.read_csv(earlier)["step"].tolist() == [1, 2, 3, 4]
    metrics.write_text("step,train_loss,val_macro_f1\n5,0.1,\n6,0.1,0.8\n")
    curves = training.read_curves(tmp_path)
    assert curves["step"].tolist() == [1, 2, 3, 4, 5, 6]
    assert curves["val_macro_f1"].dropna().tolist() == [0.7, 0.8]


def test_a_folder_replaces_only_an_earlier_output_and_is_synced_to_disk(tmp_path, monkeypatch):
    import os

    from adaptune.core.io import FolderInUse, atomic_dir, write_text

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    with pytest.raises(FolderInUse, match="nothing was written or deleted"):
        with atomic_dir(user) as folder:
            (folder / "out.txt").write_text("new")
    assert [p.name for p in user.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["user"]  # no temporary left behind

    ours = tmp_path / "ours"
    for round_ in ("first", "second"):
        with atomic_dir(ours, replaceable=lambda f: (f / "out.txt").is_file()) as folder:
            (folder / "out.txt").write_text(round_)
    assert (ours / "out.txt").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ours", "user"]
    synced.clear()
    write_text(tmp_path / "file.txt", "whole")
    assert len(synced) == 2  # the file, then its folder after the rename
    assert (tmp_path / "file.txt").read_text() == "whole"
