"""What `adaptune progress save` carries of a working directory: finished jobs only, never
weights, checkpoints or tweets. (A whole run saved and restored: tests/test_pipeline.py.)"""

import json

import pytest

from adaptune.core.names import headline_last
from adaptune.report.progress import ProgressError, finished_outputs, restore, save

PREDICTIONS = 'id,text,gold,predicted\n7,"you, there",hate,hate\n9,ok,neutral,hate\n'


def write(path, text="{}"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_only_finished_jobs_are_carried_without_weights_checkpoints_or_tweets(tmp_path):
    root = tmp_path / "study"
    done, running = root / "results/train/m/lora_all/raw/none/seed42", root / "results/train/m/x"
    for name in ("summary.json", "curves.csv", "adapter/adapter_model.safetensors"):
        write(done / name)
    write(running / "checkpoints/abc/steps/last.ckpt")
    # An evaluation writes its headline split last: val alone is one cut short.
    for system in ("finished", "cut_short"):
        write(root / f"results/eval/{system}/val/predictions.csv", PREDICTIONS)
        write(root / f"results/eval/{system}/val/metrics.json")
    write(root / "results/eval/finished/predictions.csv", PREDICTIONS)
    write(root / "results/eval/finished/metrics.json")
    write(root / "results/splits/test.csv", 'id,text,label\n7,"you, there",hate\n9,ok,neutral\n')
    # A job's log goes with its benchmark, written when it finished; a running job's stays.
    write(root / "benchmarks/train/m/lora_all.tsv", "s\n1.0\n")
    write(root / "logs/train/m/lora_all.log", "done")
    write(root / "logs/train/m/x.log", "still running")

    carried = {str(p) for p in finished_outputs(root)}
    assert carried == {
        f"results/train/m/lora_all/raw/none/seed42/{name}"
        for name in ("summary.json", "curves.csv")
    } | {
        f"results/eval/finished/{split}{name}"
        for split in ("", "val/")
        for name in ("predictions.csv", "metrics.json")
    } | {"benchmarks/train/m/lora_all.tsv", "logs/train/m/lora_all.log"}
    saved = tmp_path / "saved"
    manifest = save(root, saved)
    assert (saved / "results/eval/finished/predictions.csv").read_text() == (
        "id,gold,predicted\n7,hate,hate\n9,neutral,hate\n"
    )
    assert set(manifest["inputs"]) == {"results/splits/test.csv"}

    elsewhere = tmp_path / "elsewhere"
    with pytest.raises(ProgressError, match="missing .*results/splits/test.csv"):
        restore(saved, elsewhere)
    assert not (elsewhere / "results/eval").exists()
    write(elsewhere / "results/splits/test.csv", (root / "results/splits/test.csv").read_text())
    restore(saved, elsewhere)
    for relative in carried:
        assert (elsewhere / relative).read_bytes() == (root / relative).read_bytes()


def test_a_save_from_other_package_versions_is_refused_with_the_versions_to_install(tmp_path):
    from adaptune.core.provenance import package_versions

    root = tmp_path / "study"
    write(root / "results/train/m/a/raw/none/seed42/summary.json")
    saved = tmp_path / "saved"
    manifest = save(root, saved)
    assert manifest["versions"] == package_versions()
    manifest["versions"]["torch"] = "2.9.1"
    write(saved / "progress.json", json.dumps(manifest))
    with pytest.raises(
        ProgressError, match=r"torch .* \(saved: 2.9.1\).*pip install 'torch==2.9.1'"
    ):
        restore(saved, tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere").exists()


def test_a_folder_that_is_no_save_is_refused_by_name(tmp_path):
    with pytest.raises(ProgressError, match=f"{tmp_path}: no progress.json"):
        restore(tmp_path, tmp_path / "study")
    write(tmp_path / "progress.json", json.dumps({"format": 99}))
    with pytest.raises(ProgressError, match="format 99, expected 1"):
        restore(tmp_path, tmp_path / "study")


def test_the_headline_split_is_written_last():
    assert headline_last(["test", "val"]) == ["val", "test"]
    assert headline_last(["val", "test"]) == ["val", "test"]
